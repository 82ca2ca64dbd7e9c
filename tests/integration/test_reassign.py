"""Partition reassignment (KIP-455) on a real 3-broker `serve` cluster: a move under
acks=all produce load loses nothing, replication factor 1 -> 3, cancel, decommission of an
added broker (then stopped), and a rolling restart waiting for zero under-replicated
partitions. Real confluent-kafka clients; every process ended by PID (LocalCluster.stop)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka import TopicPartition as CTP

from core.admin import reassign as ra
from core.admin.client import AdminClient
from core.admin.export import count_records
from tests.fixtures import running_local_cluster
from tests.fixtures import wait_for as wait

pytestmark = pytest.mark.timeout(240)


def run(coro):
    return asyncio.run(coro)


async def _with_admin(bootstrap: str, fn):
    async with AdminClient(bootstrap) as admin:
        return await fn(admin)


def admin_call(cluster, fn):
    return run(_with_admin(cluster.bootstrap, fn))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    yield from running_local_cluster(tmp_path_factory, "reassign", {
        "replica.lag.time.max.ms": "3000", "offsets.topic.num.partitions": "3",
        "offsets.topic.replication.factor": "1", "group.initial.rebalance.delay.ms": "0"},
        spare_ports=1)  # broker 4 joins in test_scale_out_and_decommission


def partition(cluster, topic: str, p: int):
    async def fn(admin):
        return (await admin.metadata([topic])).partition(topic, p)
    return admin_call(cluster, fn)


def create(cluster, topic: str, assignments, configs=None) -> None:
    async def fn(admin):
        await admin.create_topic(topic, assignments=assignments, configs=configs)
    admin_call(cluster, fn)
    visible_everywhere(cluster, topic)


def visible_everywhere(cluster, topic: str) -> None:
    """Wait until every broker's metadata has the topic with leaders."""
    async def fn(_admin):
        for _ in range(100):
            seen = 0
            for address in cluster.bootstrap.split(","):
                async with AdminClient(address, retries=0) as one:
                    try:
                        md = await one.metadata([topic])
                    except Exception:
                        continue
                    t = md.topics.get(topic)
                    if t and all(p.leader >= 0 for p in t.partitions):
                        seen += 1
            if seen == len(cluster.bootstrap.split(",")):
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"{topic} not visible on every broker")
    admin_call(cluster, fn)


def produce(cluster, topic: str, partitions, n: int) -> None:
    """n records to each partition with the async producer (retrying while metadata
    propagates)."""
    from core.admin.producer import Producer as AsyncProducer
    from core.common.errors import KafkaError

    async def fn(admin):
        async with AsyncProducer(admin) as producer:
            for p in partitions:
                for attempt in range(30):
                    try:
                        reports = await producer.send_many(
                            topic, [(None, b"%s-%d" % (topic.encode(), i), (), p)
                                    for i in range(n)])
                    except KafkaError:
                        reports = []
                    if reports and all(r.ok for r in reports):
                        break
                    assert attempt < 29, reports[0].error if reports else "no reports"
                    await asyncio.sleep(0.2)
    admin_call(cluster, fn)


class Load:
    """An idempotent acks=all producer writing increasing values to one partition."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self.producer = Producer({"bootstrap.servers": bootstrap, "acks": "all",
                                  "enable.idempotence": True, "linger.ms": 5,
                                  "message.timeout.ms": 60000})
        self.acked: list[int] = []
        self.failed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _done(self, err, msg) -> None:
        if err is None:
            self.acked.append(int(msg.value()))
        else:
            self.failed += 1

    def _run(self) -> None:
        value = 0
        while not self._stop.is_set():
            try:
                self.producer.produce(self.topic, str(value).encode(), partition=0,
                                      on_delivery=self._done)
                value += 1
            except BufferError:
                pass
            self.producer.poll(0.002)
        self.producer.flush(60)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(90)


def read_all(bootstrap: str, topic: str, p: int, expected: int) -> list[int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"verify-{topic}",
                         "enable.auto.commit": False})
    consumer.assign([CTP(topic, p, 0)])
    values: list[int] = []
    deadline = time.monotonic() + 30
    while len(values) < expected and time.monotonic() < deadline:
        for m in consumer.consume(500, timeout=0.5):
            if m.error() is None:
                values.append(int(m.value()))
    consumer.close()
    return values


def test_move_under_produce_load_loses_nothing(cluster):
    create(cluster, "moving", {0: [1, 2]}, {"min.insync.replicas": "2"})
    seen: list[ra.MoveStatus] = []
    with Load(cluster.bootstrap, "moving") as load:
        wait(lambda: len(load.acked) > 300, what="first acknowledgements")
        moves = admin_call(cluster, lambda admin: ra.reassign(
            admin, {("moving", 0): [2, 3]}, timeout=60, on_progress=seen.extend))
        assert moves[0].done
        before = len(load.acked)
        wait(lambda: len(load.acked) > before + 300, what="produce after the move")
    wait(lambda: partition(cluster, "moving", 0).replicas == (2, 3), 10, "metadata everywhere")
    p = partition(cluster, "moving", 0)
    assert p.replicas == (2, 3)
    assert set(p.isr) == {2, 3}
    assert p.leader == 2  # the removed leader handed over to the first target replica
    # progress was visible: replica 3 was being added while 1 was being removed
    assert any(m.adding == (3,) and m.removing == (1,) for m in seen) or seen[0].done
    assert load.failed == 0
    values = read_all(cluster.bootstrap, "moving", 0, len(load.acked))
    missing = set(load.acked) - set(values)
    assert not missing, f"{len(missing)} acknowledged records lost"
    assert values == sorted(values) and len(values) == len(set(values))
    assert admin_call(cluster, lambda admin: admin.list_partition_reassignments()) == {}


def test_replication_factor_1_to_3_then_back(cluster):
    create(cluster, "rf", {0: [1], 1: [2]})
    produce(cluster, "rf", (0, 1), 100)
    admin_call(cluster, lambda admin: ra.change_replication_factor(admin, "rf", 3, timeout=60))
    wait(lambda: all(len(partition(cluster, "rf", p).isr) == 3 for p in (0, 1)), 10,
         "metadata everywhere")
    for p in (0, 1):
        info = partition(cluster, "rf", p)
        assert len(info.replicas) == 3 and set(info.isr) == {1, 2, 3}
    assert partition(cluster, "rf", 0).leader == 1  # the old replica stays preferred
    assert admin_call(cluster, lambda admin: count_records(admin, "rf")) == {0: 100, 1: 100}
    admin_call(cluster, lambda admin: ra.change_replication_factor(admin, "rf", 1, timeout=60))
    wait(lambda: [len(partition(cluster, "rf", p).replicas) for p in (0, 1)] == [1, 1], 10,
         "RF 1 in the metadata everywhere")
    assert admin_call(cluster, lambda admin: count_records(admin, "rf")) == {0: 100, 1: 100}


def test_cancel_and_refused_reassignments(cluster):
    create(cluster, "cancel-me", {0: [1]})
    controller = admin_call(cluster, lambda admin: admin.metadata([])).controller_id
    stuck = next(b for b in (2, 3) if b != controller)
    address = cluster.bootstrap.split(",")[controller - 1]

    async def scenario(admin):  # talks to the controller only: the paused broker never answers
        await ra.submit(admin, {("cancel-me", 0): [1, stuck]})
        ongoing = await admin.list_partition_reassignments()
        moving = (await admin.metadata(["cancel-me"])).partition("cancel-me", 0)
        await ra.cancel(admin, [("cancel-me", 0)])
        after = (await admin.metadata(["cancel-me"])).partition("cancel-me", 0)
        return ongoing, moving, after, await admin.list_partition_reassignments()

    cluster.control.pause_sync(stuck)  # registered, not yet fenced: it can never catch up
    try:
        ongoing, moving, after, left = run(_with_admin(address, scenario))
    finally:
        cluster.control.resume_sync(stuck)
    assert ongoing[("cancel-me", 0)] == ((1, stuck), (stuck,), ())
    assert moving.replicas == (1, stuck) and moving.isr == (1,)
    assert after.replicas == (1,) and left == {}
    with pytest.raises(ra.ReassignError, match="no such broker"):
        admin_call(cluster, lambda admin: ra.submit(admin, {("cancel-me", 0): [1, 42]}))
    with pytest.raises(ra.ReassignError, match="NO_REASSIGNMENT_IN_PROGRESS"):
        admin_call(cluster, lambda admin: ra.cancel(admin, [("cancel-me", 0)]))


def test_decommission_added_broker(cluster):
    control = cluster.control
    control.add_sync()
    wait(lambda: admin_call(cluster, lambda a: a.metadata([])).broker(4) is not None,
         what="broker 4 in the metadata")
    create(cluster, "scale", {0: [4, 1], 1: [2, 4], 2: [3, 4]})
    produce(cluster, "scale", (0, 1, 2), 50)
    moves = admin_call(cluster, lambda admin: ra.decommission(
        admin, 4, control=control, stop=True, timeout=60))
    assert {(m.topic, m.partition) for m in moves} == {("scale", 0), ("scale", 1),
                                                       ("scale", 2)}
    def off_4():
        md = admin_call(cluster, lambda admin: admin.metadata())
        return not [p for t in md.topics.values() for p in t.partitions if 4 in p.replicas]
    wait(off_4, 10, "no replica on broker 4 in the metadata everywhere")
    md = admin_call(cluster, lambda admin: admin.metadata())
    assert all(len(p.replicas) == 2 for p in md.topics["scale"].partitions)
    states = {b["id"]: b["state"] for b in control.status_sync()["brokers"]}
    assert states[4] == "stopped"
    assert admin_call(cluster, lambda admin: count_records(admin, "scale")) == {
        0: 50, 1: 50, 2: 50}


def test_rolling_restart_waits_for_zero_urp(cluster):
    steps: list[tuple[int, int, str]] = []
    pids = cluster.broker_pids()
    done = admin_call(cluster, lambda admin: ra.rolling_restart(
        admin, cluster.control, timeout_per_broker=60,
        on_progress=lambda d, t, m: steps.append((d, t, m))))
    assert done == [1, 2, 3]
    after = cluster.broker_pids()
    assert all(after[b] != pids[b] for b in (1, 2, 3))
    assert steps[-1][0] == steps[-1][1] == 3
    assert admin_call(cluster, ra.under_replicated) == []
