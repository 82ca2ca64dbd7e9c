"""A partition leader killed with SIGKILL, no supervisor to fence it: until the controller
fences it (broker.session.timeout.ms, 9 s), the survivors' Metadata answers must not send
clients back to the dead node. They answer leader -1 / LEADER_NOT_AVAILABLE with the dead
replica offline (core.broker.peer_watch), which keeps librdkafka's fast leader query going;
once the broker is back, its partitions have a live leader again and produce works."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from core.cluster.layout import broker_properties
from core.cluster.local import free_base_port
from core.network.client import KafkaConnection
from tests.fixtures import BrokerProcess, free_port, wait_for

pytestmark = pytest.mark.timeout(180)

TOPIC = "dead-leader"


@pytest.fixture
def trio(tmp_path: Path) -> Iterator[dict[int, BrokerProcess]]:
    """Three brokers of one quorum, started together, each ended by PID at teardown."""
    base = free_base_port(3)
    brokers: dict[int, BrokerProcess] = {}
    for node in (1, 2, 3):
        props = broker_properties(broker_id=node, base_port=base, voters_of=3,
                                  data_dir=tmp_path / f"b{node}" / "data",
                                  metrics_port=free_port(),
                                  overrides={"auto.leader.rebalance.enable": "false"})
        brokers[node] = BrokerProcess(tmp_path / f"b{node}", node_id=node,
                                      port=base + node - 1, overrides=props)
    errors: list[BaseException] = []

    def start(b: BrokerProcess) -> None:
        try:
            b.start(timeout=60)
        except BaseException as exc:  # reported below, after every thread ended
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(b,)) for b in brokers.values()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        if errors:
            raise errors[0]
        yield brokers
    finally:
        for b in brokers.values():
            b.stop()


def partition0(port: int) -> tuple[object, list[int]]:
    """(partition 0's metadata, broker ids listed) as broker `port` answers now."""
    async def ask() -> tuple[object, list[int]]:
        conn = await KafkaConnection.connect("127.0.0.1", port, timeout=2.0)
        try:
            md = await conn.request(3, max_version=12, min_version=1,
                                    topics=[dict(name=TOPIC, topic_id=uuid.UUID(int=0))],
                                    allow_auto_topic_creation=False)
        finally:
            await conn.close()
        parts = [p for t in md.topics for p in t.partitions if p.partition_index == 0]
        return (parts[0] if parts else None), [b.node_id for b in md.brokers]

    return asyncio.run(ask())


def test_survivors_answer_leader_not_available_for_a_killed_unfenced_leader(trio) -> None:
    bootstrap = ",".join(b.bootstrap for b in trio.values())
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(TOPIC, 1, 3, config={"min.insync.replicas": "2"})])[
        TOPIC].result(30)
    any_port = trio[1].port

    def full_isr() -> bool:
        part, _ = partition0(any_port)
        return part is not None and part.leader_id > 0 and len(part.isr_nodes) == 3

    wait_for(full_isr, 60, "ISR of 3")
    leader = partition0(any_port)[0].leader_id
    survivors = [b for n, b in trio.items() if n != leader]

    trio[leader].kill()
    killed_at = time.monotonic()
    for b in survivors:
        def not_sent_to_the_dead(port: int = b.port) -> bool:
            part, _ = partition0(port)
            return part is not None and part.leader_id != leader

        wait_for(not_sent_to_the_dead, 5, f"broker {b.node_id} to stop naming {leader}")
    took = time.monotonic() - killed_at
    for b in survivors:
        part, listed = partition0(b.port)
        if part.leader_id == -1:  # not fenced yet: Kafka's answer for a leader without
            assert part.error_code == 5, part  # a live endpoint: LEADER_NOT_AVAILABLE
            assert leader in part.offline_replicas
            assert leader in listed  # the controller has not fenced it: still registered
    # the session timeout (9 s) is what moves leadership here; well before it, no survivor
    # names the dead leader any more
    assert took < 3.0, f"survivors named the dead leader for {took:.1f}s"

    trio[leader].start(timeout=60)
    for b in trio.values():
        def live_leader(port: int = b.port) -> bool:
            part, _ = partition0(port)
            return part is not None and part.leader_id > 0

        wait_for(live_leader, 60, f"a live leader on broker {b.node_id}")
    acked: list[object] = []
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    producer.produce(TOPIC, b"after", on_delivery=lambda err, msg: acked.append(err))
    producer.flush(30)
    assert acked == [None]
