"""Committed offsets of partitions that do not exist, as Apache Kafka answers them.

Kafka's KafkaApis checks OffsetCommit, TxnOffsetCommit and OffsetDelete against the metadata
before the group coordinator sees them: a partition of an unknown topic, or a partition the
topic does not have, is answered UNKNOWN_TOPIC_OR_PARTITION and nothing is stored for it; the
other partitions of the same request are handled as usual. Real clients: confluent-kafka
(Consumer.commit, AdminClient.alter_consumer_group_offsets), kafka-python
(KafkaAdminClient.delete_group_offsets); TxnOffsetCommit over the wire with kio.
"""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import (
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic
from kio.schema.errors import ErrorCode

from tests.fixtures import raw_request

pytestmark = pytest.mark.timeout(90)

MISSING_TOPIC = "no-such-topic-for-offsets"


@pytest.fixture(scope="module")
def admin(kafka_broker) -> AdminClient:
    return AdminClient({"bootstrap.servers": kafka_broker.bootstrap})


@pytest.fixture
def topic(admin) -> str:
    """A fresh 2-partition topic."""
    name = f"off-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(name, 2, 1)])[name].result(15)
    return name


def _committed(admin: AdminClient, group: str) -> dict[tuple[str, int], int]:
    request = [ConsumerGroupTopicPartitions(group)]
    result = admin.list_consumer_group_offsets(request)[group].result(15)
    return {(tp.topic, tp.partition): tp.offset for tp in result.topic_partitions}


def test_admin_alter_offsets_of_missing_partitions(admin, topic):
    group = f"g-{uuid.uuid4().hex[:8]}"  # no members: the admin may set its offsets
    wanted = [TopicPartition(topic, 0, 5), TopicPartition(topic, 7, 5),
              TopicPartition(MISSING_TOPIC, 0, 5)]
    future = admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(group, wanted)])
    answered = future[group].result(15).topic_partitions
    errors = {(tp.topic, tp.partition): tp.error for tp in answered}
    assert errors[(topic, 0)] is None
    for missing in ((topic, 7), (MISSING_TOPIC, 0)):
        assert errors[missing] is not None, missing
        assert errors[missing].code() == KafkaError.UNKNOWN_TOPIC_OR_PART, errors[missing]
    assert _committed(admin, group) == {(topic, 0): 5}


def test_consumer_commit_of_a_missing_partition(kafka_broker, admin, topic):
    group = f"g-{uuid.uuid4().hex[:8]}"
    consumer = Consumer({"bootstrap.servers": kafka_broker.bootstrap, "group.id": group,
                         "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(topic, 0)])
        try:
            answered = consumer.commit(offsets=[TopicPartition(topic, 0, 3),
                                                TopicPartition(topic, 9, 3)],
                                       asynchronous=False)
            errors = {tp.partition: tp.error for tp in answered}
        except KafkaException as exc:
            errors = {9: exc.args[0]}
        assert errors[9] is not None and errors[9].code() == KafkaError.UNKNOWN_TOPIC_OR_PART
    finally:
        consumer.close()
    assert _committed(admin, group) == {(topic, 0): 3}


def test_delete_offsets_of_missing_partitions(kafka_broker, admin, topic):
    from kafka import TopicPartition as KTopicPartition
    from kafka.admin import KafkaAdminClient
    from kafka.errors import NoError, UnknownTopicOrPartitionError

    group = f"g-{uuid.uuid4().hex[:8]}"
    admin.alter_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0, 4),
                                              TopicPartition(topic, 1, 4)])])[group].result(15)
    kadmin = KafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap,
                              request_timeout_ms=10000)
    try:
        result = kadmin.delete_group_offsets(group, [KTopicPartition(topic, 0),
                                                     KTopicPartition(topic, 5),
                                                     KTopicPartition(MISSING_TOPIC, 0)])
    finally:
        kadmin.close()
    assert result[KTopicPartition(topic, 0)] is NoError
    assert result[KTopicPartition(topic, 5)] is UnknownTopicOrPartitionError
    assert result[KTopicPartition(MISSING_TOPIC, 0)] is UnknownTopicOrPartitionError
    assert _committed(admin, group) == {(topic, 1): 4}






def test_txn_offset_commit_of_missing_partitions_is_checked_first(kafka_broker, topic):
    """Kafka answers the metadata check before the producer's: a request naming only missing
    partitions gets UNKNOWN_TOPIC_OR_PARTITION even from an unknown producer."""
    partition = dict(partition_index=0, committed_offset=1, committed_leader_epoch=-1,
                     committed_metadata="")
    response = raw_request(kafka_broker.port, 28, 3, transactional_id="tx-none",
                     group_id=f"g-{uuid.uuid4().hex[:8]}", producer_id=12345,
                     producer_epoch=0, generation_id=-1, member_id="",
                     group_instance_id=None,
                     topics=[dict(name=MISSING_TOPIC, partitions=[partition]),
                             dict(name=topic, partitions=[dict(partition, partition_index=3)])])
    errors = {(t.name, p.partition_index): p.error_code
              for t in response.topics for p in t.partitions}
    assert errors == {(MISSING_TOPIC, 0): ErrorCode.unknown_topic_or_partition,
                      (topic, 3): ErrorCode.unknown_topic_or_partition}
