"""Committed offsets of a deleted topic are removed, as Kafka's group coordinator does.

When a topic is deleted, Kafka's GroupCoordinator.onPartitionsDeleted removes every group's
committed offsets for its partitions (tombstones in __consumer_offsets, in-memory state), and
an Empty group left without offsets goes. So a topic recreated under the same name is read
from auto.offset.reset, never from the old topic's offsets. Real clients: confluent-kafka
(consumers, AdminClient.list_consumer_group_offsets) and kafka-python (a consumer group,
KafkaAdminClient), against real broker processes, one of them restarted.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import (
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaAdminClient, KafkaConsumer
from kafka import TopicPartition as KafkaTopicPartition
from kafka.structs import OffsetAndMetadata

from tests.fixtures import (
    QUIET_CLUSTER_CONFIG,
    BrokerProcess,
    running_broker,
    running_local_cluster,
    wait_for,
)

pytestmark = pytest.mark.timeout(240)

TIMEOUT = 15
#: how long the coordinator may take to drop a deleted topic's offsets
REMOVAL_S = 5.0
OVERRIDES = {"group.min.session.timeout.ms": "500", "group.initial.rebalance.delay.ms": "0"}


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    yield from running_broker(tmp_path_factory, "deleted-offsets", OVERRIDES)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """Three brokers; __consumer_offsets has 3 replicas (Kafka's default)."""
    yield from running_local_cluster(tmp_path_factory, "deleted-offsets-cluster",
                                     {**QUIET_CLUSTER_CONFIG, **OVERRIDES})


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create_topics(admin: AdminClient, topics: dict[str, int]) -> None:
    futures = admin.create_topics([NewTopic(t, n, 1) for t, n in topics.items()])
    for future in futures.values():
        future.result(TIMEOUT)
    wait_for(lambda: all(t in admin.list_topics(timeout=5).topics for t in topics),
             TIMEOUT, "topics in the metadata")


def delete_topic(admin: AdminClient, topic: str) -> None:
    admin.delete_topics([topic])[topic].result(TIMEOUT)
    wait_for(lambda: topic not in admin.list_topics(timeout=5).topics, TIMEOUT,
             f"{topic} gone from the metadata")


def produce(bootstrap: str, topic: str, per_partition: int, partitions: int,
            prefix: str) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for p in range(partitions):
        for i in range(per_partition):
            producer.produce(topic, f"{prefix}-{p}-{i}".encode(), partition=p)
    assert producer.flush(TIMEOUT) == 0


def committed(admin: AdminClient, group: str) -> dict[tuple[str, int], int]:
    """The group's committed offsets, as the coordinator lists them (OffsetFetch, all)."""
    request = [ConsumerGroupTopicPartitions(group)]
    result = admin.list_consumer_group_offsets(request)[group].result(TIMEOUT)
    return {(tp.topic, tp.partition): tp.offset for tp in result.topic_partitions}


def wait_committed(admin: AdminClient, group: str, expected: dict[tuple[str, int], int],
                   timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    seen: dict[tuple[str, int], int] | KafkaException = {}
    while time.monotonic() < deadline:
        try:
            seen = committed(admin, group)
        except KafkaException as exc:  # e.g. while a new coordinator loads the group
            seen = exc
        if seen == expected:
            return
        time.sleep(0.1)
    raise AssertionError(f"{what}: {group} has {seen}, expected {expected}")


def consumer(bootstrap: str, group: str) -> Consumer:
    return Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                     "auto.offset.reset": "earliest", "enable.auto.commit": False,
                     "session.timeout.ms": 2000, "heartbeat.interval.ms": 300,
                     "topic.metadata.refresh.interval.ms": 1000})


def read(c: Consumer, count: int, what: str) -> list[tuple[str, int, int]]:
    """Poll until `count` records were read: (topic, partition, offset) in the order read."""
    records: list[tuple[str, int, int]] = []
    deadline = time.monotonic() + 30
    while len(records) < count:
        assert time.monotonic() < deadline, f"{what}: read only {records}"
        msg = c.poll(0.2)
        if msg is not None and msg.error() is None:
            records.append((msg.topic(), msg.partition(), msg.offset()))
    return records


def commit_and_leave(bootstrap: str, group: str, topics: dict[str, int],
                     offsets: dict[tuple[str, int], int]) -> None:
    """A member of `group` reads every partition of `topics`, commits `offsets` and leaves
    (the group is then Empty, with those offsets)."""
    c = consumer(bootstrap, group)
    try:
        c.subscribe(list(topics))
        read(c, sum(10 * n for n in topics.values()), "first consumer")
        c.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()],
                 asynchronous=False)
    finally:
        c.close()


def test_recreated_topic_is_read_from_the_start_and_other_offsets_stay(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    topic, other, group = unique("dto"), unique("dto-other"), unique("g")
    create_topics(admin, {topic: 2, other: 1})
    produce(broker.bootstrap, topic, 10, 2, "old")
    produce(broker.bootstrap, other, 10, 1, "other")
    offsets = {(topic, 0): 3, (topic, 1): 4, (other, 0): 5}
    commit_and_leave(broker.bootstrap, group, {topic: 2, other: 1}, offsets)
    assert committed(admin, group) == offsets
    assert admin.describe_consumer_groups([group])[group].result(TIMEOUT).state.name == "EMPTY"

    delete_topic(admin, topic)
    wait_committed(admin, group, {(other, 0): 5}, REMOVAL_S,
                   "the deleted topic's offsets were not removed")
    # the group keeps its other offsets, so it stays (Empty)
    assert admin.describe_consumer_groups([group])[group].result(TIMEOUT).state.name == "EMPTY"

    create_topics(admin, {topic: 2})
    produce(broker.bootstrap, topic, 10, 2, "new")
    c = consumer(broker.bootstrap, group)
    try:
        c.subscribe([topic, other])
        # the recreated topic from offset 0 (auto.offset.reset), the other topic from 5
        records = read(c, 20 + 5, "consumer after the topic was recreated")
    finally:
        c.close()
    by_partition: dict[tuple[str, int], list[int]] = {}
    for t, p, o in records:
        by_partition.setdefault((t, p), []).append(o)
    assert by_partition == {(topic, 0): list(range(10)), (topic, 1): list(range(10)),
                            (other, 0): list(range(5, 10))}


def test_empty_group_with_only_the_deleted_topics_offsets_goes(broker):
    """kafka-python: a group whose only offsets were the deleted topic's, Empty, is removed
    (Kafka's cleanup deletes an Empty group left without offsets)."""
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    topic, group = unique("dto-kp"), unique("g-kp")
    create_topics(admin, {topic: 1})
    produce(broker.bootstrap, topic, 10, 1, "old")
    kp = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id=group,
                       auto_offset_reset="earliest", enable_auto_commit=False,
                       session_timeout_ms=2000, heartbeat_interval_ms=300)
    try:
        seen = 0
        deadline = time.monotonic() + 30
        while seen < 10 and time.monotonic() < deadline:
            seen += sum(len(r) for r in kp.poll(timeout_ms=200).values())
        assert seen == 10
        kp.commit({KafkaTopicPartition(topic, 0): OffsetAndMetadata(6, "", -1)})
    finally:
        kp.close()
    kp_admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)

    def offsets() -> dict[tuple[str, int], int]:
        listed = kp_admin.list_group_offsets({group: None}).get(group, {})
        return {(tp.topic, tp.partition): o.offset for tp, o in listed.items()}

    def groups() -> set[str]:
        return {g["group_id"] for g in kp_admin.list_groups()}

    try:
        assert offsets() == {(topic, 0): 6}
        assert group in groups()

        delete_topic(admin, topic)
        wait_for(lambda: offsets() == {}, REMOVAL_S, "the deleted topic's offsets removed")
        assert group not in groups()
        assert kp_admin.describe_groups([group])[group]["group_state"] == "Dead"
    finally:
        kp_admin.close()


def test_removal_survives_a_broker_restart(broker_factory):
    """The coordinator wrote tombstones: reading __consumer_offsets back after a restart
    does not bring the deleted topic's offsets back."""
    b = broker_factory(**OVERRIDES)
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    topic, other, group, gone = unique("dto-r"), unique("dto-r-other"), unique("g"), unique("g")
    create_topics(admin, {topic: 2, other: 1})
    produce(b.bootstrap, topic, 10, 2, "old")
    produce(b.bootstrap, other, 10, 1, "other")
    commit_and_leave(b.bootstrap, group, {topic: 2, other: 1},
                     {(topic, 0): 3, (topic, 1): 4, (other, 0): 5})
    commit_and_leave(b.bootstrap, gone, {topic: 2}, {(topic, 0): 7, (topic, 1): 8})

    delete_topic(admin, topic)
    wait_committed(admin, group, {(other, 0): 5}, REMOVAL_S,
                   "the deleted topic's offsets were not removed")
    wait_committed(admin, gone, {}, REMOVAL_S, "the deleted topic's offsets were not removed")

    b.restart()
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    wait_for(lambda: committed(admin, group) is not None, TIMEOUT, "the coordinator loaded")
    assert committed(admin, group) == {(other, 0): 5}
    assert committed(admin, gone) == {}
    groups = {g.group_id for g in admin.list_consumer_groups().result(TIMEOUT).valid}
    assert group in groups and gone not in groups


def test_removal_survives_a_coordinator_failover(cluster):
    """3 brokers: the coordinator removes the offsets and its tombstones are replicated, so
    the broker that takes over the group after it is killed (SIGKILL) does not load them."""
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    topic, other, group = unique("dto-f"), unique("dto-f-other"), unique("g")
    create_topics(admin, {topic: 2, other: 1})
    produce(cluster.bootstrap, topic, 10, 2, "old")
    produce(cluster.bootstrap, other, 10, 1, "other")
    commit_and_leave(cluster.bootstrap, group, {topic: 2, other: 1},
                     {(topic, 0): 3, (topic, 1): 4, (other, 0): 5})

    def coordinator() -> int:
        return admin.describe_consumer_groups([group])[group].result(TIMEOUT).coordinator.id

    delete_topic(admin, topic)
    wait_committed(admin, group, {(other, 0): 5}, REMOVAL_S,
                   "the deleted topic's offsets were not removed")
    killed = coordinator()
    cluster.control.kill_sync(killed)
    try:
        wait_for(lambda: coordinator() != killed, 60, "a new coordinator")
        wait_committed(admin, group, {(other, 0): 5}, 30,
                       "the new coordinator does not agree")
    finally:
        cluster.control.start_sync(killed)
