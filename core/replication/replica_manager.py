"""The partitions this broker hosts, kept in step with the metadata image.

On every new image it creates logs for new replicas, switches partitions between leader and
follower (starting or stopping their fetchers), deletes the logs of deleted topics, and applies
topic config changes to logs. A leader learns its followers' broker epochs from each image
(KIP-903: a follower at a new epoch is a new incarnation whose fetch state starts over). It
also applies the dynamic broker configs of the image (the cluster default "" overlaid with
this broker's own, resolved by BrokerConfig.resolve): topic defaults such as
`log.retention.ms` reach every log without a topic override at once (and logs created later),
and the replication throttle rates reach the quotas. `config` and the two dynamic levels kept
here are what DescribeConfigs reports, so what it shows is what the logs run with.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from typing import Any

from core.common.config import BrokerConfig, dynamic_overrides, effective_topic_config
from core.common.errors import NotLeaderOrFollowerError, UnknownTopicOrPartitionError
from core.common.types import TopicPartition
from core.metadata.image import MetadataImage
from core.replication.partition import FollowerState, Partition
from core.replication.quota import ReplicationQuotas

log = logging.getLogger(__name__)

#: called with (partition, became_leader) whenever a partition's leader or epoch changes
RoleListener = Callable[[Partition, bool], None]


class ReplicaManager:
    """Owns the Partition objects of this broker."""

    def __init__(self, node_id: int, config: BrokerConfig, log_manager: Any) -> None:
        self.node_id = node_id
        #: server.properties; `config` is it with the image's dynamic broker configs applied
        self.static_config = config
        self.config = config
        #: the dynamic values that apply here (cluster default overlaid with this broker's)
        self.dynamic_configs: dict[str, str] = {}
        self._seen_broker_configs: object = None  # the image's mapping last applied
        #: the image's dynamic broker configs as stored: cluster default "" and this broker's
        self.dynamic_default: dict[str, str] = {}
        self.dynamic_broker: dict[str, str] = {}
        self.quotas = ReplicationQuotas(
            node_id, samples=config["replication.quota.window.num"],
            window_s=float(config["replication.quota.window.size.seconds"]))
        self.quotas.apply_rates(config)
        self.logs = log_manager
        self.partitions: dict[TopicPartition, Partition] = {}
        self._topic_configs: dict[str, dict[str, str]] = {}
        self.role_listeners: list[RoleListener] = []
        self.removal_listeners: list[Callable[[TopicPartition], None]] = []

    def get(self, tp: TopicPartition) -> Partition:
        """The local partition, or UNKNOWN_TOPIC_OR_PARTITION."""
        partition = self.partitions.get(tp)
        if partition is None:
            raise UnknownTopicOrPartitionError(
                "This server does not host this topic-partition.")
        return partition

    def leader_partition(self, tp: TopicPartition, image: MetadataImage) -> Partition:
        """The partition if this broker leads it; otherwise the error a client needs."""
        partition = self.partitions.get(tp)
        if partition is None:
            if image.partition(tp) is None:
                raise UnknownTopicOrPartitionError(
                    "This server does not host this topic-partition.")
            raise NotLeaderOrFollowerError(f"{tp}: broker {self.node_id} is not a replica")
        if not partition.is_leader:
            raise NotLeaderOrFollowerError(f"{tp}: broker {self.node_id} is not the leader")
        return partition

    def topic_config(self, topic: str) -> dict[str, Any]:
        return effective_topic_config(self.config, self._topic_configs.get(topic, {}))

    def apply_image(self, image: MetadataImage) -> None:
        """Bring local partitions in line with `image`."""
        broker_changed = self._apply_broker_configs(image)
        wanted: set[TopicPartition] = set()
        for topic in image.topics.values():
            configs = dict(topic.configs)
            config_changed = broker_changed or self._topic_configs.get(topic.name) != configs
            self._topic_configs[topic.name] = configs
            if config_changed:
                self.quotas.apply_topic(topic.name, configs)
            effective = None
            for p, reg in topic.partitions.items():
                if self.node_id not in reg.replicas:
                    continue
                tp = TopicPartition(topic.name, p)
                wanted.add(tp)
                if effective is None:
                    effective = effective_topic_config(self.config, configs)
                min_isr = int(effective["min.insync.replicas"])
                partition = self.partitions.get(tp)
                if partition is None:
                    log_ = self.logs.get_or_create(tp, effective)
                    log_.update_config(effective)  # a log loaded at startup had defaults
                    partition = Partition(tp, log_, self.node_id, reg, min_isr,
                                          leader_quota=self.quotas.leader)
                    self.partitions[tp] = partition
                    partition.observe_broker_epochs(image.brokers)
                    self._notify(partition)
                    continue
                if config_changed:
                    partition.log.update_config(effective)
                    partition.min_insync_replicas = min_isr
                if partition.update_registration(reg):
                    partition.observe_broker_epochs(image.brokers)
                    self._notify(partition)
                elif partition.is_leader:
                    _sync_followers(partition)  # replicas added / removed (reassignment)
                    # KIP-903: a follower at a new broker epoch restarted; forget its past
                    partition.observe_broker_epochs(image.brokers)
        for tp in [tp for tp in self.partitions if tp not in wanted]:
            partition = self.partitions.pop(tp)
            partition.close()
            if image.topics.get(tp.topic) is None or image.partition(tp) is None:
                log.info("deleting %s: topic deleted", tp)
            else:
                log.info("deleting %s: replica moved off this broker", tp)
            self.logs.delete(tp)
            for listener in self.removal_listeners:
                listener(tp)
        for name in [n for n in self._topic_configs if n not in image.topics]:
            del self._topic_configs[name]
            self.quotas.remove_topic(name)

    def _apply_broker_configs(self, image: MetadataImage) -> bool:
        """Lay the image's dynamic broker configs over the static ones; True if the values
        that apply changed (then every log without a topic override gets them)."""
        if image.broker_configs is self._seen_broker_configs:
            return False  # an ISR / leader change: the image kept the same configs mapping
        self._seen_broker_configs = image.broker_configs
        self.dynamic_default = dict(image.broker_configs.get("", {}))
        self.dynamic_broker = dict(image.broker_configs.get(str(self.node_id), {}))
        dynamic = dynamic_overrides(self.dynamic_default, self.dynamic_broker)
        if dynamic == self.dynamic_configs:
            return False
        self.dynamic_configs = dynamic
        self.config = self.static_config.with_dynamic(dynamic)
        self.quotas.apply_rates(self.config)
        self.logs.set_default_config(self.config.topic_defaults())
        log.info("dynamic broker configs applied: %s", dynamic)
        return True

    def _notify(self, partition: Partition) -> None:
        for listener in self.role_listeners:
            listener(partition, partition.is_leader)

    def revive_offline(self, min_free_bytes: int = 1024 * 1024) -> list[TopicPartition]:
        """Reopen partitions that went offline on a write error once the disk has room
        again (`min_free_bytes` free), so writing resumes without a broker restart."""
        revived = []
        for tp, partition in self.partitions.items():
            log_ = partition.log
            if not log_.is_offline:
                continue
            try:
                if shutil.disk_usage(self.logs.data_dir).free < min_free_bytes:
                    return revived
            except OSError:
                return revived
            try:
                high_watermark = log_.high_watermark
            except Exception:  # an offline log may refuse even this
                high_watermark = 0
            fresh = self.logs.reopen(tp, self.topic_config(tp.topic))
            if fresh is not None:
                fresh.high_watermark = min(high_watermark, fresh.log_end_offset)
                partition.log = fresh
                revived.append(tp)
        return revived

    def under_replicated(self) -> list[Partition]:
        return [p for p in self.partitions.values()
                if p.is_leader and len(p.registration.isr) < len(p.registration.replicas)]


def _sync_followers(partition: Partition) -> None:
    """A leader whose replica set changed (a reassignment) tracks exactly its followers: new
    replicas start unknown (not caught up, outside the ISR until they fetch the HW)."""
    wanted = [b for b in partition.registration.replicas if b != partition.node_id]
    for b in [b for b in partition.followers if b not in wanted]:
        del partition.followers[b]
    for b in wanted:
        if b not in partition.followers:
            partition.followers[b] = FollowerState()
