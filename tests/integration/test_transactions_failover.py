"""A transaction coordinator killed (SIGKILL) mid-transaction, on a 3-broker serve cluster:
the transaction ends up committed or aborted as a whole, never half visible, and
read_committed consumers move past it."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from core.cluster.local import LocalCluster, free_base_port

pytestmark = pytest.mark.timeout(150)


CONFIG = {
    "min.insync.replicas": "2",
    "replica.lag.time.max.ms": "3000",
    "offsets.topic.num.partitions": "3",
    "group.initial.rebalance.delay.ms": "0",
    "transaction.state.log.num.partitions": "2",
    "broker.session.timeout.ms": "4000",
    "broker.heartbeat.interval.ms": "500",
}


def _find_txn_coordinator(bootstrap: str, txn_id: str) -> int:
    async def ask() -> int:
        from core.network.client import KafkaConnection
        for address in bootstrap.split(","):
            host, port = address.split(":")
            try:
                conn = await KafkaConnection.connect(host, int(port), timeout=5)
            except Exception:
                continue
            try:
                found = await conn.request(10, key_type=1, key=txn_id,
                                           coordinator_keys=[txn_id])
                entry = found.coordinators[0]
                if entry.error_code == 0:
                    return int(entry.node_id)
            finally:
                await conn.close()
        raise AssertionError("no transaction coordinator found")

    return asyncio.run(ask())


def _read_committed(bootstrap: str, topic: str, until: bytes, timeout: float = 60.0,
                    ) -> list[bytes]:
    """read_committed values of both partitions, until `until` has been seen."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"r-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest", "isolation.level": "read_committed",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(2)])
    values: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            values.append(msg.value())
            if msg.value() == until:
                end = time.monotonic() + 1.0
                while time.monotonic() < end:  # the rest of that transaction
                    more = consumer.poll(0.2)
                    if more is not None and not more.error():
                        values.append(more.value())
                return values
    finally:
        consumer.close()
    raise AssertionError(f"read_committed never reached {until!r}; saw {len(values)}")


def test_coordinator_killed_mid_transaction(tmp_path: Path) -> None:
    cluster = LocalCluster(tmp_path / "c", brokers=3, port=free_base_port(3), config=CONFIG,
                           ready_timeout=90, stop_timeout=40)
    cluster.start()
    try:
        bootstrap = cluster.bootstrap
        assert bootstrap is not None
        topic = f"fo-{uuid.uuid4().hex[:8]}"
        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_topics([NewTopic(topic, 2, 3)])[topic].result(20)
        txn_id = f"fo-{uuid.uuid4().hex[:8]}"
        conf = {"bootstrap.servers": bootstrap, "transactional.id": txn_id, "linger.ms": 5,
                "transaction.timeout.ms": 20000}
        producer = Producer(conf)
        producer.init_transactions(60)
        producer.begin_transaction()
        for i in range(10):
            producer.produce(topic, b"a%d" % i, partition=i % 2)
        producer.commit_transaction(60)

        producer.begin_transaction()
        for i in range(10):
            producer.produce(topic, b"b%d" % i, partition=i % 2)
        producer.flush(30)
        coordinator = _find_txn_coordinator(bootstrap, txn_id)
        cluster.control.kill_sync(coordinator)

        try:
            producer.commit_transaction(60)
            outcome = "commit"
        except KafkaException as exc:
            error = exc.args[0]
            if error.txn_requires_abort():
                producer.abort_transaction(60)
                outcome = "abort"
            else:  # fatal: a new instance takes over (the old transaction completes first)
                outcome = "unknown"
                producer = Producer(conf)
                producer.init_transactions(60)
        producer.begin_transaction()
        producer.produce(topic, b"c-end", partition=0)
        producer.commit_transaction(60)

        values = _read_committed(bootstrap, topic, b"c-end")
        a = sorted(v for v in values if v.startswith(b"a"))
        b = sorted(v for v in values if v.startswith(b"b"))
        assert a == sorted(b"a%d" % i for i in range(10))
        assert b in ([], sorted(b"b%d" % i for i in range(10))), b  # never half visible
        if outcome == "commit":
            assert len(b) == 10
        elif outcome == "abort":
            assert b == []
        assert len(values) == len(set(values))
    finally:
        cluster.stop()
