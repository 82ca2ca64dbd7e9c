"""A single broker used by confluent-kafka (librdkafka) exactly as against Apache Kafka."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

pytestmark = pytest.mark.timeout(120)


def _create(bootstrap: str, name: str, partitions: int = 1, configs: dict | None = None) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(name, partitions, 1, config=configs or {})])
    futures[name].result(timeout=15)


def _consume_all(bootstrap: str, topic: str, count: int, partitions: int = 1,
                 **extra: str) -> list:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"g-{topic}",
                         "enable.auto.commit": False, **extra})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    got = []
    deadline = time.monotonic() + 30
    while len(got) < count and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        assert msg.error() is None, msg.error()
        got.append(msg)
    consumer.close()
    return got


@pytest.mark.parametrize("acks", ["0", "1", "all"])
def test_produce_consume_every_acks_level(kafka_broker, topic_name, acks):
    _create(kafka_broker.bootstrap, topic_name)
    producer = Producer({"bootstrap.servers": kafka_broker.bootstrap, "acks": acks,
                         "enable.idempotence": False, "linger.ms": 5})
    for i in range(500):
        producer.produce(topic_name, key=f"k{i}".encode(), value=f"v{i}".encode(),
                         headers=[("h", f"{i}".encode())])
    assert producer.flush(20) == 0
    got = _consume_all(kafka_broker.bootstrap, topic_name, 500)
    assert [m.value() for m in got] == [f"v{i}".encode() for i in range(500)]
    assert [m.offset() for m in got] == list(range(500))
    assert got[7].key() == b"k7"
    assert got[7].headers() == [("h", b"7")]


@pytest.mark.parametrize("compression", ["gzip", "snappy", "lz4", "zstd"])
def test_every_compression_round_trips(kafka_broker, topic_name, compression):
    _create(kafka_broker.bootstrap, topic_name)
    producer = Producer({"bootstrap.servers": kafka_broker.bootstrap,
                         "compression.type": compression, "linger.ms": 20})
    values = [f"{compression}-{i}".encode() * 10 for i in range(300)]
    for v in values:
        producer.produce(topic_name, value=v)
    assert producer.flush(20) == 0
    got = _consume_all(kafka_broker.bootstrap, topic_name, len(values))
    assert [m.value() for m in got] == values


def test_idempotent_producer_is_default_and_works(kafka_broker, topic_name):
    _create(kafka_broker.bootstrap, topic_name, partitions=3)
    reports = []
    producer = Producer({"bootstrap.servers": kafka_broker.bootstrap,
                         "enable.idempotence": True})
    for i in range(900):
        producer.produce(topic_name, key=str(i % 17).encode(), value=str(i).encode(),
                         on_delivery=lambda err, msg: reports.append(err))
    assert producer.flush(20) == 0
    assert reports == [None] * 900
    got = _consume_all(kafka_broker.bootstrap, topic_name, 900, partitions=3)
    assert sorted(int(m.value()) for m in got) == list(range(900))


def test_list_offsets_earliest_latest_and_timestamp(kafka_broker, topic_name):
    _create(kafka_broker.bootstrap, topic_name)
    producer = Producer({"bootstrap.servers": kafka_broker.bootstrap})
    base = int(time.time() * 1000) - 100_000
    for i in range(10):
        producer.produce(topic_name, value=b"x", timestamp=base + i * 1000)
    producer.flush(10)
    consumer = Consumer({"bootstrap.servers": kafka_broker.bootstrap, "group.id": "lo"})
    low, high = consumer.get_watermark_offsets(TopicPartition(topic_name, 0), timeout=10)
    assert (low, high) == (0, 10)
    found = consumer.offsets_for_times([TopicPartition(topic_name, 0, base + 4500)], timeout=10)
    assert found[0].offset == 5
    consumer.close()


def test_auto_create_on_metadata_and_unknown_topic_errors(kafka_broker, topic_name):
    producer = Producer({"bootstrap.servers": kafka_broker.bootstrap})
    producer.produce(topic_name, value=b"auto")
    assert producer.flush(15) == 0
    md = AdminClient({"bootstrap.servers": kafka_broker.bootstrap}).list_topics(timeout=10)
    assert topic_name in md.topics
    assert len(md.topics[topic_name].partitions) == 1


def test_bad_topic_names_get_kafka_errors(kafka_broker):
    admin = AdminClient({"bootstrap.servers": kafka_broker.bootstrap})
    futures = admin.create_topics([NewTopic("bad name!", 1, 1), NewTopic("x" * 250, 1, 1)])
    for future in futures.values():
        with pytest.raises(KafkaException) as info:
            future.result(timeout=10)
        # error 17, INVALID_TOPIC_EXCEPTION (librdkafka calls it TOPIC_EXCEPTION)
        assert info.value.args[0].code() == 17
