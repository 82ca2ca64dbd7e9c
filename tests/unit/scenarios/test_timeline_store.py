"""TimelineStore and log parsing: state at T, unchanged ticks, retention, codec round trip."""

from __future__ import annotations

from core.admin.snapshot import (
    BrokerInfo,
    ClusterSnapshot,
    GroupInfo,
    GroupOffset,
    PartitionInfo,
    QuorumInfo,
    QuorumVoter,
    TopicInfo,
)
from core.timeline.codec import decode, encode
from core.timeline.logs import parse_broker_line, parse_serve_line
from core.timeline.store import TimelineStore


def snap(t: float, leader: int = 1, rate: float = 0.0) -> ClusterSnapshot:
    parts = (PartitionInfo("orders", 0, leader, 3, (1, 2, 3), (1, 2, 3), (), 0, 10, 10,
                           ((2, 0),)),)
    return ClusterSnapshot(
        taken_at=t, cluster_id="c", controller_id=1,
        brokers=(BrokerInfo(1, "127.0.0.1", 9092, bytes_in_per_sec=rate),
                 BrokerInfo(2, "127.0.0.1", 9093)),
        topics=(TopicInfo("orders", partitions=parts, configs=(("retention.ms", "1"),)),),
        groups=(GroupInfo("g", "Empty", offsets=(GroupOffset("orders", 0, 5, 10, 5),)),),
        quorum=QuorumInfo(1, 2, 30, (QuorumVoter(1, 30, 0),)))


def test_codec_round_trip():
    s = snap(5.0, rate=1.5)
    assert decode(encode(s)) == s
    assert "rack" not in encode(s)["brokers"][0]  # defaults left out


def test_state_at_and_unchanged_ticks(tmp_path):
    store = TimelineStore(tmp_path / "t.sqlite")
    store.add_snapshot(snap(100.0, rate=1.0))
    store.add_snapshot(snap(101.0, rate=2.0))  # only a rate changed: "unchanged" row
    store.add_snapshot(snap(102.0, leader=2))
    assert store.count() == 3 and store.span() == (100.0, 102.0)
    assert store.state_at(99.0) is None
    s = store.state_at(101.5)
    assert s.taken_at == 101.0 and s.topic("orders").partitions[0].leader == 1
    assert store.state_at(500).topic("orders").partitions[0].leader == 2
    store.add_event("scenario-fault", "kill broker 1", when=101.2)
    [e] = store.events_between(101, 102)
    assert e.is_fault and e.source == "scenario"
    store.close()
    reopened = TimelineStore(tmp_path / "t.sqlite")
    assert reopened.state_at(101.5).topic("orders") is not None
    reopened.close()


def test_retention_keeps_a_full_snapshot(tmp_path):
    store = TimelineStore(tmp_path / "t.sqlite", retention_s=10)
    for i in range(100):  # retention runs every 50 writes
        store.add_snapshot(snap(1000.0 + i))  # identical: one full row, then markers
    first, last = store.span()
    assert (first, last) == (1089.0, 1099.0)
    assert store.count() == 12  # 1089..1099 and the full row kept, moved to 1089
    assert store.state_at(first) is not None and store.state_at(last) is not None
    store.close()


def test_parse_log_lines():
    e = parse_broker_line("[2026-11-25 20:34:01,870] INFO core.broker.raft_io: metadata "
                          "quorum: leader in epoch 1, leader 1", 1)
    assert e.kind == "quorum-leader" and e.broker == 1 and e.ts % 1 > 0.8
    assert parse_broker_line("[2026-11-25 20:34:01,870] INFO a.b: hello", 1) is None
    err = parse_broker_line("[2026-11-25 20:34:01,870] ERROR a.b: boom", 2)
    assert err.kind == "error"
    assert parse_broker_line("garbage", 1) is None
    assert parse_broker_line("[2026-11-25 20:34:01,870] WARNING core.metadata.controller: "
                             "fencing broker 3: no heartbeat for 6.0s", 1).kind == "fencing"
    k = parse_serve_line("kaflab serve: broker 2 (pid 9) exited with -9: killed", 7.0)
    assert (k.kind, k.broker, k.ts) == ("broker-killed", 2, 7.0)
    assert parse_serve_line("kaflab serve: controller is now 3", 1).broker is None
    assert parse_serve_line("kaflab serve: stopping brokers", 1) is None


def test_replication_throttle_notes_are_faults():
    """The console notes throttles as ``replication-throttle``: the Timeline marks them."""
    from core.timeline.store import TimelineEvent

    assert TimelineEvent(1.0, "console", 2, "replication-throttle", "throttle").is_fault
    assert TimelineEvent(1.0, "console", 2, "network-fault", "isolate").is_fault
    assert not TimelineEvent(1.0, "scenario", None, "scenario-setup", "running").is_fault
