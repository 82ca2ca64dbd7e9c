"""CreateTopics with a manual replica assignment, as Apache Kafka's controller answers it.

Kafka (ReplicationControlManager.createTopic / validateManualPartitionAssignment) refuses a bad
manual assignment with INVALID_REPLICA_ASSIGNMENT whatever is wrong with it: a broker listed
twice for a partition, partitions that are not 0..n-1, partitions with different replica
counts, a partition assigned twice, an unknown broker. Real client: kafka-python's
KafkaAdminClient.create_topics (replica_assignments) against a 3-broker cluster; a partition
assigned twice can only be sent over the wire (kio).
"""

from __future__ import annotations

import uuid

import pytest
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import InvalidReplicationAssignmentError
from kio.schema.errors import ErrorCode

from tests.fixtures import raw_request, running_local_cluster, wait_for

pytestmark = pytest.mark.timeout(180)

CONFIG = {"group.initial.rebalance.delay.ms": "0", "offsets.topic.num.partitions": "3"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    yield from running_local_cluster(tmp_path_factory, "conformance-topics", CONFIG)


@pytest.fixture(scope="module")
def kadmin(cluster) -> KafkaAdminClient:
    client = KafkaAdminClient(bootstrap_servers=cluster.bootstrap, request_timeout_ms=10000)
    yield client
    client.close()


def _name() -> str:
    return f"ra-{uuid.uuid4().hex[:8]}"


def _manual(name: str, assignment: dict[int, list[int]]) -> NewTopic:
    return NewTopic(name, num_partitions=-1, replication_factor=-1,
                    replica_assignments=assignment)


@pytest.mark.parametrize("assignment", [
    pytest.param({0: [1, 2, 2]}, id="broker-twice"),
    pytest.param({0: [1, 2], 2: [2, 3]}, id="not-consecutive"),
    pytest.param({0: [1, 2], 1: [3]}, id="uneven-replica-counts"),
    pytest.param({0: [1, 2], 1: []}, id="empty-replica-list"),
    pytest.param({0: [1, 7]}, id="unknown-broker"),
])
def test_bad_manual_assignment_is_invalid_replica_assignment(kadmin, assignment):
    name = _name()
    with pytest.raises(InvalidReplicationAssignmentError):
        kadmin.create_topics([_manual(name, assignment)])
    assert name not in kadmin.list_topics()


def test_good_manual_assignment_is_created(kadmin):
    name = _name()
    kadmin.create_topics([_manual(name, {0: [3, 1], 1: [2, 3]})])

    def replicas() -> dict[int, list[int]]:
        described = kadmin.describe_topics([name])[0]
        return {p["partition_index"]: p["replica_nodes"] for p in described["partitions"]}

    wait_for(lambda: len(replicas()) == 2, timeout=15, what=f"{name} in the metadata")
    assert replicas() == {0: [3, 1], 1: [2, 3]}






def test_partition_assigned_twice(cluster):
    name = _name()
    assignments = [dict(partition_index=0, broker_ids=[1, 2]),
                   dict(partition_index=0, broker_ids=[2, 3])]
    response = raw_request(cluster.port, 19, 5, timeout=10_000, validate_only=False,
                     topics=[dict(name=name, num_partitions=-1, replication_factor=-1,
                                  assignments=assignments, configs=[])])
    result = response.topics[0]
    assert result.error_code == ErrorCode.invalid_replica_assignment, result
    assert result.error_message == "Found multiple manual partition assignments for partition 0"


def test_name_colliding_with_an_existing_topic_is_refused(cluster, kadmin):
    """Kafka's validateNewTopicNames: 'a.b' and 'a_b' share a metric name, so the second is
    INVALID_TOPIC_EXCEPTION "Topic 'x' collides with existing topic: y"; auto-creation by a
    Metadata request does not create it either (the client sees LEADER_NOT_AVAILABLE)."""
    from confluent_kafka import KafkaError
    from confluent_kafka.admin import AdminClient
    from confluent_kafka.admin import NewTopic as CNewTopic

    stem = uuid.uuid4().hex[:8]
    first, second = f"orders_{stem}.v1", f"orders.{stem}_v1"
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    admin.create_topics([CNewTopic(first, 1, 1)])[first].result(15)
    wait_for(lambda: raw_request(cluster.port, 3, 12, topics=[dict(name=first)],
                           allow_auto_topic_creation=False,
                           include_topic_authorized_operations=False
                           ).topics[0].error_code == ErrorCode.none,
             timeout=15, what=f"{first} in broker 1's metadata")
    future = admin.create_topics([CNewTopic(second, 1, 1)])[second]
    with pytest.raises(Exception) as info:
        future.result(15)
    error = info.value.args[0]
    assert error.code() == KafkaError.TOPIC_EXCEPTION, error
    assert error.str() == f"Topic '{second}' collides with existing topic: {first}"
    response = raw_request(cluster.port, 3, 12, topics=[dict(name=second)],
                     allow_auto_topic_creation=True, include_topic_authorized_operations=False)
    assert response.topics[0].error_code == ErrorCode.leader_not_available
    assert second not in kadmin.list_topics()
    assert first in kadmin.list_topics()
