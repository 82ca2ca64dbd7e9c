"""MetadataImage: an immutable view of the cluster's metadata, the fold of the metadata log.

`apply` returns a new image that shares every unchanged topic with the old one, so readers on
the event loop can hold an image without locks while the next one is being built.

`image_records` is the image as metadata records, the content of a metadata snapshot
(KIP-630): a SnapshotHeader, then the records that rebuild the image from nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
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
        """The image after `record`, committed at metadata log `offset`."""
        image = _apply(self, record)
        return replace(image, offset=offset)


def _with(mapping: Mapping, key: object, value: object) -> Mapping:
    new = dict(mapping)
    if value is None:
        new.pop(key, None)
    else:
        new[key] = value
    return MappingProxyType(new)


def _apply(image: MetadataImage, record: MetadataRecord) -> MetadataImage:
    if isinstance(record, RegisterBroker):
        broker = BrokerRegistration(record.broker_id, record.host, record.port, record.rack,
                                    record.epoch, True, record.incarnation_id)
        return replace(image, brokers=_with(image.brokers, record.broker_id, broker))
    if isinstance(record, FenceBroker | UnfenceBroker):
        old = image.brokers.get(record.broker_id)
        if old is None:
            return image
        fenced = isinstance(record, FenceBroker)
        return replace(image, brokers=_with(image.brokers, record.broker_id,
                                            replace(old, fenced=fenced)))
    if isinstance(record, TopicCreated):
        topic = TopicImage(record.name, record.topic_id, MappingProxyType({}))
        return replace(image, topics=_with(image.topics, record.name, topic))
    if isinstance(record, PartitionCreated):
        topic = image.topics[record.topic]
        part = PartitionRegistration(tuple(record.replicas), tuple(record.isr), record.leader,
                                     record.leader_epoch, record.partition_epoch,
                                     tuple(record.adding_replicas or ()),
                                     tuple(record.removing_replicas or ()))
        topic = replace(topic, partitions=_with(topic.partitions, record.partition, part))
        return replace(image, topics=_with(image.topics, record.topic, topic))
    if isinstance(record, PartitionChanged):
        topic = image.topics.get(record.topic)
        if topic is None or record.partition not in topic.partitions:
            return image
        old = topic.partitions[record.partition]
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
        topic = replace(topic, partitions=_with(topic.partitions, record.partition, part))
        return replace(image, topics=_with(image.topics, record.topic, topic))
    if isinstance(record, TopicRemoved):
        return replace(image, topics=_with(image.topics, record.name, None))
    if isinstance(record, ConfigChanged):
        if record.resource_type == "topic":
            topic = image.topics.get(record.resource_name)
            if topic is None:
                return image
            topic = replace(topic, configs=_with(topic.configs, record.key, record.value))
            return replace(image, topics=_with(image.topics, record.resource_name, topic))
        configs = image.broker_configs.get(record.resource_name, MappingProxyType({}))
        configs = _with(configs, record.key, record.value)
        return replace(image, broker_configs=_with(image.broker_configs, record.resource_name,
                                                   configs))
    if isinstance(record, ProducerIdsAllocated):
        return replace(image, next_producer_id=max(image.next_producer_id,
                                                   record.next_producer_id))
    if isinstance(record, NoOp):
        return image
    if isinstance(record, SnapshotHeader):
        return MetadataImage()  # a snapshot's records rebuild the whole image
    raise ValueError(f"cannot apply {record!r}")


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
