"""A restarted ex-leader whose log diverged truncates to the new leader and converges.

Records written to a leader while its followers are frozen (acks=1) never reach the ISR; when
that leader dies and a follower takes over with a new leader epoch, the old leader's tail is
not part of the partition's history. On restart it must truncate it (Fetch v12's diverging
epoch, KIP-320) and then hold exactly what the new leader holds.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, ElectionType, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from core.cluster.local import LocalCluster, free_base_port
from tests.fixtures import wait_for as _wait

pytestmark = pytest.mark.timeout(240)
TOPIC = "diverge"


def _produce(bootstrap: str, values: list[str]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "1",
                         "enable.idempotence": False, "message.timeout.ms": 10000})
    errors = []
    for v in values:
        producer.produce(TOPIC, value=v.encode(), partition=0,
                         on_delivery=lambda err, _m: errors.append(err) if err else None)
    assert producer.flush(20) == 0
    assert not errors, errors


def _read_all(bootstrap: str) -> list[str]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"r{time.time()}",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(TOPIC, 0, 0)])
    _low, high = consumer.get_watermark_offsets(TopicPartition(TOPIC, 0), timeout=10)
    values: list[str] = []
    deadline = time.monotonic() + 30
    while len(values) < high and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and msg.error() is None:
            values.append(msg.value().decode())
    consumer.close()
    return values


def test_restarted_ex_leader_truncates_its_divergent_tail(tmp_path: Path):
    cluster = LocalCluster(tmp_path / "c", brokers=3, port=free_base_port(3), config={
        "min.insync.replicas": "1", "auto.leader.rebalance.enable": "false"})
    cluster.start()
    try:
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
        admin.create_topics([NewTopic(TOPIC, 1, 3)])[TOPIC].result(15)

        def state() -> tuple[int, list[int]]:
            p = admin.list_topics(TOPIC, timeout=10).topics[TOPIC].partitions[0]
            return p.leader, list(p.isrs)

        _wait(lambda: len(state()[1]) == 3, what="full ISR")
        committed = [f"c{i}" for i in range(50)]
        _produce(cluster.bootstrap, committed)
        old_leader, isr = state()
        followers = [b for b in isr if b != old_leader]
        control = cluster.control
        _wait(lambda: _read_all(cluster.bootstrap) == committed, what="committed prefix")

        # the followers freeze; the leader takes writes that only it will ever have
        for b in followers:
            control.pause_sync(b)
        # let the followers' parked fetches (replica.fetch.wait.max.ms) answer into their
        # socket buffers first: records sent in those answers would reach them after all
        time.sleep(1.5)
        _produce(cluster.bootstrap, [f"lost{i}" for i in range(20)])
        control.kill_sync(old_leader)
        for b in followers:
            control.resume_sync(b)
        _wait(lambda: state()[0] in followers, what="a follower takes over")

        fresh = [f"new{i}" for i in range(30)]
        _produce(cluster.bootstrap, fresh)
        expected = committed + fresh
        _wait(lambda: _read_all(cluster.bootstrap) == expected, what="new records committed")

        # the ex-leader comes back, truncates, catches up and rejoins the ISR
        control.start_sync(old_leader)
        _wait(lambda: old_leader in state()[1], timeout=60, what="ex-leader back in ISR")
        log_text = (tmp_path / "c" / f"broker-{old_leader}" / "broker.log").read_text()
        assert "diverged" in log_text or "truncating" in log_text

        # it was the preferred replica: elect it leader again and read the partition from it
        _wait(lambda: admin.elect_leaders(ElectionType.PREFERRED, [TopicPartition(TOPIC, 0)])
              .result(10) is not None and state()[0] == old_leader,
              what="ex-leader leads again")
        reads: list[list[str]] = []

        def read_from_ex_leader() -> bool:
            reads.append(_read_all(cluster.bootstrap))  # may fail while metadata settles
            return reads[-1] == expected

        _wait(read_from_ex_leader, what="the ex-leader serves exactly the committed history")
        assert not [v for r in reads for v in r if v.startswith("lost")], \
            "the divergent tail was served"
    finally:
        cluster.stop()
