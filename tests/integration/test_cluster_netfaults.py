"""Network faults through the supervisor's proxies on a real 3-broker `serve` cluster.

Every byte to a broker crosses its proxy (clients, replication, Raft, heartbeats), so:
latency shows in round trips; `drop` makes clients and peers lose a partition leader and fail
over; `isolate` cuts the leader off from the other brokers only: the controller fences it (no
heartbeats arrive), leadership moves, an acks=all producer carries on with the new leader while
clients can still reach the old one, and after `clear` it rejoins and the ISR heals. Every
acknowledged record is read back, once. The cluster (LocalCluster: a `serve` subprocess) is
ended by PID in the fixture's teardown.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.cluster import LocalCluster, free_base_port, read_cluster_json
from core.cluster.kafka_probe import probe_api_versions, probe_controller, probe_registered
from core.cluster.supervisor import MAIN_PY
from core.network.client import KafkaConnection
from tests.fixtures import running_local_cluster, wait_for

confluent_kafka = pytest.importorskip("confluent_kafka")
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

pytestmark = pytest.mark.timeout(300)

CONFIG = {
    "min.insync.replicas": "2",
    "replica.lag.time.max.ms": "3000",
    "broker.session.timeout.ms": "6000",
    "broker.heartbeat.interval.ms": "1000",
    "group.initial.rebalance.delay.ms": "0",
    "offsets.topic.num.partitions": "3",
    "auto.create.topics.enable": "false",
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    yield from running_local_cluster(tmp_path_factory, "netfaults", CONFIG)


def ctl(cluster: LocalCluster, *args: str) -> str:
    result = subprocess.run([sys.executable, str(MAIN_PY), "ctl", "--data-dir",
                             str(cluster.data_dir), *args],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def public_port(cluster: LocalCluster, broker_id: int) -> int:
    return cluster.port + broker_id - 1


def ping_seconds(port: int, timeout: float = 5.0) -> float | None:
    """Seconds for connect + ApiVersions through the proxy, None if it failed."""
    started = time.monotonic()
    ok = asyncio.run(probe_api_versions("127.0.0.1", port, timeout=timeout))
    return time.monotonic() - started if ok else None


def partition_state(admin: AdminClient, topic: str, partition: int) -> tuple[int, list[int]]:
    meta = admin.list_topics(topic, timeout=5).topics[topic].partitions[partition]
    return meta.leader, list(meta.isrs)


def healthy(cluster: LocalCluster) -> None:
    """Clear every fault and wait for all brokers registered and every ISR full."""
    for broker_id in (1, 2, 3):
        cluster.control.netfault_sync(broker_id, "clear")
    wait_for(lambda: all(asyncio.run(probe_registered("127.0.0.1", public_port(cluster, b)))
                         == {1, 2, 3} for b in (1, 2, 3)), 60, "every broker registered")


def test_latency_shows_in_round_trips_and_status(cluster: LocalCluster) -> None:
    port = public_port(cluster, 2)
    base = sorted(t for t in (ping_seconds(port) for _ in range(5)) if t is not None)
    assert len(base) == 5
    assert "broker 2: +200 ms" in ctl(cluster, "netfault", "2", "latency", "200")
    try:
        doc = read_cluster_json(cluster.data_dir) or {}
        entry = next(b for b in doc["brokers"] if b["id"] == 2)
        assert entry["netfault"]["latency_ms"] == 200 and doc["fault_proxies"] is True
        assert "+200 ms" in ctl(cluster, "status")
        slow = sorted(t for t in (ping_seconds(port) for _ in range(5)) if t is not None)
        assert len(slow) == 5
        assert slow[2] - base[2] >= 0.18, (base, slow)
        assert slow[2] < base[2] + 1.0, (base, slow)
        # the other brokers are not slowed by broker 2's fault
        other = sorted(t for t in (ping_seconds(public_port(cluster, 1)) for _ in range(3))
                       if t is not None)
        assert other[1] < base[2] + 0.15, (base, other)
    finally:
        assert "cleared" in ctl(cluster, "netfault", "2", "clear")
    after = sorted(t for t in (ping_seconds(port) for _ in range(5)) if t is not None)
    assert after[2] < base[2] + 0.1, (base, after)
    doc = read_cluster_json(cluster.data_dir) or {}
    assert all(b["netfault"] is None for b in doc["brokers"])


class AckedProducer:
    """An idempotent acks=all confluent-kafka producer writing "<seq>" values round-robin to
    the given partitions (so it has a connection to every leader, as a real workload does:
    librdkafka asks its connected brokers for metadata, and a producer connected only to a
    partitioned leader would keep reading that broker's frozen metadata)."""

    def __init__(self, bootstrap: str, topic: str, partitions: list[int]) -> None:
        self.topic, self.partitions = topic, partitions
        self.acked: dict[int, list[int]] = {p: [] for p in partitions}
        self.errors: list[str] = []
        self.producer = confluent_kafka.Producer({
            "bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
            "linger.ms": 5, "request.timeout.ms": 5000, "message.timeout.ms": 120000,
            "topic.metadata.refresh.interval.ms": 1000, "socket.timeout.ms": 5000,
            "error_cb": lambda err: self.errors.append(err.name())})
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _delivered(self, err: Any, msg: Any) -> None:
        if err is None:
            self.acked[msg.partition()].append(int(msg.value()))

    def _run(self) -> None:
        seq = 0
        while not self._stop.is_set():
            try:
                self.producer.produce(self.topic, str(seq).encode(),
                                      partition=self.partitions[seq % len(self.partitions)],
                                      on_delivery=self._delivered)
                seq += 1
            except BufferError:
                pass
            self.producer.poll(0.01 if seq % 10 == 0 else 0)
        self.producer.flush(120)

    def __enter__(self) -> AckedProducer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(150)


def read_partition(bootstrap: str, topic: str, partition: int) -> list[bytes]:
    consumer = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": "verify",
                                         "enable.auto.commit": False,
                                         "enable.partition.eof": True})
    try:
        tp = confluent_kafka.TopicPartition(topic, partition)
        _low, high = consumer.get_watermark_offsets(tp, timeout=15)
        consumer.assign([confluent_kafka.TopicPartition(topic, partition, 0)])
        values: list[bytes] = []
        deadline = time.monotonic() + 60
        while len(values) < high and time.monotonic() < deadline:
            for msg in consumer.consume(1000, 0.5):
                if msg.error() is None:
                    values.append(msg.value())
        return values
    finally:
        consumer.close()


@pytest.mark.parametrize("fault", ["isolate", "drop", "blackhole"])
def test_partition_leader_cut_off_fails_over_and_heals(cluster: LocalCluster, fault: str) -> None:
    assert cluster.bootstrap is not None
    healthy(cluster)
    topic = f"cut-{fault}"
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    admin.create_topics([NewTopic(topic, 3, 3, config={"min.insync.replicas": "2"})])[topic] \
        .result(30)
    wait_for(lambda: all(len(partition_state(admin, topic, p)[1]) == 3 for p in range(3)),
             30, "full ISRs")
    controller = int((read_cluster_json(cluster.data_dir) or {})["controller_id"])
    partition, victim = next((p, partition_state(admin, topic, p)[0]) for p in range(3)
                             if partition_state(admin, topic, p)[0] != controller)
    others = [b for b in (1, 2, 3) if b != victim]
    # the controller's own view (a librdkafka admin may ask the victim, whose metadata froze)
    at_controller = public_port(cluster, controller)

    with AckedProducer(cluster.bootstrap, topic, [0, 1, 2]) as producer:
        acked = producer.acked[partition]
        wait_for(lambda: len(acked) >= 200, 30, "records acknowledged before")
        message = cluster.control.netfault_sync(victim, fault)
        assert f"broker {victim}: {fault}" in message
        cut_at = time.monotonic()
        # the controller fences the victim (no heartbeat gets through) and moves leadership
        wait_for(lambda: asyncio.run(leader_at(at_controller, topic, partition)) in others, 45,
                 f"leadership of {topic}-{partition} moving off broker {victim}")
        moved_after = time.monotonic() - cut_at
        wait_for(lambda: victim not in (asyncio.run(probe_registered(
            "127.0.0.1", at_controller, timeout=5.0)) or {victim}), 10,
            f"broker {victim} fenced")
        if fault == "isolate":  # clients still reach the partitioned broker...
            assert ping_seconds(public_port(cluster, victim)) is not None
        else:  # ...unlike a dropped or blackholed one
            assert ping_seconds(public_port(cluster, victim), timeout=2.0) is None
        # the acks=all producer carries on with the new leader
        acked_then = len(acked)
        wait_for(lambda: len(acked) >= acked_then + 200, 60,
                 f"records acknowledged by the new leader of {topic}-{partition}")
        assert "cleared" in cluster.control.netfault_sync(victim, "clear")
        wait_for(lambda: len(asyncio.run(partition_at(at_controller, topic, partition))[1])
                 == 3, 60, f"broker {victim} back in the ISR of {topic}-{partition}")
        wait_for(lambda: len(acked) >= acked_then + 400, 60, "records after healing")
    in_log = 0
    for p, acked_p in producer.acked.items():  # every acknowledged record, once
        seen = [int(v) for v in read_partition(cluster.bootstrap, topic, p)]
        assert len(seen) == len(set(seen)), f"duplicates in {topic}-{p}"
        missing = set(acked_p) - set(seen)
        assert not missing, \
            f"{topic}-{p}: {len(missing)} acknowledged records lost, e.g. {sorted(missing)[:5]}"
        in_log += len(seen)
    print(json.dumps({"fault": fault, "victim": victim, "leader_moved_s": round(moved_after, 2),
                      "acked": sum(map(len, producer.acked.values())), "in_log": in_log}))


def acks_all_round_trip(bootstrap: str, topic: str, partition: int, count: int = 7) -> float:
    """Median seconds for one acks=all record, produced and flushed alone."""
    producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "acks": "all",
                                         "linger.ms": 0})
    producer.produce(topic, b"warmup", partition=partition)
    assert producer.flush(30) == 0
    times = []
    for _ in range(count):
        started = time.monotonic()
        producer.produce(topic, b"x", partition=partition)
        assert producer.flush(30) == 0
        times.append(time.monotonic() - started)
    return sorted(times)[count // 2]


def test_latency_on_a_follower_slows_acks_all_on_its_leader(cluster: LocalCluster) -> None:
    """Replication crosses the proxies too: a slow follower (still in the ISR) delays the
    high watermark, so an acks=all produce to another broker waits for it."""
    assert cluster.bootstrap is not None
    healthy(cluster)
    topic = "slow-follower"
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    admin.create_topics([NewTopic(topic, 1, 3, config={"min.insync.replicas": "2"})])[topic] \
        .result(30)
    wait_for(lambda: len(partition_state(admin, topic, 0)[1]) == 3, 30, "full ISR")
    leader = partition_state(admin, topic, 0)[0]
    follower = next(b for b in (1, 2, 3) if b != leader)
    base = acks_all_round_trip(cluster.bootstrap, topic, 0)
    cluster.control.netfault_sync(follower, "latency", 300)
    try:
        slow = acks_all_round_trip(cluster.bootstrap, topic, 0)
        assert len(partition_state(admin, topic, 0)[1]) == 3  # slow, not out of the ISR
    finally:
        cluster.control.netfault_sync(follower, "clear")
    assert slow - base >= 0.25, (base, slow)
    print(json.dumps({"acks_all_s": base, "with_slow_follower_s": slow}))


def test_isolated_controller_is_replaced_and_rejoins(cluster: LocalCluster) -> None:
    """Raft crosses the proxies: the other voters elect a new controller while the old one is
    cut off, keep changing metadata, and the old one follows again after clear."""
    assert cluster.bootstrap is not None
    healthy(cluster)
    old = int((read_cluster_json(cluster.data_dir) or {})["controller_id"])
    others = [b for b in (1, 2, 3) if b != old]
    cluster.control.netfault_sync(old, "isolate")
    try:
        def new_controller() -> bool:
            views = {asyncio.run(probe_controller("127.0.0.1", public_port(cluster, b)))
                     for b in others}
            return len(views) == 1 and views.pop() in others
        wait_for(new_controller, 45, f"a controller other than {old}")
        assert asyncio.run(create_topic_at(public_port(cluster, others[0]),
                                           "during-isolation")) == 0
    finally:
        cluster.control.netfault_sync(old, "clear")
    # the old controller catches up with the metadata written without it
    wait_for(lambda: "during-isolation" in asyncio.run(topics_of(public_port(cluster, old))),
             60, f"broker {old} sees the new topic")
    healthy(cluster)




async def metadata_of(port: int, topics: list[str] | None) -> Any:
    """The Metadata answer of the one broker behind ``port`` (None: every topic)."""
    async with await KafkaConnection.connect("127.0.0.1", port, client_id="test",
                                             timeout=5) as conn:
        return await conn.request(3, max_version=12, min_version=1, topics=None
                                  if topics is None else [{"name": t} for t in topics],
                                  allow_auto_topic_creation=False)


async def partition_at(port: int, topic: str, partition: int) -> tuple[int, list[int]]:
    """(leader, isr) of topic-partition as the broker behind ``port`` sees it."""
    response = await metadata_of(port, [topic])
    return next((int(p.leader_id), [int(b) for b in p.isr_nodes]) for t in response.topics
                if str(t.name) == topic for p in t.partitions
                if int(p.partition_index) == partition)


async def leader_at(port: int, topic: str, partition: int) -> int:
    return (await partition_at(port, topic, partition))[0]


async def create_topic_at(port: int, topic: str) -> int:
    """CreateTopics (1 partition, RF 2) sent to the broker behind ``port``; the error code."""
    async with await KafkaConnection.connect("127.0.0.1", port, client_id="test",
                                             timeout=5) as conn:
        response = await conn.request(19, max_version=5, timeout=35, fields={
            "topics": [{"name": topic, "num_partitions": 1, "replication_factor": 2,
                        "assignments": [], "configs": []}],
            "timeout": 30000, "validate_only": False})
    return int(response.topics[0].error_code)


async def topics_of(port: int) -> set[str]:
    """The topic names the broker behind ``port`` knows."""
    return {str(t.name) for t in (await metadata_of(port, None)).topics}


def test_netfault_refused_without_proxies_and_for_bad_input(cluster: LocalCluster,
                                                            tmp_path: Path) -> None:
    with pytest.raises(Exception, match="unknown network fault"):
        cluster.control.netfault_sync(1, "unplug")
    with pytest.raises(Exception, match="latency needs"):
        cluster.control.netfault_sync(1, "latency")
    with pytest.raises(Exception, match="no broker 9"):
        cluster.control.netfault_sync(9, "drop")
    with LocalCluster(tmp_path / "direct", brokers=1, port=free_base_port(1),
                      config={"offsets.topic.num.partitions": "1"},
                      extra_args=["--no-fault-proxies"]) as direct:
        with pytest.raises(Exception, match="--no-fault-proxies"):
            direct.control.netfault_sync(1, "drop")
        doc = read_cluster_json(direct.data_dir) or {}
        assert doc["fault_proxies"] is False and doc["brokers"][0]["listen_port"] is None
