"""Pure parts of core.admin: consumer protocol decoding, murmur2, metrics, rates, errors."""

from __future__ import annotations

import io

import pytest
from kio.schema.consumer_protocol_assignment.v3 import ConsumerProtocolAssignment as A3
from kio.schema.consumer_protocol_assignment.v3.data import TopicPartition as TP3
from kio.serial import entity_writer

from core.admin.assignment import decode_assignment, decode_subscription, encode_assignment
from core.admin.client import parse_bootstrap, spec_timestamp, with_offsets
from core.admin.errors import error_for
from core.admin.metrics import RateTracker, parse_metrics
from core.admin.producer import default_partition, murmur2
from core.admin.snapshot import GroupInfo, MemberInfo, PartitionInfo, diff_keys, frozen_items
from core.common.errors import NotLeaderOrFollowerError, UnknownTopicOrPartitionError


def _kio_bytes(entity, version: int) -> bytes:
    buf = io.BytesIO()
    buf.write(version.to_bytes(2, "big"))
    entity_writer(type(entity))(buf, entity)
    return buf.getvalue()


def test_decode_assignment_matches_kio_encoding_v0_and_v3():
    a3 = A3(assigned_partitions=(TP3(topic="b", partitions=(2, 0)),
                                 TP3(topic="a", partitions=(1,))), user_data=b"ud")
    assert decode_assignment(_kio_bytes(a3, 3)) == (("a", 1), ("b", 0), ("b", 2))
    raw = encode_assignment({"t": [0, 1]}, version=0)
    assert decode_assignment(raw) == (("t", 0), ("t", 1))
    assert decode_assignment(b"") == ()
    assert decode_assignment(None) == ()
    with pytest.raises(ValueError):
        decode_assignment(b"\x00\x00\x00\x00\x00\x05\x00")


def test_decode_subscription_v0():
    raw = (b"\x00\x00" + b"\x00\x00\x00\x02" + b"\x00\x01x" + b"\x00\x01y"
           + b"\xff\xff\xff\xff")
    sub = decode_subscription(raw)
    assert sub.topics == ("x", "y") and sub.user_data is None


# Kafka's UtilsTest.testMurmur2
@pytest.mark.parametrize(("data", "expected"), [
    (b"21", -973932308),
    (b"foobar", -790332482),
    (b"a-little-bit-long-string", -985981536),
    (b"a-little-bit-longer-string", -1486304829),
    (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    (b"abc", 479470107),
])
def test_murmur2_java_values(data, expected):
    assert murmur2(data) == expected


def test_default_partition_matches_kafka_python():
    kp = pytest.importorskip("kafka.partitioner.default")
    for i in range(200):
        key = f"key-{i}".encode()
        assert default_partition(key, 7) == (kp.murmur2(key) & 0x7FFFFFFF) % 7


METRICS = """\
# HELP kafka_server_brokertopicmetrics_bytesin_total Bytes appended, per topic
# TYPE kafka_server_brokertopicmetrics_bytesin_total counter
kafka_server_brokertopicmetrics_bytesin_total{topic="a"} 100.0
kafka_server_brokertopicmetrics_bytesin_total{topic="b"} 50.0
# TYPE kafka_server_brokertopicmetrics_messagesin_total counter
kafka_server_brokertopicmetrics_messagesin_total{topic="a"} 10.0
# TYPE kafka_server_replica_lag gauge
kafka_server_replica_lag{topic="a",partition="0",replica="2"} 7.0
kafka_server_replica_lag{topic="a",partition="0",replica="3"} 0.0
# TYPE kafka_log_log_logendoffset gauge
kafka_log_log_logendoffset{topic="a",partition="0"} 42.0
# TYPE kafka_log_log_size gauge
kafka_log_log_size{topic="a",partition="0"} 4096.0
"""


def test_parse_metrics():
    m = parse_metrics(METRICS)
    assert m.topic_counters["bytes_in"] == {"a": 100.0, "b": 50.0}
    assert m.counter_total("bytes_in") == 150.0
    assert m.counter_total("bytes_out") is None
    assert m.replica_lag[("a", 0)] == {2: 7, 3: 0}
    assert m.log_end_offset[("a", 0)] == 42
    assert m.log_size[("a", 0)] == 4096


def test_rate_tracker():
    r = RateTracker()
    assert r.update("k", 100, 10.0) is None
    assert r.update("k", 300, 12.0) == 100.0
    assert r.update("k", 50, 13.0) is None  # reset (restart)
    assert r.update("k", 150, 14.0) == 100.0
    assert r.update("k", 150, 14.0) is None  # no time passed
    r.retain(set())
    assert len(r) == 0


def test_parse_bootstrap_and_specs():
    assert parse_bootstrap("a:1, b:2,PLAINTEXT://c:3,d") == [("a", 1), ("b", 2), ("c", 3),
                                                             ("d", 9092)]
    assert parse_bootstrap("[::1]:9093") == [("::1", 9093)]
    assert spec_timestamp("earliest") == -2 and spec_timestamp("latest") == -1
    assert spec_timestamp(1234) == 1234
    with pytest.raises(ValueError):
        spec_timestamp("bogus")


def test_error_for_uses_kafka_messages_and_classes():
    err = error_for(3, None, "t-0")
    assert isinstance(err, UnknownTopicOrPartitionError)
    assert str(err) == "t-0: UNKNOWN_TOPIC_OR_PARTITION: This server does not host this " \
                       "topic-partition."
    assert isinstance(error_for(6), NotLeaderOrFollowerError)
    assert error_for(5).__class__.__name__ == "LeaderNotAvailableError"
    assert error_for(0) is None
    assert "custom" in str(error_for(3, "custom"))


def test_with_offsets_computes_lag_and_owner():
    from core.admin.client import CommittedOffset
    info = GroupInfo("g", "Stable", "consumer", "range",
                     (MemberInfo("m1", assignment=(("t", 0),)),))
    out = with_offsets(info, {("t", 0): CommittedOffset(5), ("t", 1): CommittedOffset(9)},
                       {("t", 0): 10, ("t", 1): 9})
    rows = {(o.topic, o.partition): o for o in out.offsets}
    assert rows[("t", 0)].lag == 5 and rows[("t", 0)].owner == "m1"
    assert rows[("t", 1)].lag == 0 and rows[("t", 1)].owner is None
    assert out.total_lag == 5


def test_snapshot_types_are_hashable_and_diffable():
    a = PartitionInfo("t", 0, 1, replicas=(1, 2), isr=(1, 2),
                      replica_lag=frozen_items({2: 0, 1: 0}))
    b = PartitionInfo("t", 0, 2, replicas=(1, 2), isr=(2,))
    c = PartitionInfo("t", 1, 1)
    assert hash(a) != hash(b) or a != b
    added, removed, changed = diff_keys([a], [b, c])
    assert added == {("t", 1)} and removed == set() and changed == {("t", 0)}
    assert b.under_replicated and not a.under_replicated
