"""Metadata as Apache Kafka answers it to a client we did not write (confluent-kafka).

librdkafka's describe_cluster / describe_topics with include_authorized_operations=True send
Metadata v10+ with include_cluster/topic_authorized_operations: Kafka without an authorizer
answers every supported operation of the resource (KafkaApis / AuthHelper.authorizedOperations).
"""

from __future__ import annotations

import time

import pytest
from confluent_kafka import TopicCollection
from confluent_kafka.admin import AclOperation, AdminClient, NewTopic

pytestmark = pytest.mark.timeout(90)

#: Kafka's AclEntry.supportedOperations(CLUSTER) and (TOPIC)
CLUSTER_OPERATIONS = {AclOperation.CREATE, AclOperation.CLUSTER_ACTION,
                      AclOperation.DESCRIBE_CONFIGS, AclOperation.ALTER_CONFIGS,
                      AclOperation.IDEMPOTENT_WRITE, AclOperation.ALTER, AclOperation.DESCRIBE}
TOPIC_OPERATIONS = {AclOperation.READ, AclOperation.WRITE, AclOperation.CREATE,
                    AclOperation.DESCRIBE, AclOperation.DELETE, AclOperation.ALTER,
                    AclOperation.DESCRIBE_CONFIGS, AclOperation.ALTER_CONFIGS}


def _admin(kafka_broker) -> AdminClient:
    return AdminClient({"bootstrap.servers": kafka_broker.bootstrap})


def test_describe_cluster_with_authorized_operations(kafka_broker):
    admin = _admin(kafka_broker)
    described = admin.describe_cluster(include_authorized_operations=True).result(15)
    assert set(described.authorized_operations or ()) == CLUSTER_OPERATIONS
    assert [n.id for n in described.nodes] == [kafka_broker.node_id]
    # not asked for: none (Integer.MIN_VALUE on the wire)
    assert admin.describe_cluster().result(15).authorized_operations is None


def test_describe_topics_with_authorized_operations(kafka_broker, topic_name):
    admin = _admin(kafka_broker)
    admin.create_topics([NewTopic(topic_name, 2, 1)])[topic_name].result(15)
    deadline = time.monotonic() + 15
    while topic_name not in admin.list_topics(timeout=5).topics:
        assert time.monotonic() < deadline, "topic not in metadata"
        time.sleep(0.2)
    futures = admin.describe_topics(TopicCollection([topic_name]),
                                    include_authorized_operations=True)
    described = futures[topic_name].result(15)
    assert set(described.authorized_operations or ()) == TOPIC_OPERATIONS
    assert len(described.partitions) == 2
    plain = admin.describe_topics(TopicCollection([topic_name]))[topic_name].result(15)
    assert plain.authorized_operations is None
