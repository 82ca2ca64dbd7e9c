"""The per-broker fault table: which links a broker's fault reaches, and how."""

from __future__ import annotations

import pytest

from core.netfaults.faults import FaultTable, source_broker


def test_source_broker_from_our_inter_broker_client_ids() -> None:
    assert source_broker("replica-fetcher-2") == 2
    assert source_broker("raft-13") == 13
    assert source_broker("broker-1") == 1
    assert source_broker("txn-markers-3") == 3
    for client in (None, "", "rdkafka", "kaflab", "broker-", "my-broker-2", "raft-2x"):
        assert source_broker(client) is None


def test_isolate_cuts_broker_links_both_ways_but_not_clients() -> None:
    table = FaultTable()
    table.apply(2, "isolate")
    assert table.policy(None, 2) == ("ok", 0.0)  # a client still reaches 2
    assert table.policy(1, 2)[0] == "blackhole"  # peer -> 2
    assert table.policy(2, 1)[0] == "blackhole"  # 2 -> peer
    assert table.policy(2, 2)[0] == "ok"  # 2 to itself (e.g. its own controller)
    assert table.policy(1, 3)[0] == "ok"  # the others still talk
    assert table.policy(None, 1)[0] == "ok"


def test_drop_and_blackhole_reach_every_link_of_the_broker() -> None:
    table = FaultTable()
    table.apply(3, "drop")
    assert table.policy(None, 3)[0] == "drop"
    assert table.policy(3, 1)[0] == "drop"
    assert table.policy(1, 2)[0] == "ok"
    table.apply(3, "blackhole")
    assert table.policy(None, 3)[0] == "blackhole"
    assert table.policy(3, 1)[0] == "blackhole"


def test_latency_adds_up_per_end_and_combines_with_modes() -> None:
    table = FaultTable()
    table.apply(1, "latency", 200)
    table.apply(2, "latency", 50)
    assert table.policy(None, 1) == ("ok", 200.0)
    assert table.policy(2, 1) == ("ok", 250.0)
    assert table.policy(1, 3) == ("ok", 200.0)
    table.apply(1, "isolate")
    assert table.get(1).describe() == "isolate, +200 ms"
    assert table.policy(None, 1) == ("ok", 200.0)
    table.apply(1, "clear")
    assert table.get(1).healthy and table.get(1).to_json() is None
    assert table.items() == [(2, table.get(2))]


def test_changes_are_announced_and_bad_faults_refused() -> None:
    table = FaultTable()
    seen: list[int] = []
    table.subscribe(lambda: seen.append(1))
    table.apply(1, "drop")
    table.clear_all()
    assert len(seen) == 2 and not table.active
    with pytest.raises(ValueError):
        table.apply(1, "unplug")
    with pytest.raises(ValueError):
        table.apply(1, "latency", None)


def test_supervisor_fault_lines_become_timeline_fault_events() -> None:
    from core.timeline.logs import parse_serve_line

    for line, broker in (("kaflab serve: network fault on broker 2: isolate "
                          "(cut off from the other brokers)", 2),
                         ("kaflab serve: network fault on broker 3 cleared", 3)):
        event = parse_serve_line(line, 1.0)
        assert event is not None and event.kind == "network-fault"
        assert event.broker == broker and event.is_fault
