"""Produce as Apache Kafka answers it to clients we did not write (confluent-kafka, kcat).

Kafka's ReplicaManager refuses appends to its internal topics (__consumer_offsets,
__transaction_state) from clients: INVALID_TOPIC_EXCEPTION "Cannot append to internal topic",
unless the client id is AdminUtils.ADMIN_CLIENT_ID ("__admin_client"). Only the coordinators
write them; a client's garbage record there would be read back by the group coordinator.
"""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

pytestmark = pytest.mark.timeout(90)


def _ensure_offsets_topic(bootstrap: str) -> None:
    """A group commit creates __consumer_offsets (FindCoordinator)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"g-{uuid.uuid4().hex[:6]}"})
    try:
        consumer.list_topics(timeout=10)
        deadline = time.monotonic() + 20
        while True:
            try:
                consumer.committed([TopicPartition("any", 0)], timeout=5)
                break
            except Exception:
                assert time.monotonic() < deadline, "no group coordinator"
                time.sleep(0.2)
    finally:
        consumer.close()


def _produce_one(bootstrap: str, topic: str, **extra: object) -> list:
    producer = Producer({"bootstrap.servers": bootstrap, "retries": 0,
                         "message.timeout.ms": 10000, **extra})
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


def test_client_cannot_append_to_an_internal_topic(kafka_broker):
    internal_topic = "__consumer_offsets"
    _ensure_offsets_topic(kafka_broker.bootstrap)
    before = _end_offset(kafka_broker.bootstrap, internal_topic)
    reports = _produce_one(kafka_broker.bootstrap, internal_topic)
    assert len(reports) == 1
    error, _offset = reports[0]
    assert error is not None and error.code() == KafkaError.TOPIC_EXCEPTION, error
    assert _end_offset(kafka_broker.bootstrap, internal_topic) == before


def test_ordinary_topics_still_accept_appends(kafka_broker, topic_name):
    admin = AdminClient({"bootstrap.servers": kafka_broker.bootstrap})
    admin.create_topics([NewTopic(topic_name, 1, 1)])[topic_name].result(15)
    reports = _produce_one(kafka_broker.bootstrap, topic_name)
    assert reports and reports[0][0] is None, reports
