"""Scenario files: parsing, validation messages, bundled files, seeded data."""

from __future__ import annotations

import json

import pytest

from core.scenarios.data import RecordTemplate
from core.scenarios.model import ScenarioError, bundled, check_network_support, load, parse

GOOD = {
    "name": "x", "seed": 3, "duration": 12,
    "topics": [{"name": "orders", "partitions": 3, "rf": 3, "configs": {"min.insync.replicas": 2}}],
    "producers": [{"topic": "orders", "rate": 5, "key": "c-{random:10}", "acks": 1}],
    "consumers": [{"group": "g", "topic": "orders", "members": 2, "processing_ms": 50}],
    "faults": [{"at": 8, "fault": "restart", "broker": "last"},
               {"at": 2, "fault": "kill", "leader": "orders/1"},
               {"at": 4, "fault": "latency", "broker": 2, "ms": 200},
               {"at": 5, "action": "pause", "controller": True}],
}


def test_parse_good():
    sc = parse(GOOD)
    assert sc.topics[0].replication_factor == 3
    assert sc.topics[0].configs == (("min.insync.replicas", "2"),)
    assert sc.producers[0].acks == 1 and sc.producers[0].name == "producer-1"
    assert sc.consumers[0].processing_ms == 50
    assert [f.at for f in sc.faults] == [2, 4, 5, 8]  # sorted by time
    assert sc.faults[0].leader == ("orders", 1)
    assert sc.faults[1].is_network and sc.uses_network_faults
    assert sc.faults[2].controller and sc.faults[2].target_text() == "the controller"
    short = sc.with_overrides(seed=9, duration=4.5)
    assert short.seed == 9 and [f.at for f in short.faults] == [2, 4]


@pytest.mark.parametrize(("patch", "message"), [
    ({"duration": 0}, "duration"),
    ({"topics": [{"partitions": 1}]}, "name is required"),
    ({"producers": [{"topic": "t", "rate": 0}]}, "rate must be > 0"),
    ({"producers": [{"topic": "t", "acks": "some"}]}, "acks"),
    ({"faults": [{"at": 1, "fault": "explode", "broker": 1}]}, "fault must be one of"),
    ({"faults": [{"fault": "kill", "broker": 1}]}, "at"),
    ({"faults": [{"at": 1, "fault": "kill"}]}, "exactly one of"),
    ({"faults": [{"at": 1, "fault": "kill", "broker": 1, "controller": True}]}, "exactly one"),
    ({"faults": [{"at": 1, "fault": "latency", "broker": 1}]}, "needs ms"),
    ({"faults": [{"at": 1, "fault": "kill", "leader": "orders"}]}, "TOPIC/PARTITION"),
    ({"consumers": [{"group": "g"}]}, "group and topic"),
])
def test_parse_errors(patch, message):
    with pytest.raises(ScenarioError, match=message):
        parse({**GOOD, **patch})


def test_bundled_scenarios_load():
    names = {p.stem for p in bundled()}
    assert {"quickstart-lagging-consumer", "failover-drill",
            "rolling-restart-under-load"} <= names
    for path in bundled():
        sc = load(path)
        assert sc.producers and sc.duration > 0
    quick = load(next(p for p in bundled() if p.stem == "quickstart-lagging-consumer"))
    assert any(c.processing_ms > 0 for c in quick.consumers)
    partitioned = load(next(p for p in bundled() if p.stem == "partitioned-leader"))
    assert [(f.fault, f.leader) for f in partitioned.cluster_only_faults()] == \
        [("isolate", ("orders", 0))]
    assert partitioned.faults[-1].fault == "clear" and partitioned.faults[-1].broker == "last"
    assert partitioned.topics[0].replication_factor == 3 and partitioned.producers[0].acks == -1
    assert partitioned.consumers


def test_isolate_needs_cluster_fault_proxies():
    sc = parse({**GOOD, "faults": [{"at": 3, "fault": "isolate", "leader": "orders/0"},
                                   {"at": 9, "fault": "clear", "broker": "last"}]})
    assert sc.faults[0].is_network and sc.uses_network_faults
    check_network_support(sc, cluster_fault_proxies=True)  # a serve with fault proxies: fine
    with pytest.raises(ScenarioError, match=r"fault at 3s: isolate the leader of orders-0 "
                                            r"needs a kaflab serve with fault proxies"):
        check_network_support(sc, cluster_fault_proxies=False)
    # latency / drop / blackhole work either way (client proxies reach the scenario's clients)
    check_network_support(parse(GOOD), cluster_fault_proxies=False)


def test_load_bad_yaml(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("topics: [unclosed\n")
    with pytest.raises(ScenarioError, match="invalid YAML"):
        load(path)
    with pytest.raises(ScenarioError, match="cannot read"):
        load(tmp_path / "missing.yaml")


def test_templates_are_seeded():
    def render(seed):
        t = RecordTemplate("c-{random:10}", "{orders}|{clicks}|{counter}|{timestamp}", seed)
        return [t.render(i, now_ms=1000) for i in range(50)]

    a, b, c = render(1), render(1), render(2)
    assert a == b and a != c
    key, value = a[7]
    assert key.startswith(b"c-") and 0 <= int(key[2:]) < 10
    order, click, counter, ts = value.decode().split("|")
    assert json.loads(order)["order_id"] == 7 and "page" in json.loads(click)
    assert counter == "7" and ts == "1000"
    assert RecordTemplate("", "plain", 0).render(0) == (None, b"plain")
