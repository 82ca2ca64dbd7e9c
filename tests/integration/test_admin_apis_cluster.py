"""Admin APIs on a 3-broker `serve` cluster: forwarding to the controller, per-broker
resources, preferred leader election after a restart, DeleteRecords on replicated topics."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from confluent_kafka import ElectionType, Producer, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    ConfigResource,
    ConfigSource,
    NewTopic,
    OffsetSpec,
)
from kio.schema.errors import ErrorCode

from core.cluster.local import LocalCluster
from tests.fixtures import raw_request, running_local_cluster

pytestmark = pytest.mark.timeout(150)
TIMEOUT = 15


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    yield from running_local_cluster(tmp_path_factory, "admin-cluster", {
        "auto.leader.rebalance.enable": "false", "replica.lag.time.max.ms": "3000",
        "offsets.topic.num.partitions": "1", "group.initial.rebalance.delay.ms": "0"})


@pytest.fixture(scope="module")
def admin(cluster: LocalCluster) -> AdminClient:
    client = AdminClient({"bootstrap.servers": cluster.bootstrap})
    # `ready` means every broker answers; registration with the controller can trail it
    _wait(lambda: len(client.list_topics(timeout=5).brokers) == 3, what="3 live brokers")
    return client


def _port(cluster: LocalCluster, broker_id: int) -> int:
    return cluster.port + broker_id - 1


def _wait(predicate: Callable[[], bool], timeout: float = 30, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception:  # a broker restarting: try again
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _non_controller(admin: AdminClient) -> int:
    md = admin.list_topics(timeout=TIMEOUT)
    return next(b for b in sorted(md.brokers) if b != md.controller_id)


def _topic(admin: AdminClient, assignment: list[list[int]] | None = None) -> str:
    name = f"cl-{uuid.uuid4().hex[:8]}"
    new = (NewTopic(name, len(assignment), replica_assignment=assignment) if assignment
           else NewTopic(name, 3, 3))
    admin.create_topics([new])[name].result(TIMEOUT)
    _wait(lambda: all(len(p.isrs) == 3 for p in
                      admin.list_topics(name, timeout=5).topics[name].partitions.values()),
          what="full ISR")
    return name


def test_admin_writes_sent_to_a_non_controller_are_forwarded(cluster, admin):
    topic = _topic(admin)
    broker = _non_controller(admin)
    port = _port(cluster, broker)
    altered = raw_request(port, 44, 1, validate_only=False, resources=[dict(
        resource_type=2, resource_name=topic, configs=[dict(
            name="retention.ms", config_operation=0, value="1234567")])])
    assert altered.responses[0].error_code == ErrorCode.none
    legacy = raw_request(port, 33, 2, validate_only=False, resources=[dict(
        resource_type=2, resource_name=topic, configs=[dict(name="segment.ms",
                                                            value="7654321")])])
    assert legacy.responses[0].error_code == ErrorCode.none
    grown = raw_request(port, 37, 3, timeout=10000, validate_only=False,
                 topics=[dict(name=topic, count=5, assignments=None)])
    assert grown.results[0].error_code == ErrorCode.none
    elected = raw_request(port, 43, 2, election_type=0, timeout=10000,
                   topic_partitions=[dict(topic=topic, partitions=[0])])
    assert elected.replica_election_results[0].partition_result[0].error_code == (
        ErrorCode.election_not_needed)

    # every broker sees the result (legacy AlterConfigs replaced retention.ms). The controller
    # answers once the records are committed; every other broker applies them when its
    # metadata fetch brings them, a little later, as in Kafka ("it may take several seconds
    # after this method returns success for all the brokers to become aware that the
    # partitions have been created", Admin.createPartitions). So each broker is waited for,
    # for the configs and for the partitions: seeing the configs does not imply seeing the
    # partitions committed after them.
    for broker_id in (1, 2, 3):
        def configs_seen(b: int = broker_id) -> bool:
            described = raw_request(_port(cluster, b), 32, 4, include_synonyms=False,
                             include_documentation=False, resources=[dict(
                                 resource_type=2, resource_name=topic,
                                 configuration_keys=["retention.ms", "segment.ms"])])
            values = {c.name: (c.value, c.config_source)
                      for c in described.results[0].configs}
            return values == {"retention.ms": ("604800000", 5), "segment.ms": ("7654321", 1)}
        _wait(configs_seen, what=f"configs on broker {broker_id}")

        def partitions_seen(b: int = broker_id) -> bool:
            [described] = raw_request(
                _port(cluster, b), 3, 12, topics=[dict(name=topic, topic_id=None)],
                allow_auto_topic_creation=False,
                include_topic_authorized_operations=False).topics
            return described.error_code == ErrorCode.none and sorted(
                (p.partition_index, len(p.replica_nodes), p.leader_id in p.replica_nodes)
                for p in described.partitions) == [(i, 3, True) for i in range(5)]
        _wait(partitions_seen, what=f"5 partitions on broker {broker_id}")
    # every broker has them now, so whichever one the client asks answers 5
    assert len(admin.list_topics(topic, timeout=TIMEOUT).topics[topic].partitions) == 5


def test_broker_resources_are_described_by_their_own_broker(cluster, admin):
    for broker_id in (1, 2, 3):
        resource = ConfigResource(ConfigResource.Type.BROKER, str(broker_id))
        configs = admin.describe_configs([resource])[resource].result(TIMEOUT)
        assert configs["node.id"].value == str(broker_id)
        assert configs["node.id"].source == ConfigSource.STATIC_BROKER_CONFIG.value
    wrong = raw_request(_port(cluster, 1), 32, 4, include_synonyms=False,
                        include_documentation=False,
                        resources=[dict(resource_type=4, resource_name="2",
                                        configuration_keys=None)])
    assert wrong.results[0].error_code == ErrorCode.invalid_request


def test_log_dirs_and_leader_epochs_on_every_replica(cluster, admin):
    topic = _topic(admin)
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all"})
    for i in range(30):
        producer.produce(topic, value=f"{i}".encode() * 10, partition=0)
    assert producer.flush(TIMEOUT) == 0
    leader = admin.list_topics(topic, timeout=TIMEOUT).topics[topic].partitions[0].leader
    for broker_id in (1, 2, 3):
        port = _port(cluster, broker_id)

        def replicated(p: int = port) -> bool:
            dirs = raw_request(p, 35, 4, topics=[dict(topic=topic, partitions=[0])])
            [entry] = dirs.results[0].topics
            return entry.partitions[0].partition_size > 30 * 20
        _wait(replicated, what=f"log dir size on broker {broker_id}")
        # a replica (replica_id >= 0) may ask any host; a consumer must ask the leader
        as_replica = raw_request(port, 23, 4, replica_id=broker_id % 3 + 1, topics=[dict(
            topic=topic, partitions=[dict(partition=0, current_leader_epoch=-1,
                                          leader_epoch=0)])])
        assert as_replica.topics[0].partitions[0].error_code == ErrorCode.none
        as_consumer = raw_request(port, 23, 4, replica_id=-1, topics=[dict(
            topic=topic, partitions=[dict(partition=0, current_leader_epoch=-1,
                                          leader_epoch=0)])])
        expected = ErrorCode.none if broker_id == leader else ErrorCode.not_leader_or_follower
        assert as_consumer.topics[0].partitions[0].error_code == expected

    tp = TopicPartition(topic, 0, 12)
    assert admin.delete_records([tp])[tp].result(TIMEOUT).low_watermark == 12
    earliest = admin.list_offsets({TopicPartition(topic, 0): OffsetSpec.earliest()})
    assert earliest[TopicPartition(topic, 0)].result(TIMEOUT).offset == 12


def test_preferred_leader_election_after_a_restart(cluster, admin):
    topic = _topic(admin, assignment=[[1, 2, 3], [2, 3, 1], [3, 1, 2]])
    control = cluster.control
    control.kill_sync(1)
    _wait(lambda: admin.list_topics(topic, timeout=5).topics[topic].partitions[0].leader
          not in (1, -1), what="leader moves off broker 1")
    control.start_sync(1)

    def all_in_sync() -> bool:  # every partition of every topic: broker 1 caught up again
        topics = admin.list_topics(timeout=5).topics.values()
        return all(sorted(p.isrs) == sorted(p.replicas)
                   for t in topics for p in t.partitions.values())
    _wait(all_in_sync, timeout=60, what="broker 1 back in every ISR")
    md = admin.list_topics(topic, timeout=TIMEOUT).topics[topic].partitions
    assert md[0].leader != 1  # auto.leader.rebalance.enable=false: it stays moved

    tp = TopicPartition(topic, 0)
    result = admin.elect_leaders(ElectionType.PREFERRED, [tp]).result(TIMEOUT)
    assert result[tp] is None
    _wait(lambda: admin.list_topics(topic, timeout=5).topics[topic].partitions[0].leader == 1,
          what="preferred leader back")
    # all partitions: the other topics' partitions that broker 1 lost move back too, and
    # afterwards nothing is left to elect (ELECTION_NOT_NEEDED ones are left out)
    moved = admin.elect_leaders(ElectionType.PREFERRED, None).result(TIMEOUT)
    assert all(error is None for error in moved.values())
    assert admin.elect_leaders(ElectionType.PREFERRED, None).result(TIMEOUT) == {}


def test_deleted_records_stay_deleted_after_leader_change(cluster, admin):
    topic = _topic(admin, assignment=[[2, 3, 1]])
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all"})
    for i in range(20):
        producer.produce(topic, value=str(i).encode(), partition=0)
    assert producer.flush(TIMEOUT) == 0
    tp = TopicPartition(topic, 0, 15)
    assert admin.delete_records([tp])[tp].result(TIMEOUT).low_watermark == 15
    time.sleep(1.0)  # a few follower fetch rounds
    cluster.control.kill_sync(2)
    try:
        _wait(lambda: admin.list_topics(topic, timeout=5).topics[topic].partitions[0].leader
              not in (2, -1), what="new leader")
        earliest = admin.list_offsets({TopicPartition(topic, 0): OffsetSpec.earliest()})
        assert earliest[TopicPartition(topic, 0)].result(TIMEOUT).offset == 15
    finally:
        cluster.control.start_sync(2)
        _wait(lambda: 2 in admin.list_topics(topic, timeout=5).topics[topic].partitions[0].isrs,
              timeout=60, what="broker 2 back in the ISR")
