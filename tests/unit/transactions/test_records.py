"""__transaction_state record formats and the transactional id -> partition mapping."""

from __future__ import annotations

import pytest

from core.common.errors import CorruptRecordError
from core.common.types import TopicPartition
from core.coordinator.transaction_state import TxnMetadata, TxnState, can_transition
from core.coordinator.txn_records import (
    TxnLogValue,
    decode_txn_key,
    decode_txn_value,
    encode_txn_key,
    encode_txn_value,
    txn_partition_for,
)


def test_key_round_trip_and_kafka_bytes() -> None:
    assert encode_txn_key("tx") == b"\x00\x00\x00\x02tx"
    assert decode_txn_key(encode_txn_key("résumé")) == "résumé"


def test_value_round_trip() -> None:
    value = TxnLogValue(42, 3, 60000, int(TxnState.ONGOING),
                        frozenset({TopicPartition("a", 1), TopicPartition("a", 0),
                                   TopicPartition("b", 7)}), 1234, 1000)
    raw = encode_txn_value(value)
    assert raw[:2] == b"\x00\x00"
    assert decode_txn_value(raw) == value
    empty = TxnLogValue(1, 0, 100, int(TxnState.EMPTY))
    raw = encode_txn_value(empty)
    assert raw[2 + 8 + 2 + 4 + 1:2 + 8 + 2 + 4 + 1 + 4] == b"\xff\xff\xff\xff"  # null array
    assert decode_txn_value(raw) == empty
    with pytest.raises(CorruptRecordError):
        decode_txn_value(raw[:10])


def test_partition_matches_kafka_hash() -> None:
    # Java: Math.abs("my-txn".hashCode()) % 50
    h = 0
    for ch in "my-txn":
        h = (31 * h + ord(ch)) & 0xFFFFFFFF
    h = h - (1 << 32) if h & 0x80000000 else h
    assert txn_partition_for("my-txn", 50) == abs(h) % 50


def test_transitions() -> None:
    assert can_transition(TxnState.ONGOING, TxnState.PREPARE_COMMIT)
    assert not can_transition(TxnState.EMPTY, TxnState.PREPARE_COMMIT)
    assert not can_transition(TxnState.PREPARE_COMMIT, TxnState.COMPLETE_ABORT)
    meta = TxnMetadata("t", 1, 0, 1000)
    value = meta.prepare_add_partitions({TopicPartition("x", 0)}, 5)
    meta.apply(value)
    assert meta.state == TxnState.ONGOING and meta.start_ms == 5
    meta.apply(meta.prepare_end(True, 6, bump_epoch=True))
    assert meta.producer_epoch == 1 and meta.last_producer_epoch == 0
    meta.apply(meta.prepare_complete(7))
    assert meta.state == TxnState.COMPLETE_COMMIT and not meta.partitions
