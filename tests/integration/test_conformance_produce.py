"""Produce as Apache Kafka answers it to clients we did not write (confluent-kafka, kafka-python),
on a 3-broker cluster.

- Kafka's ReplicaManager refuses appends to its internal topics (__consumer_offsets,
  __transaction_state) from clients: INVALID_TOPIC_EXCEPTION "Cannot append to internal
  topic", unless the client id is AdminUtils.ADMIN_CLIENT_ID ("__admin_client"). Only the
  coordinators write them; a client's garbage record there would be read back by the group
  coordinator.
- An acks=0 produce that fails (e.g. NOT_LEADER_OR_FOLLOWER after the leader moved) gets no
  response, so Kafka's KafkaApis closes the connection: the producer's only sign to refresh its
  metadata. Without it an acks=0 producer loses every record until its periodic refresh.
"""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from tests.fixtures import running_local_cluster, wait_for

pytestmark = pytest.mark.timeout(180)

CONFIG = {"group.initial.rebalance.delay.ms": "0", "offsets.topic.num.partitions": "3",
          "auto.leader.rebalance.enable": "false"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    yield from running_local_cluster(tmp_path_factory, "conformance-produce", CONFIG)


def _ensure_offsets_topic(bootstrap: str) -> None:
    """A group lookup creates __consumer_offsets (FindCoordinator)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"g-{uuid.uuid4().hex[:6]}"})
    try:
        wait_for(lambda: consumer.committed([TopicPartition("any", 0)], timeout=5) is not None,
                 timeout=30, what="a group coordinator")
    finally:
        consumer.close()


def _produce_one(bootstrap: str, topic: str, **extra: object) -> list:
    # retries stay on: a transient NOT_LEADER / LEADER_NOT_AVAILABLE while a just-created
    # partition settles is retried; the errors these tests expect are not retriable
    producer = Producer({"bootstrap.servers": bootstrap, "message.timeout.ms": 10000,
                         **extra})
    reports: list = []
    producer.produce(topic, key=b"not-a-group-key", value=b"garbage", partition=0,
                     on_delivery=lambda err, msg: reports.append((err, msg.offset())))
    producer.flush(15)
    return reports


def _end_offset(bootstrap: str, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "watermarks"})
    try:
        return consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1]
    finally:
        consumer.close()


def _create(bootstrap: str, topic: str, **kwargs: object) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, **kwargs)])[topic].result(15)
    wait_for(lambda: topic in admin.list_topics(timeout=5).topics, timeout=15,
             what=f"{topic} in the metadata")


def test_client_cannot_append_to_an_internal_topic(cluster):
    internal_topic = "__consumer_offsets"
    _ensure_offsets_topic(cluster.bootstrap)
    wait_for(lambda: _end_offset(cluster.bootstrap, internal_topic) >= 0, timeout=30,
             what=f"{internal_topic}-0 to have a leader")
    before = _end_offset(cluster.bootstrap, internal_topic)
    reports = _produce_one(cluster.bootstrap, internal_topic)
    assert len(reports) == 1
    error, _offset = reports[0]
    assert error is not None and error.code() == KafkaError.TOPIC_EXCEPTION, error
    assert _end_offset(cluster.bootstrap, internal_topic) == before


def test_ordinary_topics_still_accept_appends(cluster):
    topic = f"t-{uuid.uuid4().hex[:8]}"
    _create(cluster.bootstrap, topic, num_partitions=1, replication_factor=1)
    reports = _produce_one(cluster.bootstrap, topic)
    assert reports and reports[0][0] is None, reports


def test_acks0_producer_follows_a_moved_leader(cluster):
    """Leader 1, then (reassignment + preferred election) leader 2: records an acks=0
    producer sends afterwards reach the new leader within seconds."""
    from kafka import TopicPartition as KTopicPartition
    from kafka.admin import KafkaAdminClient
    from kafka.admin import NewTopic as KNewTopic

    topic = f"acks0-{uuid.uuid4().hex[:8]}"
    kadmin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap, request_timeout_ms=10000)
    kadmin.create_topics([KNewTopic(topic, num_partitions=-1, replication_factor=-1,
                                    replica_assignments={0: [1, 2, 3]})])
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    wait_for(lambda: topic in admin.list_topics(timeout=5).topics, timeout=15,
             what=f"{topic} in the metadata")
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": 0, "linger.ms": 0})
    for i in range(10):
        producer.produce(topic, value=b"before-%d" % i, partition=0)
    producer.flush(10)
    wait_for(lambda: _end_offset(cluster.bootstrap, topic) == 10, timeout=15,
             what="the first 10 records")
    try:
        kadmin.alter_partition_reassignments({KTopicPartition(topic, 0): [2, 3, 1]})
        wait_for(lambda: not kadmin.list_partition_reassignments(), timeout=30,
                 what="the reassignment to finish")
        kadmin.elect_leaders(0, {topic: [0]})
        wait_for(lambda: kadmin.describe_topics([topic])[0]["partitions"][0]["leader_id"] == 2,
                 timeout=30, what="broker 2 to lead")
    finally:
        kadmin.close()
    # the producer still believes broker 1 leads: its next sends fail there
    def landed() -> int:
        try:  # a fresh client may ask a broker whose metadata still names the old leader
            return _end_offset(cluster.bootstrap, topic)
        except Exception:
            return -1

    deadline = time.monotonic() + 20
    sent = 0
    while time.monotonic() < deadline and landed() < 15:
        for _ in range(5):
            producer.produce(topic, value=b"after-%d" % sent, partition=0)
            sent += 1
        producer.flush(5)
        time.sleep(0.5)
    assert landed() >= 15, \
        f"{sent} acks=0 records sent after the leader moved, none reached the new leader"
