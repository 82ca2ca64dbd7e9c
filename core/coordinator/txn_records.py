"""The record formats of the internal topic __transaction_state, as Apache Kafka writes them.

Key   (TransactionLogKey v0):   version int16 = 0, transactional_id string
Value (TransactionLogValue v0): version int16 = 0, producer_id int64, producer_epoch int16,
      transaction_timeout_ms int32, transaction_status int8,
      transaction_partitions nullable array [topic string, partition_ids array int32],
      transaction_last_update_timestamp_ms int64, transaction_start_timestamp_ms int64

A null value is a tombstone (the transactional id expired). Strings are int16-length-prefixed,
arrays int32-count-prefixed (-1 = null). The status byte is Kafka's TransactionState id
(Empty 0, Ongoing 1, PrepareCommit 2, PrepareAbort 3, CompleteCommit 4, CompleteAbort 5, Dead 6,
PrepareEpochFence 7). A transactional id lives in partition
abs(transactionalId.hashCode()) % transaction.state.log.num.partitions, as on a Kafka cluster.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from core.common.errors import CorruptRecordError
from core.common.types import TopicPartition
from core.coordinator.offsets import java_abs, java_string_hash

__all__ = ["TxnLogValue", "decode_txn_key", "decode_txn_value", "encode_txn_key",
           "encode_txn_value", "txn_partition_for"]

KEY_VERSION = 0
VALUE_VERSION = 0
_I8 = struct.Struct(">b")
_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")


def txn_partition_for(transactional_id: str, num_partitions: int) -> int:
    """The __transaction_state partition holding `transactional_id`."""
    return java_abs(java_string_hash(transactional_id)) % num_partitions


@dataclass(frozen=True, slots=True)
class TxnLogValue:
    """One transactional id's state as persisted."""

    producer_id: int
    producer_epoch: int
    timeout_ms: int
    status: int
    partitions: frozenset[TopicPartition] = field(default_factory=frozenset)
    last_update_ms: int = -1
    start_ms: int = -1


def _string(value: str) -> bytes:
    raw = value.encode("utf-8")
    if len(raw) > 0x7FFF:
        raise ValueError("string longer than 32767 bytes")
    return _I16.pack(len(raw)) + raw


def encode_txn_key(transactional_id: str) -> bytes:
    """TransactionLogKey v0."""
    return _I16.pack(KEY_VERSION) + _string(transactional_id)


def encode_txn_value(value: TxnLogValue) -> bytes:
    """TransactionLogValue v0 (partitions null when there are none, as Kafka writes Empty)."""
    parts = [_I16.pack(VALUE_VERSION), _I64.pack(value.producer_id),
             _I16.pack(value.producer_epoch), _I32.pack(value.timeout_ms),
             _I8.pack(value.status)]
    if not value.partitions:
        parts.append(_I32.pack(-1))
    else:
        by_topic: dict[str, list[int]] = {}
        for tp in sorted(value.partitions):
            by_topic.setdefault(tp.topic, []).append(tp.partition)
        parts.append(_I32.pack(len(by_topic)))
        for topic, indexes in by_topic.items():
            parts.append(_string(topic))
            parts.append(_I32.pack(len(indexes)))
            parts.extend(_I32.pack(i) for i in indexes)
    parts.append(_I64.pack(value.last_update_ms))
    parts.append(_I64.pack(value.start_ms))
    return b"".join(parts)


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.pos = 0

    def take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise CorruptRecordError("__transaction_state record truncated")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, s: struct.Struct) -> int:
        return s.unpack(self.take(s.size))[0]

    def string(self) -> str:
        n = self.unpack(_I16)
        if n < 0:
            raise CorruptRecordError("null where a string is required")
        return bytes(self.take(n)).decode("utf-8")


def decode_txn_key(data: bytes) -> str:
    """The transactional id of a __transaction_state key."""
    r = _Reader(data)
    version = r.unpack(_I16)
    if version != KEY_VERSION:
        raise CorruptRecordError(f"unknown __transaction_state key version {version}")
    return r.string()


def decode_txn_value(data: bytes) -> TxnLogValue:
    """Decode TransactionLogValue v0 (v1's tagged fields, if any, are ignored)."""
    r = _Reader(data)
    version = r.unpack(_I16)
    if version not in (0, 1):
        raise CorruptRecordError(f"unknown __transaction_state value version {version}")
    if version == 1:
        raise CorruptRecordError("flexible TransactionLogValue v1 is not read")
    pid = r.unpack(_I64)
    epoch = r.unpack(_I16)
    timeout = r.unpack(_I32)
    status = r.unpack(_I8)
    partitions: set[TopicPartition] = set()
    topics = r.unpack(_I32)
    for _ in range(max(topics, 0)):
        topic = r.string()
        for _ in range(max(r.unpack(_I32), 0)):
            partitions.add(TopicPartition(topic, r.unpack(_I32)))
    last_update = r.unpack(_I64)
    start = r.unpack(_I64)
    return TxnLogValue(pid, epoch, timeout, status, frozenset(partitions), last_update, start)
