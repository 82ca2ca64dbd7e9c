"""Committed offsets: the group -> partition mapping and offset retention, as in Kafka.

A group lives in partition abs(groupId.hashCode()) % offsets.topic.num.partitions of
__consumer_offsets, where hashCode is Java's String.hashCode over UTF-16 code units, so that a
group maps to the same partition number as on an Apache Kafka cluster.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from core.common.types import TopicPartition

INT_MIN = -(2**31)


def java_string_hash(value: str) -> int:
    """Java's String.hashCode (signed 32-bit), over UTF-16 code units."""
    h = 0
    raw = value.encode("utf-16-be")
    for i in range(0, len(raw), 2):
        h = (31 * h + ((raw[i] << 8) | raw[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h & 0x80000000 else h


def java_abs(n: int) -> int:
    """Kafka's Utils.abs: Math.abs, except that Integer.MIN_VALUE maps to 0."""
    return 0 if n == INT_MIN else abs(n)


def partition_for(group_id: str, num_partitions: int) -> int:
    """The __consumer_offsets partition that holds `group_id` (and whose leader coordinates it)."""
    return java_abs(java_string_hash(group_id)) % num_partitions


@dataclass(frozen=True, slots=True)
class CommittedOffset:
    """An offset a group committed for one partition."""

    offset: int
    leader_epoch: int = -1
    metadata: str = ""
    commit_timestamp: int = -1
    expire_timestamp: int | None = None
    #: position of the record in __consumer_offsets (later records win when applied out of order)
    record_offset: int = -1


def expired_offsets(
    offsets: dict[TopicPartition, CommittedOffset],
    *,
    now_ms: int,
    retention_ms: int,
    base_timestamp_ms: int | None,
    pending: Iterable[TopicPartition] = (),
    subscribed_topics: set[str] | None = None,
) -> list[TopicPartition]:
    """Partitions whose offsets expired (Kafka's GroupMetadata.getExpiredOffsets).

    An offset expires at its explicit expire timestamp (OffsetCommit v2-4 retention_time) or
    `retention_ms` after `base_timestamp_ms` (when the group became empty), or after its own
    commit timestamp when that base is None. Partitions with a commit in flight and topics the
    group is still subscribed to never expire.
    """
    pending_set = set(pending)
    topics = subscribed_topics or set()
    result = []
    for tp, committed in offsets.items():
        if tp in pending_set or tp.topic in topics:
            continue
        if committed.expire_timestamp is not None:
            if now_ms >= committed.expire_timestamp:
                result.append(tp)
            continue
        base = base_timestamp_ms if base_timestamp_ms is not None else committed.commit_timestamp
        if now_ms - base >= retention_ms:
            result.append(tp)
    return result
