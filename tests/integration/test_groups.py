"""Consumer groups with real clients (confluent-kafka, kafka-python, aiokafka) against a real
broker process: rebalances, commits, restarts, admin APIs."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from tests.fixtures import BrokerProcess, running_broker

pytestmark = pytest.mark.timeout(120)

SESSION_MS = 2000
#: short session timeouts keep the suite fast; the rest is the test fixture's defaults
OVERRIDES = {"group.min.session.timeout.ms": "500", "group.initial.rebalance.delay.ms": "0"}


@pytest.fixture(scope="module")
def group_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    yield from running_broker(tmp_path_factory, "groups", OVERRIDES)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, partitions, 1)]).values():
        future.result(15)


def produce(bootstrap: str, topic: str, values: list[str], partitions: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i, value in enumerate(values):
        producer.produce(topic, value.encode(), partition=i % partitions)
    assert producer.flush(15) == 0


def confluent_consumer(bootstrap: str, group: str, **extra: object) -> Consumer:
    config = {"bootstrap.servers": bootstrap, "group.id": group,
              "auto.offset.reset": "earliest", "session.timeout.ms": SESSION_MS,
              "heartbeat.interval.ms": 300, "max.poll.interval.ms": 15000,
              "enable.auto.commit": True, "auto.commit.interval.ms": 200,
              "topic.metadata.refresh.interval.ms": 2000}
    config.update(extra)
    return Consumer(config)


def wait_until(predicate: Callable[[], bool], timeout: float, step: Callable[[], None],
               what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        step()
        if predicate():
            return
    raise AssertionError(f"timed out waiting for {what}")


class Fleet:
    """In-process confluent consumers polled round-robin, recording what they read."""

    def __init__(self) -> None:
        self.consumers: dict[str, Consumer] = {}
        self.seen: set[str] = set()

    def add(self, name: str, consumer: Consumer, topic: str) -> None:
        consumer.subscribe([topic])
        self.consumers[name] = consumer

    def close(self, name: str) -> None:
        self.consumers.pop(name).close()

    def poll(self) -> None:
        for consumer in self.consumers.values():
            msg = consumer.poll(0.05)
            while msg is not None:
                if msg.error() is None:
                    self.seen.add(msg.value().decode())
                msg = consumer.poll(0)

    def assignments(self) -> dict[str, set[int]]:
        return {name: {tp.partition for tp in c.assignment()}
                for name, c in self.consumers.items()}


def described_assignment(admin: AdminClient, group: str) -> tuple[str, list[set[int]]]:
    """(state, per member partitions) as the coordinator reports them (DescribeGroups)."""
    description = admin.describe_consumer_groups([group])[group].result(10)
    members = [{tp.partition for tp in m.assignment.topic_partitions}
               for m in description.members]
    return description.state.name, members


def owned_exactly_once(assignments: list[set[int]], partitions: int) -> bool:
    total = sum(len(a) for a in assignments)
    union = set().union(*assignments) if assignments else set()
    return total == partitions and union == set(range(partitions))


SUBPROCESS_CONSUMER = textwrap.dedent("""
    import json, sys
    from confluent_kafka import Consumer
    bootstrap, group, topic, strategy, session = sys.argv[1:6]
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                  "auto.offset.reset": "earliest", "session.timeout.ms": int(session),
                  "heartbeat.interval.ms": 300, "max.poll.interval.ms": 15000,
                  "partition.assignment.strategy": strategy,
                  "enable.auto.offset.store": False, "auto.commit.interval.ms": 200})
    c.subscribe([topic])
    while True:
        m = c.poll(0.1)
        if m is not None and m.error() is None:
            print(json.dumps({"value": m.value().decode()}), flush=True)
            c.store_offsets(m)  # only what was reported may be committed
        print(json.dumps({"assignment": sorted(tp.partition for tp in c.assignment())}),
              flush=True)
""")


@pytest.mark.parametrize("strategy", ["range", "cooperative-sticky"])
def test_three_consumers_rebalance_leave_timeout_join(group_broker: BrokerProcess,
                                                       strategy: str, tmp_path: Path) -> None:
    bootstrap = group_broker.bootstrap
    topic, group = unique("reb"), unique("g")
    create_topic(bootstrap, topic, 6)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    fleet = Fleet()
    produced: list[str] = []

    def produce_batch(tag: str) -> None:
        values = [f"{tag}-{i}" for i in range(60)]
        produce(bootstrap, topic, values, 6)
        produced.extend(values)

    # consumer "b" runs in its own process, so it can die without leaving (session timeout)
    out_path = tmp_path / "b.out"
    with open(out_path, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", SUBPROCESS_CONSUMER, bootstrap, group, topic, strategy,
             str(SESSION_MS)], stdout=out, stderr=subprocess.DEVNULL)
    try:
        def b_state() -> tuple[set[str], set[int]]:
            values, assignment = set(), set()
            for line in out_path.read_text().splitlines():
                try:
                    item = json.loads(line)
                except ValueError:
                    continue
                if "value" in item:
                    values.add(item["value"])
                else:
                    assignment = set(item["assignment"])
            return values, assignment

        def stable_with(n: int) -> bool:
            state, members = described_assignment(admin, group)
            if state != "STABLE" or len(members) != n or not owned_exactly_once(members, 6):
                return False
            # and the clients agree with the coordinator
            local = list(fleet.assignments().values())
            if proc.poll() is None:
                local.append(b_state()[1])
            return owned_exactly_once(local, 6)

        def all_seen() -> bool:
            return set(produced) <= fleet.seen | b_state()[0]

        kw = {"partition.assignment.strategy": strategy}
        fleet.add("a", confluent_consumer(bootstrap, group, **kw), topic)
        fleet.add("c", confluent_consumer(bootstrap, group, **kw), topic)
        wait_until(lambda: stable_with(3), 30, fleet.poll, "3 consumers to share 6 partitions")
        produce_batch("one")
        wait_until(all_seen, 20, fleet.poll, "batch one consumed")

        # a leaves cleanly (LeaveGroup)
        fleet.close("a")
        wait_until(lambda: stable_with(2), 30, fleet.poll, "rebalance after a leaves")
        produce_batch("two")
        wait_until(all_seen, 20, fleet.poll, "batch two consumed")

        # b dies (SIGKILL): only its session timeout tells the coordinator
        produce_batch("three")
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)
        wait_until(lambda: stable_with(1), 30, fleet.poll, "rebalance after b times out")

        # d joins
        fleet.add("d", confluent_consumer(bootstrap, group, **kw), topic)
        wait_until(lambda: stable_with(2), 30, fleet.poll, "rebalance after d joins")
        produce_batch("four")
        wait_until(all_seen, 20, fleet.poll, "every record consumed, none skipped")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        for name in list(fleet.consumers):
            fleet.close(name)


def test_kafka_python_consumers_share_a_group(group_broker: BrokerProcess) -> None:
    import threading

    from kafka import KafkaConsumer
    bootstrap = group_broker.bootstrap
    topic, group = unique("kp"), unique("g")
    create_topic(bootstrap, topic, 4)
    values = [f"v{i}" for i in range(40)]
    produce(bootstrap, topic, values, 4)
    seen: set[str] = set()
    assignments: dict[int, set[int]] = {}
    committed: dict[int, int] = {}
    stop = threading.Event()
    lock = threading.Lock()

    def run(index: int) -> None:
        # kafka-python blocks inside poll() while rejoining: one thread per consumer
        consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group,
                                 auto_offset_reset="earliest", session_timeout_ms=SESSION_MS,
                                 heartbeat_interval_ms=300, enable_auto_commit=False)
        try:
            while not stop.is_set():
                # kafka-python 3.0.12 loses a group leader's in-flight join when poll() times out
                # inside ensure_active_group (its assignment is never applied and heartbeats stay
                # disabled until the session expires); a 1 s poll, as apps use, outlasts the join
                batch = consumer.poll(timeout_ms=1000)
                with lock:
                    for records in batch.values():
                        seen.update(r.value.decode() for r in records)
                    assignments[index] = {tp.partition for tp in consumer.assignment()}
                if batch:
                    consumer.commit()
            for tp in consumer.assignment():
                committed[tp.partition] = consumer.committed(tp)
        finally:
            consumer.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    try:
        def done() -> bool:
            with lock:
                parts = list(assignments.values())
                return (len(parts) == 2 and all(parts) and owned_exactly_once(parts, 4)
                        and set(values) <= seen)

        wait_until(done, 40, lambda: time.sleep(0.1), "kafka-python group")
    finally:
        stop.set()
        for t in threads:
            t.join(20)
    assert committed == dict.fromkeys(range(4), 10)


def test_aiokafka_consumers_share_a_group(group_broker: BrokerProcess) -> None:
    from aiokafka import AIOKafkaConsumer
    bootstrap = group_broker.bootstrap
    topic, group = unique("aio"), unique("g")
    create_topic(bootstrap, topic, 4)
    values = [f"v{i}" for i in range(40)]
    produce(bootstrap, topic, values, 4)

    async def body() -> None:
        consumers = [AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group,
                                      auto_offset_reset="earliest",
                                      session_timeout_ms=SESSION_MS,
                                      heartbeat_interval_ms=300, enable_auto_commit=False)
                     for _ in range(2)]
        for c in consumers:
            await c.start()
        seen: set[str] = set()
        try:
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline:
                for c in consumers:
                    batch = await c.getmany(timeout_ms=100)
                    for records in batch.values():
                        seen.update(r.value.decode() for r in records)
                parts = [{tp.partition for tp in c.assignment()} for c in consumers]
                if set(values) <= seen and all(parts) and owned_exactly_once(parts, 4):
                    break
            assert set(values) <= seen
            for c in consumers:
                await c.commit()
        finally:
            for c in consumers:
                await c.stop()

    asyncio.run(body())


def test_kafka_python_resumes_from_confluent_commits(group_broker: BrokerProcess) -> None:
    from kafka import KafkaConsumer
    bootstrap = group_broker.bootstrap
    topic, group = unique("resume"), unique("g")
    create_topic(bootstrap, topic, 2)
    produce(bootstrap, topic, [f"v{i}" for i in range(20)], 2)  # 10 per partition
    first = confluent_consumer(bootstrap, group, **{"enable.auto.commit": False})
    first.assign([TopicPartition(topic, 0, 0), TopicPartition(topic, 1, 0)])
    got = 0
    while got < 20:
        msg = first.poll(5)
        assert msg is not None
        got += 1
    first.commit(offsets=[TopicPartition(topic, 0, 4), TopicPartition(topic, 1, 7)],
                 asynchronous=False)
    first.close()

    second = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group,
                           auto_offset_reset="earliest", session_timeout_ms=SESSION_MS,
                           heartbeat_interval_ms=300, enable_auto_commit=False)
    try:
        firsts: dict[int, int] = {}
        deadline = time.monotonic() + 30
        while len(firsts) < 2 and time.monotonic() < deadline:
            for tp, records in second.poll(timeout_ms=200).items():
                firsts.setdefault(tp.partition, records[0].offset)
        assert firsts == {0: 4, 1: 7}
    finally:
        second.close()


def test_committed_offsets_survive_restart(tmp_path: Path) -> None:
    broker = BrokerProcess(tmp_path / "restart", overrides=OVERRIDES)
    broker.start()
    try:
        bootstrap = broker.bootstrap
        topic, group = unique("rs"), unique("g")
        create_topic(bootstrap, topic, 3)
        produce(bootstrap, topic, [f"v{i}" for i in range(30)], 3)
        consumer = confluent_consumer(bootstrap, group, **{"enable.auto.commit": False})
        consumer.subscribe([topic])
        got = 0
        deadline = time.monotonic() + 30
        while got < 30 and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is not None and msg.error() is None:
                got += 1
        consumer.commit(asynchronous=False)
        consumer.close()
        simple_group = unique("simple")  # a simple consumer: commits without joining
        simple = confluent_consumer(bootstrap, simple_group, **{"enable.auto.commit": False})
        simple.commit(offsets=[TopicPartition(topic, 1, 5)], asynchronous=False)
        simple.close()

        broker.restart()
        from kafka import KafkaAdminClient
        from kafka.errors import KafkaError as KafkaPythonError
        kadmin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
        try:
            offsets: dict = {}
            deadline = time.monotonic() + 20
            while True:
                try:
                    found = kadmin.list_group_offsets({group: None, simple_group: None})
                    break
                except KafkaPythonError:  # loading, or not (yet) the coordinator
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.3)
            offsets = {tp.partition: om.offset for tp, om in found[group].items()}
            assert offsets == {0: 10, 1: 10, 2: 10}
            assert {tp.partition: om.offset for tp, om in found[simple_group].items()} == {1: 5}
            description = kadmin.describe_groups([group])[group]
            assert description["group_state"] == "Empty"
            assert description["protocol_type"] == "consumer"
        finally:
            kadmin.close()
        # a consumer of the group resumes where the group left off
        again = confluent_consumer(broker.bootstrap, group)
        again.subscribe([topic])
        produce(broker.bootstrap, topic, ["after-0", "after-1", "after-2"], 3)
        values = set()
        deadline = time.monotonic() + 30
        while len(values) < 3 and time.monotonic() < deadline:
            msg = again.poll(0.2)
            if msg is not None and msg.error() is None:
                values.add(msg.value().decode())
        again.close()
        assert values == {"after-0", "after-1", "after-2"}
    finally:
        broker.stop()


def test_delete_groups_and_offset_delete(group_broker: BrokerProcess) -> None:
    from kafka import KafkaAdminClient
    from kafka import TopicPartition as KTP
    bootstrap = group_broker.bootstrap
    topic, other, group = unique("del"), unique("other"), unique("g")
    create_topic(bootstrap, topic, 2)
    create_topic(bootstrap, other, 1)
    produce(bootstrap, topic, ["a", "b"], 2)
    consumer = confluent_consumer(bootstrap, group, **{"enable.auto.commit": False})
    consumer.subscribe([topic])
    wait_until(lambda: len(consumer.assignment()) == 2, 20, lambda: consumer.poll(0.1),
               "assignment")
    consumer.commit(offsets=[TopicPartition(topic, 0, 1), TopicPartition(topic, 1, 1),
                             TopicPartition(other, 0, 3)], asynchronous=False)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    kadmin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        # a group with members cannot be deleted
        with pytest.raises(KafkaException) as info:
            admin.delete_consumer_groups([group])[group].result(10)
        assert "NON_EMPTY_GROUP" in str(info.value) or "not empty" in str(info.value).lower()
        # offsets of a topic the group consumes cannot be deleted; others can
        result = kadmin.delete_group_offsets(group, [KTP(topic, 0), KTP(other, 0)])
        errors = {tp.topic: err for tp, err in _pairs(result)}
        assert errors[other] is None or errors[other].__name__ == "NoError"
        assert "GroupSubscribedToTopic" in str(errors[topic])
        remaining = kadmin.list_group_offsets({group: None})
        partitions = _offsets_of(remaining, group)
        assert (other, 0) not in partitions and (topic, 0) in partitions
        consumer.close()
        deadline = time.monotonic() + 15
        while True:
            try:
                admin.delete_consumer_groups([group])[group].result(10)
                break
            except KafkaException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        listed = {g.group_id for g in admin.list_consumer_groups().result(10).valid}
        assert group not in listed
        with pytest.raises(KafkaException) as info:
            admin.delete_consumer_groups([group])[group].result(10)
        assert "GROUP_ID_NOT_FOUND" in str(info.value) or "not" in str(info.value).lower()
    finally:
        kadmin.close()


def _pairs(result: object) -> list[tuple[object, object]]:
    if isinstance(result, dict):
        return list(result.items())
    return list(result)  # type: ignore[arg-type]


def _offsets_of(result: object, group: str) -> set[tuple[str, int]]:
    found = result[group] if isinstance(result, dict) and group in result else result
    return {(tp.topic, tp.partition) for tp in found}  # type: ignore[union-attr]


def test_admin_list_and_describe_agree_across_clients(group_broker: BrokerProcess) -> None:
    from aiokafka.admin import AIOKafkaAdminClient
    from kafka import KafkaAdminClient
    bootstrap = group_broker.bootstrap
    topic, group = unique("adm"), unique("g")
    create_topic(bootstrap, topic, 3)
    consumers = [confluent_consumer(bootstrap, group, **{"client.id": f"cli-{i}"})
                 for i in range(2)]
    for c in consumers:
        c.subscribe([topic])
    admin = AdminClient({"bootstrap.servers": bootstrap})

    def stable() -> bool:
        state, members = described_assignment(admin, group)
        return state == "STABLE" and len(members) == 2 and owned_exactly_once(members, 3)

    try:
        wait_until(stable, 30, lambda: [c.poll(0.05) for c in consumers], "stable group")
        confluent_desc = admin.describe_consumer_groups([group])[group].result(10)
        confluent_view = {
            "state": "Stable", "protocol": confluent_desc.partition_assignor,
            "members": {m.member_id: (m.client_id, sorted(tp.partition for tp in
                                                           m.assignment.topic_partitions))
                        for m in confluent_desc.members}}
        listed_confluent = {g.group_id for g in admin.list_consumer_groups().result(10).valid}

        kadmin = KafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            kdesc = kadmin.describe_groups([group])[group]
            klisted = {_group_id(g) for g in kadmin.list_groups()}
        finally:
            kadmin.close()
        kview = _kafka_python_view(kdesc)

        async def aio() -> tuple[set[str], dict]:
            client = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
            await client.start()
            try:
                listed = await client.list_consumer_groups()
                described = await client.describe_consumer_groups([group])
            finally:
                await client.close()
            return {g[0] for g in listed}, described

        alisted, adesc = asyncio.run(aio())
        aview = _aiokafka_view(adesc, group)

        assert group in listed_confluent and group in klisted and group in alisted
        assert confluent_view["protocol"] == "range"
        assert kview == aview == confluent_view, (kview, aview, confluent_view)
    finally:
        _close_all(consumers)


def _close_all(consumers: list, timeout_s: float = 30.0) -> None:
    """Close group members together, as an application shutting down would, and bounded.

    Observed under load: closing two never-polled members one after the other, the first
    one's LeaveGroup starts a rebalance and the second one's close() never returned (it sent
    neither JoinGroup nor LeaveGroup; the coordinator removed it after the rebalance timeout).
    Closing concurrently avoids the wait; a hang now fails this test instead of the suite.
    """
    threads = [threading.Thread(target=c.close, daemon=True) for c in consumers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout_s)
    assert not any(t.is_alive() for t in threads), "a consumer did not close in time"


def _group_id(item: object) -> str:
    if isinstance(item, tuple):
        return item[0]
    if isinstance(item, dict):
        return item["group_id"]
    return item.group_id  # type: ignore[attr-defined]


def _kafka_python_view(desc: dict) -> dict:
    members = {}
    for m in desc["members"]:
        parts = sorted(p for tp in m["member_assignment"]["assigned_partitions"]
                       for p in tp["partitions"])
        members[m["member_id"]] = (m["client_id"], parts)
    return {"state": desc["group_state"], "protocol": desc["protocol_data"], "members": members}


def _aiokafka_view(described: object, group: str) -> dict:
    from core.coordinator.consumer_protocol import decode_assignment
    responses = described if isinstance(described, list) else [described]
    for response in responses:
        for g in response.groups:
            # (error_code, group_id, state, protocol_type, protocol, members)
            if g[1] != group:
                continue
            members = {}
            for m in g[5]:
                # (member_id, client_id, client_host, member_metadata, member_assignment)
                parts = sorted(p for ps in decode_assignment(m[-1]).values() for p in ps)
                members[m[0]] = (m[1], parts)
            return {"state": g[2], "protocol": g[4], "members": members}
    raise AssertionError(f"{group} not described by aiokafka")
