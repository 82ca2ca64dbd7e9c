"""Immutable snapshot of one poll of a Kafka cluster (ours or any other).

Every type here is a frozen, slotted dataclass. Collections are tuples (ordered by their
natural key) so snapshots compare with ``==`` and successive snapshots can be diffed cheaply:
each type exposes a ``key`` property that identifies the same entity across polls
(broker id, topic name, (topic, partition), group id, ...). Fields we cannot know for a given
cluster (e.g. CPU of a remote broker, rates before the second tick) are ``None``.

Mappings (``configs``, ``replica_lag``) are stored as sorted tuples of (key, value) pairs so
that every snapshot object stays hashable; helper properties expose them as dicts
(``PartitionInfo.lag_by_replica``, ``TopicInfo.config_dict``). Build them with ``frozen_items``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "BrokerInfo",
    "ClusterSnapshot",
    "GroupInfo",
    "GroupOffset",
    "MemberInfo",
    "PartitionInfo",
    "QuorumInfo",
    "QuorumVoter",
    "TopicInfo",
    "diff_keys",
    "frozen_items",
]


def frozen_items(mapping: Mapping[Any, Any] | Iterable[tuple[Any, Any]] | None) -> tuple:
    """Return a mapping (or iterable of pairs) as a tuple of (key, value) pairs sorted by key."""
    if mapping is None:
        return ()
    items = mapping.items() if isinstance(mapping, Mapping) else mapping
    return tuple(sorted(items, key=lambda kv: kv[0]))


@dataclass(frozen=True, slots=True)
class BrokerInfo:
    """One broker as seen in metadata, enriched with process info and metrics when known."""

    id: int
    host: str
    port: int
    rack: str | None = None
    is_controller: bool = False
    #: "online" (in metadata), "offline" (known but absent from metadata), "unresponsive" (in
    #: metadata, but its last request timed out: not asked until a probe answers), or a
    #: supervisor process state ("running", "paused", "stopped", ...) when known.
    state: str = "online"
    pid: int | None = None
    cpu_percent: float | None = None
    memory_bytes: int | None = None
    partitions_led: int = 0
    under_replicated: int = 0
    offline: int = 0
    bytes_in_per_sec: float | None = None
    bytes_out_per_sec: float | None = None
    messages_in_per_sec: float | None = None

    @property
    def key(self) -> int:
        return self.id

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class PartitionInfo:
    """One partition: leadership, replica set and offsets."""

    topic: str
    partition: int
    leader: int  # -1 when there is no leader
    leader_epoch: int = -1
    replicas: tuple[int, ...] = ()
    isr: tuple[int, ...] = ()
    offline_replicas: tuple[int, ...] = ()
    log_start_offset: int | None = None
    log_end_offset: int | None = None
    high_watermark: int | None = None
    #: ((broker_id, records behind the leader), ...) sorted by broker id; see ``lag_by_replica``.
    replica_lag: tuple[tuple[int, int], ...] = ()
    size_bytes: int | None = None

    @property
    def key(self) -> tuple[str, int]:
        return (self.topic, self.partition)

    @property
    def lag_by_replica(self) -> dict[int, int]:
        return dict(self.replica_lag)

    @property
    def under_replicated(self) -> bool:
        return len(self.isr) < len(self.replicas)

    @property
    def is_offline(self) -> bool:
        return self.leader < 0

    @property
    def records(self) -> int | None:
        """Records currently retained (high watermark minus log start), if known."""
        if self.log_start_offset is None or self.high_watermark is None:
            return None
        return max(0, self.high_watermark - self.log_start_offset)


@dataclass(frozen=True, slots=True)
class TopicInfo:
    """One topic with its partitions (sorted by partition id)."""

    name: str
    internal: bool = False
    partitions: tuple[PartitionInfo, ...] = ()
    #: ((config name, value or None), ...) sorted by name; only non-default ones when known.
    configs: tuple[tuple[str, str | None], ...] = ()
    records: int | None = None
    size_bytes: int | None = None
    bytes_in_per_sec: float | None = None
    bytes_out_per_sec: float | None = None
    messages_in_per_sec: float | None = None
    under_replicated: bool = False
    topic_id: str | None = None

    @property
    def key(self) -> str:
        return self.name

    @property
    def config_dict(self) -> dict[str, str | None]:
        return dict(self.configs)

    @property
    def replication_factor(self) -> int:
        return len(self.partitions[0].replicas) if self.partitions else 0


@dataclass(frozen=True, slots=True)
class MemberInfo:
    """One consumer group member and its assigned partitions."""

    member_id: str
    instance_id: str | None = None
    client_id: str = ""
    host: str = ""
    assignment: tuple[tuple[str, int], ...] = ()

    @property
    def key(self) -> str:
        return self.member_id


@dataclass(frozen=True, slots=True)
class GroupOffset:
    """A committed offset of a group on one partition, with the partition's end offset."""

    topic: str
    partition: int
    committed: int  # -1 if nothing is committed
    log_end_offset: int | None = None
    lag: int | None = None
    owner: str | None = None  # member id owning the partition, if any
    metadata: str | None = None

    @property
    def key(self) -> tuple[str, int]:
        return (self.topic, self.partition)


@dataclass(frozen=True, slots=True)
class GroupInfo:
    """One consumer group: state, members and committed offsets with lag."""

    group_id: str
    state: str = "Unknown"
    protocol_type: str = ""
    protocol: str = ""
    members: tuple[MemberInfo, ...] = ()
    offsets: tuple[GroupOffset, ...] = ()
    total_lag: int | None = None
    coordinator_id: int | None = None

    @property
    def key(self) -> str:
        return self.group_id


@dataclass(frozen=True, slots=True)
class QuorumVoter:
    """One voter (or observer) of the KRaft metadata quorum.

    The two timestamps are the leader's wall clock in Unix epoch milliseconds, as
    DescribeQuorum v1+ reports them (KIP-836), or None when unknown (-1 on the wire, or v0):
    ``last_fetch_timestamp`` is the last time the replica fetched from the quorum leader,
    ``last_caught_up_timestamp`` the last time it was caught up to the leader's log end
    offset. The leader reports the time of its answer for itself.
    """

    id: int
    log_end_offset: int
    lag: int | None = None
    last_fetch_timestamp: int | None = None
    last_caught_up_timestamp: int | None = None

    @property
    def key(self) -> int:
        return self.id


@dataclass(frozen=True, slots=True)
class QuorumInfo:
    """The KRaft metadata quorum (DescribeQuorum)."""

    leader_id: int
    epoch: int
    high_watermark: int
    voters: tuple[QuorumVoter, ...] = ()
    observers: tuple[QuorumVoter, ...] = ()


@dataclass(frozen=True, slots=True)
class ClusterSnapshot:
    """Everything the console shows, as of ``taken_at`` (Unix time, seconds)."""

    taken_at: float
    cluster_id: str | None = None
    controller_id: int | None = None
    brokers: tuple[BrokerInfo, ...] = ()
    topics: tuple[TopicInfo, ...] = ()
    groups: tuple[GroupInfo, ...] = ()
    quorum: QuorumInfo | None = None
    errors: tuple[str, ...] = ()
    bootstrap: str = ""
    #: Wall-clock seconds the poll took.
    poll_duration_s: float = field(default=0.0, compare=False)

    def broker(self, broker_id: int) -> BrokerInfo | None:
        for b in self.brokers:
            if b.id == broker_id:
                return b
        return None

    def topic(self, name: str) -> TopicInfo | None:
        for t in self.topics:
            if t.name == name:
                return t
        return None

    def group(self, group_id: str) -> GroupInfo | None:
        for g in self.groups:
            if g.group_id == group_id:
                return g
        return None

    def partitions(self) -> Iterable[PartitionInfo]:
        for t in self.topics:
            yield from t.partitions

    @property
    def ok(self) -> bool:
        return not self.errors


def diff_keys(old: Iterable[Any], new: Iterable[Any]) -> tuple[set, set, set]:
    """Compare two collections of snapshot items by ``key``.

    Returns (added keys, removed keys, changed keys) — changed means same key, unequal item.
    """
    old_map = {item.key: item for item in old}
    new_map = {item.key: item for item in new}
    added = new_map.keys() - old_map.keys()
    removed = old_map.keys() - new_map.keys()
    changed = {k for k in old_map.keys() & new_map.keys() if old_map[k] != new_map[k]}
    return set(added), set(removed), changed
