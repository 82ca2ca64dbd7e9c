"""MetadataImage: an immutable view of the cluster's metadata, the fold of the metadata log.

`apply` / `apply_batch` return a new image that shares every unchanged topic with the old one,
so readers on the event loop can hold an image without locks while the next one is being built.
A batch of records (what the metadata log delivers at once: a commit, a replay, a snapshot) goes
through one ImageBuilder, so folding n records is linear, not O(n * topics).

`image_records` is the image as metadata records, the content of a metadata snapshot
(KIP-630): a SnapshotHeader, then the records that rebuild the image from nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from core.common.types import TopicPartition
from core.metadata.records import (
    ConfigChanged,
    FenceBroker,
    MetadataRecord,
    NoOp,
    PartitionChanged,
    PartitionCreated,
    ProducerIdsAllocated,
    RegisterBroker,
    SnapshotHeader,
    TopicCreated,
    TopicRemoved,
    UnfenceBroker,
)

NO_LEADER = -1


@dataclass(frozen=True, slots=True)
class BrokerRegistration:
    broker_id: int
    host: str
    port: int
    rack: str | None
    epoch: int
    fenced: bool = True
    incarnation_id: str = ""


@dataclass(frozen=True, slots=True)
class PartitionRegistration:
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    leader: int
    leader_epoch: int
    partition_epoch: int
    #: an ongoing reassignment (KIP-455): `replicas` is then target + removing
    adding_replicas: tuple[int, ...] = ()
    removing_replicas: tuple[int, ...] = ()

    @property
    def offline_replicas(self) -> tuple[int, ...]:
        return ()

    @property
    def is_reassigning(self) -> bool:
        return bool(self.adding_replicas or self.removing_replicas)

    @property
    def target_replicas(self) -> tuple[int, ...]:
        """Where the partition is going (the replicas once a reassignment completes)."""
        return tuple(b for b in self.replicas if b not in self.removing_replicas)

    @property
    def original_replicas(self) -> tuple[int, ...]:
        """Where the partition was before the ongoing reassignment (what a cancel restores)."""
        return tuple(b for b in self.replicas if b not in self.adding_replicas)


@dataclass(frozen=True, slots=True)
class TopicImage:
    name: str
    topic_id: str
    partitions: Mapping[int, PartitionRegistration]
    configs: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class MetadataImage:
    """Brokers, topics with their partitions, configs, and the metadata offset applied."""

    offset: int = -1
    brokers: Mapping[int, BrokerRegistration] = field(
        default_factory=lambda: MappingProxyType({}))
    topics: Mapping[str, TopicImage] = field(default_factory=lambda: MappingProxyType({}))
    broker_configs: Mapping[str, Mapping[str, str]] = field(
        default_factory=lambda: MappingProxyType({}))
    next_producer_id: int = 0

    def partition(self, tp: TopicPartition) -> PartitionRegistration | None:
        topic = self.topics.get(tp.topic)
        return None if topic is None else topic.partitions.get(tp.partition)

    def live_brokers(self) -> list[BrokerRegistration]:
        return [b for b in self.brokers.values() if not b.fenced]

    def topic_by_id(self, topic_id: str) -> TopicImage | None:
        for topic in self.topics.values():
            if topic.topic_id == topic_id:
                return topic
        return None

    def apply(self, record: MetadataRecord, offset: int) -> MetadataImage:
        """The image after `record`, committed at metadata log `offset`.

        Copies the maps the record changes (the topics map is O(topics)): to fold many
        records use apply_batch, which copies each map at most once per batch."""
        return self.apply_batch((record,), offset)

    def apply_batch(self, records: Iterable[MetadataRecord], offset: int) -> MetadataImage:
        """The image after `records` (in order), the last committed at metadata log `offset`.

        Linear in the records plus the maps they touch: the records go into one ImageBuilder
        (mutable copies, each made once) that is frozen into one new image at the end; this
        image is never changed, so readers holding it see a complete image, never part of a
        batch."""
        builder = ImageBuilder(self)
        for record in records:
            builder.apply(record)
        return builder.build(offset)


def _frozen(mapping: dict) -> Mapping:
    return MappingProxyType(mapping)


class ImageBuilder:
    """Folds metadata records into mutable copies of an image's maps.

    Each map (brokers, topics, one topic's partitions or configs, one broker's configs) is
    copied from the base image the first time a record changes it and then updated in place,
    so a batch of n records touching t topics costs O(n + |topics| + sum of the touched
    topics' sizes) instead of O(n * |topics|). build() hands the copies to a new immutable
    MetadataImage; the builder must not be used after that.
    """

    __slots__ = (
        "_base",
        "_broker_configs",
        "_brokers",
        "_built",
        "_configs",
        "_next_producer_id",
        "_parts",
        "_topics",
    )

    def __init__(self, image: MetadataImage) -> None:
        self._reset(image)
        self._built = False

    def _reset(self, image: MetadataImage) -> None:
        self._base = image
        self._brokers: dict[int, BrokerRegistration] | None = None
        self._topics: dict[str, TopicImage] | None = None
        self._parts: dict[str, dict[int, PartitionRegistration]] = {}
        self._configs: dict[str, dict[str, str]] = {}
        self._broker_configs: dict[str, Mapping[str, str]] | None = None
        self._next_producer_id = image.next_producer_id

    # copies made on first write ------------------------------------------------------------
    def _brokers_w(self) -> dict[int, BrokerRegistration]:
        if self._brokers is None:
            self._brokers = dict(self._base.brokers)
        return self._brokers

    def _topics_w(self) -> dict[str, TopicImage]:
        if self._topics is None:
            self._topics = dict(self._base.topics)
        return self._topics

    def _topic(self, name: str) -> TopicImage | None:
        topics = self._topics if self._topics is not None else self._base.topics
        return topics.get(name)

    def _parts_w(self, name: str) -> dict[int, PartitionRegistration] | None:
        parts = self._parts.get(name)
        if parts is None:
            topic = self._topic(name)
            if topic is None:
                return None
            parts = self._parts[name] = dict(topic.partitions)
            self._topics_w()
        return parts

    def _configs_w(self, name: str) -> dict[str, str] | None:
        configs = self._configs.get(name)
        if configs is None:
            topic = self._topic(name)
            if topic is None:
                return None
            configs = self._configs[name] = dict(topic.configs)
            self._topics_w()
        return configs

    # records --------------------------------------------------------------------------------
    def apply(self, record: MetadataRecord) -> None:
        """Fold one record (the same semantics MetadataImage.apply always had)."""
        if self._built:
            raise RuntimeError("ImageBuilder used after build()")
        if isinstance(record, PartitionChanged):  # the most frequent record first
            self._partition_changed(record)
        elif isinstance(record, RegisterBroker):
            self._brokers_w()[record.broker_id] = BrokerRegistration(
                record.broker_id, record.host, record.port, record.rack, record.epoch, True,
                record.incarnation_id)
        elif isinstance(record, FenceBroker | UnfenceBroker):
            brokers = self._brokers if self._brokers is not None else self._base.brokers
            old = brokers.get(record.broker_id)
            if old is not None:
                self._brokers_w()[record.broker_id] = replace(
                    old, fenced=isinstance(record, FenceBroker))
        elif isinstance(record, TopicCreated):
            self._topics_w()[record.name] = TopicImage(record.name, record.topic_id,
                                                       MappingProxyType({}))
            self._parts.pop(record.name, None)
            self._configs.pop(record.name, None)
        elif isinstance(record, PartitionCreated):
            parts = self._parts_w(record.topic)
            if parts is None:
                raise KeyError(record.topic)
            parts[record.partition] = PartitionRegistration(
                tuple(record.replicas), tuple(record.isr), record.leader, record.leader_epoch,
                record.partition_epoch, tuple(record.adding_replicas or ()),
                tuple(record.removing_replicas or ()))
        elif isinstance(record, TopicRemoved):
            self._topics_w().pop(record.name, None)
            self._parts.pop(record.name, None)
            self._configs.pop(record.name, None)
        elif isinstance(record, ConfigChanged):
            self._config_changed(record)
        elif isinstance(record, ProducerIdsAllocated):
            self._next_producer_id = max(self._next_producer_id, record.next_producer_id)
        elif isinstance(record, NoOp):
            pass
        elif isinstance(record, SnapshotHeader):
            self._reset(MetadataImage())  # a snapshot's records rebuild the whole image
        else:
            raise ValueError(f"cannot apply {record!r}")

    def _partition_changed(self, record: PartitionChanged) -> None:
        topic = self._topic(record.topic)
        if topic is None:
            return
        parts = self._parts.get(record.topic)
        old = (parts if parts is not None else topic.partitions).get(record.partition)
        if old is None:
            return
        leader_changed = record.leader is not None and record.leader != old.leader
        part = PartitionRegistration(
            replicas=tuple(record.replicas) if record.replicas is not None else old.replicas,
            isr=tuple(record.isr) if record.isr is not None else old.isr,
            leader=record.leader if record.leader is not None else old.leader,
            leader_epoch=old.leader_epoch + 1 if leader_changed else old.leader_epoch,
            partition_epoch=old.partition_epoch + 1,
            adding_replicas=(tuple(record.adding_replicas)
                             if record.adding_replicas is not None else old.adding_replicas),
            removing_replicas=(tuple(record.removing_replicas)
                               if record.removing_replicas is not None
                               else old.removing_replicas),
        )
        parts = self._parts_w(record.topic)
        assert parts is not None
        parts[record.partition] = part

    def _config_changed(self, record: ConfigChanged) -> None:
        if record.resource_type == "topic":
            configs = self._configs_w(record.resource_name)
            if configs is None:
                return
        else:
            if self._broker_configs is None:
                self._broker_configs = dict(self._base.broker_configs)
            current = self._broker_configs.get(record.resource_name)
            if not isinstance(current, dict):  # not yet copied in this batch
                current = dict(current or {})
                self._broker_configs[record.resource_name] = current
            configs = current
        if record.value is None:
            configs.pop(record.key, None)
        else:
            configs[record.key] = record.value

    def build(self, offset: int) -> MetadataImage:
        """The new immutable image, at metadata log `offset`."""
        if self._built:
            raise RuntimeError("ImageBuilder.build() called twice")
        self._built = True
        base = self._base
        topics: Mapping[str, TopicImage] = base.topics
        if self._topics is not None:
            drafts = self._topics
            for name in self._parts.keys() | self._configs.keys():
                topic = drafts.get(name)
                if topic is None:
                    continue
                parts = self._parts.get(name)
                configs = self._configs.get(name)
                drafts[name] = replace(
                    topic,
                    partitions=topic.partitions if parts is None else _frozen(parts),
                    configs=topic.configs if configs is None else _frozen(configs))
            topics = _frozen(drafts)
        broker_configs: Mapping[str, Mapping[str, str]] = base.broker_configs
        if self._broker_configs is not None:
            broker_configs = _frozen({
                name: _frozen(c) if isinstance(c, dict) else c
                for name, c in self._broker_configs.items()})
        return MetadataImage(
            offset=offset,
            brokers=base.brokers if self._brokers is None else _frozen(self._brokers),
            topics=topics,
            broker_configs=broker_configs,
            next_producer_id=self._next_producer_id,
        )


def image_records(image: MetadataImage, end_offset: int, epoch: int) -> Iterator[MetadataRecord]:
    """The image as records: SnapshotHeader(end_offset, epoch), then brokers, topics with
    their partitions and configs, broker configs and the producer id high-water mark.
    Folding them into any image with `apply` yields this image (offset aside)."""
    yield SnapshotHeader(end_offset, epoch)
    for broker in image.brokers.values():
        yield RegisterBroker(broker.broker_id, broker.host, broker.port, broker.rack,
                             broker.epoch, broker.incarnation_id)
        if not broker.fenced:
            yield UnfenceBroker(broker.broker_id, broker.epoch)
    for topic in image.topics.values():
        yield TopicCreated(topic.name, topic.topic_id)
        for index, part in topic.partitions.items():
            yield PartitionCreated(
                topic.name, index, list(part.replicas), list(part.isr), part.leader,
                part.leader_epoch, part.partition_epoch,
                list(part.adding_replicas) or None, list(part.removing_replicas) or None)
        for key, value in topic.configs.items():
            yield ConfigChanged("topic", topic.name, key, value)
    for name, configs in image.broker_configs.items():
        for key, value in configs.items():
            yield ConfigChanged("broker", name, key, value)
    if image.next_producer_id:
        yield ProducerIdsAllocated(-1, image.next_producer_id)
