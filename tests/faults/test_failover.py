"""The guarantee under fire: with acks=all, RF=3 and min.insync.replicas=2, killing, pausing
and restarting brokers (the active controller included) loses no acknowledged record, and an
idempotent producer writes no duplicate. Real `serve` cluster, real confluent-kafka clients."""

from __future__ import annotations

import threading
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from core.cluster.local import LocalCluster
from tests.fixtures import running_local_cluster
from tests.fixtures import wait_for as _wait

pytestmark = pytest.mark.timeout(300)

TOPIC = "orders"
PARTITIONS = 3


class Workload:
    """An idempotent acks=all producer writing unique increasing values per partition."""

    def __init__(self, bootstrap: str) -> None:
        self.producer = Producer({"bootstrap.servers": bootstrap, "acks": "all",
                                  "enable.idempotence": True, "linger.ms": 5,
                                  "message.timeout.ms": 60000})
        self.acked: dict[int, list[int]] = {p: [] for p in range(PARTITIONS)}
        self.failed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _on_delivery(self, err, msg) -> None:
        if err is not None:
            self.failed += 1
        else:
            self.acked[msg.partition()].append(int(msg.value()))

    def _run(self) -> None:
        value = 0
        while not self._stop.is_set():
            for partition in range(PARTITIONS):
                try:
                    self.producer.produce(TOPIC, value=str(value).encode(),
                                          partition=partition, on_delivery=self._on_delivery)
                except BufferError:
                    self.producer.poll(0.05)
                    continue
                value += 1
            self.producer.poll(0)
            time.sleep(0.002)
        self.producer.flush(60)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(90)

    def total(self) -> int:
        return sum(len(v) for v in self.acked.values())


def _partition_state(admin: AdminClient, partition: int = 0) -> tuple[int, list[int]]:
    md = admin.list_topics(TOPIC, timeout=10)
    p = md.topics[TOPIC].partitions[partition]
    return p.leader, list(p.isrs)


def _state_via(cluster: LocalCluster, broker_id: int, partition: int = 0
               ) -> tuple[int, list[int]]:
    """The partition's state as one given (live) broker reports it.

    A long-lived client may keep sending its metadata requests to a SIGSTOPped broker (the TCP
    connection stays up, nothing answers), so while a broker is paused we ask a fresh client
    bootstrapped only with a broker we know is running.
    """
    port = next(b["port"] for b in cluster.control.read_cluster_json()["brokers"]
                if b["id"] == broker_id)
    return _partition_state(AdminClient({"bootstrap.servers": f"127.0.0.1:{port}"}),
                            partition)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    yield from running_local_cluster(tmp_path_factory, "cluster", {
        "min.insync.replicas": "2", "replica.lag.time.max.ms": "3000",
        "offsets.topic.num.partitions": "3", "group.initial.rebalance.delay.ms": "0"})


def test_no_acknowledged_record_lost_across_kills_pauses_and_restarts(cluster):
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    admin.create_topics([NewTopic(TOPIC, PARTITIONS, 3)])[TOPIC].result(15)
    control = cluster.control
    workload = Workload(cluster.bootstrap)
    workload.start()
    _wait(lambda: workload.total() > 300, what="first acknowledgements")

    # 1. SIGKILL the leader of partition 0: a new leader from the ISR, the ISR shrinks
    leader, _ = _partition_state(admin)
    control.kill_sync(leader)
    _wait(lambda: _partition_state(admin)[0] not in (leader, -1), what="new leader")
    _wait(lambda: leader not in _partition_state(admin)[1], what="ISR shrink")
    before = workload.total()
    _wait(lambda: workload.total() > before + 300, what="produce after failover")
    control.start_sync(leader)
    _wait(lambda: len(_partition_state(admin)[1]) == 3, timeout=60, what="ISR re-expands")

    # 2. SIGKILL the active controller
    controller = admin.list_topics(timeout=10).controller_id
    control.kill_sync(controller)
    _wait(lambda: admin.list_topics(timeout=5).controller_id not in (controller, -1),
          what="new controller")
    before = workload.total()
    _wait(lambda: workload.total() > before + 300, what="produce after controller loss")
    control.start_sync(controller)
    _wait(lambda: all(len(_partition_state(admin, p)[1]) == 3 for p in range(PARTITIONS)),
          timeout=60, what="ISR complete after controller restart")

    # 3. SIGSTOP a follower: it falls out of the ISR, writes continue; SIGCONT: it returns
    leader, isr = _partition_state(admin)
    follower = next(b for b in isr if b != leader)
    control.pause_sync(follower)
    # replica.lag.time.max.ms is 3 s; when the paused follower is also the active controller
    # the shrink first waits for a Raft election
    _wait(lambda: follower not in _state_via(cluster, leader)[1], timeout=60,
          what="paused follower leaves the ISR")
    before = workload.total()
    _wait(lambda: workload.total() > before + 300, what="produce with a paused follower")
    control.resume_sync(follower)
    _wait(lambda: follower in _partition_state(admin)[1], timeout=60,
          what="resumed follower rejoins the ISR")

    # 4. rolling restart of every broker
    for broker_id in (1, 2, 3):
        control.restart_sync(broker_id)
        _wait(lambda: all(len(_partition_state(admin, p)[1]) == 3
                          for p in range(PARTITIONS)), timeout=60, what="ISR after restart")

    workload.stop()
    assert workload.total() > 1000

    consumer = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": "verify",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(TOPIC, p, 0) for p in range(PARTITIONS)])
    read: dict[int, list[int]] = {p: [] for p in range(PARTITIONS)}
    offsets: dict[int, list[int]] = {p: [] for p in range(PARTITIONS)}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(
            len(read[p]) < len(workload.acked[p]) for p in range(PARTITIONS)):
        msg = consumer.poll(0.5)
        if msg is None or msg.error():
            continue
        read[msg.partition()].append(int(msg.value()))
        offsets[msg.partition()].append(msg.offset())
    consumer.close()
    for p in range(PARTITIONS):
        acked = workload.acked[p]
        lost = set(acked) - set(read[p])
        assert not lost, f"partition {p}: {len(lost)} acknowledged records lost"
        assert len(read[p]) == len(set(read[p])), f"partition {p}: duplicates"
        assert read[p] == sorted(read[p]), f"partition {p}: out of produce order"
        assert offsets[p] == list(range(len(offsets[p]))), f"partition {p}: offset gaps"
