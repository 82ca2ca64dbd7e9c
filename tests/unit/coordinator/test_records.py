"""__consumer_offsets record codecs (Kafka's byte formats) and group -> partition hashing."""

from __future__ import annotations

import struct

import pytest

from core.common.errors import CorruptRecordError
from core.coordinator import records as rec
from core.coordinator.offsets import java_string_hash, partition_for
from core.coordinator.timer import DelayedOperations


def test_offset_key_bytes_match_kafka():
    key = rec.encode_offset_key("g", "t", 3)
    assert key == b"\x00\x01" + b"\x00\x01g" + b"\x00\x01t" + b"\x00\x00\x00\x03"
    assert rec.decode_key(key) == rec.OffsetKey("g", "t", 3)
    assert rec.decode_key(rec.encode_group_key("grp")) == rec.GroupKey("grp")
    assert rec.encode_group_key("grp") == b"\x00\x02\x00\x03grp"


def test_offset_value_round_trips_v3_and_v1():
    v3 = rec.OffsetValue(42, "meta", 1000, leader_epoch=7)
    data = rec.encode_offset_value(v3)
    assert data[:2] == b"\x00\x03"
    assert rec.decode_offset_value(data) == v3
    v1 = rec.OffsetValue(42, "", 1000, expire_timestamp=5000)
    data = rec.encode_offset_value(v1)
    assert data[:2] == b"\x00\x01"
    assert rec.decode_offset_value(data) == v1
    v0 = struct.pack(">hq", 0, 5) + b"\x00\x00" + struct.pack(">q", 9)
    assert rec.decode_offset_value(v0) == rec.OffsetValue(5, "", 9)


def test_group_value_round_trips():
    value = rec.GroupValue("consumer", 4, "range", "m1", 123, (
        rec.MemberValue("m1", "cli", "/1.2.3.4", 10000, 30000, b"sub", b"asg", "inst"),
        rec.MemberValue("m2", "cli", "/1.2.3.5", 10000, 30000, b"", b"", None),
    ))
    data = rec.encode_group_value(value)
    assert data[:2] == b"\x00\x03"
    assert rec.decode_group_value(data) == value
    empty = rec.GroupValue("", 2, None, None, 5)
    assert rec.decode_group_value(rec.encode_group_value(empty)) == empty


def test_truncated_records_are_corrupt():
    with pytest.raises(CorruptRecordError):
        rec.decode_key(b"\x00\x01\x00\x05ab")
    with pytest.raises(CorruptRecordError):
        rec.decode_key(b"\x00\x09\x00\x00")


def test_partition_for_matches_java_hash_code():
    assert java_string_hash("hello") == 99162322  # "hello".hashCode() in Java
    assert java_string_hash("") == 0
    assert java_string_hash("😀") == 1772899  # surrogate pair, UTF-16 code units
    assert partition_for("my-group", 50) == abs(java_string_hash("my-group")) % 50
    # Integer.MIN_VALUE maps to partition 0, as Kafka's Utils.abs does
    assert partition_for("polygenelubricants", 50) == 0
    assert java_string_hash("polygenelubricants") == -(2**31)


def test_delayed_operations_reschedule_and_cancel():
    ops = DelayedOperations()
    fired = []
    ops.schedule("a", 10, lambda: fired.append("a1"))
    ops.schedule("a", 20, lambda: fired.append("a2"))
    ops.schedule("b", 15, lambda: fired.append("b"))
    ops.schedule("c", 5, lambda: fired.append("c"))
    ops.cancel("c")
    assert ops.next_deadline() == 15
    for cb in ops.pop_due(19):
        cb()
    assert fired == ["b"]
    for cb in ops.pop_due(20):
        cb()
    assert fired == ["b", "a2"] and ops.next_deadline() is None
