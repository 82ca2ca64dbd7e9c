"""kafka-python (pure Python client) used unchanged against a single kaflab broker."""

from __future__ import annotations

import time
import uuid

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import (
    AlterConfigOp,
    ConfigResource,
    ConfigResourceType,
    ConfigSourceType,
    KafkaAdminClient,
    NewTopic,
    OffsetSpec,
)
from kafka.errors import (
    InvalidPartitionsError,
    TopicAlreadyExistsError,
    UnknownTopicOrPartitionError,
)

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(scope="module")
def admin(kafka_broker):
    client = KafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap, client_id="kp-admin",
                              request_timeout_ms=15000)
    yield client
    client.close()


def _create(admin, partitions: int = 1, configs: dict | None = None) -> str:
    name = f"kp-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(name, partitions, 1, topic_configs=configs or {})])
    return name


def _consume(bootstrap: str, partitions: list[TopicPartition], count: int,
             start: str | dict = "earliest") -> list:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                             enable_auto_commit=False, consumer_timeout_ms=200)
    consumer.assign(partitions)
    if start == "earliest":
        consumer.seek_to_beginning()
    elif isinstance(start, dict):
        for tp, offset in start.items():
            consumer.seek(tp, offset)
    got: list = []
    deadline = time.monotonic() + 20
    while len(got) < count and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=200).values():
            got.extend(records)
    consumer.close()
    return got


def test_create_and_delete_topics(admin):
    name = _create(admin, partitions=2)
    assert name in admin.list_topics()
    with pytest.raises(TopicAlreadyExistsError):
        admin.create_topics([NewTopic(name, 1, 1)])
    admin.delete_topics([name])
    deadline = time.monotonic() + 10
    while name in admin.list_topics() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert name not in admin.list_topics()


@pytest.mark.parametrize("acks", [0, 1, "all"])
def test_every_acks_level_with_keys_and_headers(admin, kafka_broker, acks):
    topic = _create(admin)
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, acks=acks,
                             enable_idempotence=False, linger_ms=5)
    for i in range(200):
        producer.send(topic, key=f"k{i}".encode(), value=f"v{i}".encode(),
                      headers=[("h", str(i).encode()), ("empty", b"")])
    producer.flush(20)
    producer.close()
    got = _consume(kafka_broker.bootstrap, [TopicPartition(topic, 0)], 200)
    assert [r.value for r in got] == [f"v{i}".encode() for i in range(200)]
    assert [r.offset for r in got] == list(range(200))
    assert got[9].key == b"k9"
    assert list(got[9].headers) == [("h", b"9"), ("empty", b"")]


@pytest.mark.parametrize("compression", ["gzip", "snappy", "lz4", "zstd"])
def test_every_compression(admin, kafka_broker, compression):
    topic = _create(admin)
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap,
                             compression_type=compression, linger_ms=20)
    values = [f"{compression}-{i}".encode() * 7 for i in range(300)]
    for value in values:
        producer.send(topic, value=value)
    producer.flush(20)
    producer.close()
    got = _consume(kafka_broker.bootstrap, [TopicPartition(topic, 0)], len(values))
    assert [r.value for r in got] == values


@pytest.mark.parametrize("idempotent", [True, False])
def test_idempotence_on_and_off(admin, kafka_broker, idempotent):
    topic = _create(admin, partitions=3)
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, acks="all",
                             enable_idempotence=idempotent, linger_ms=2)
    futures = [producer.send(topic, key=str(i % 11).encode(), value=str(i).encode())
               for i in range(600)]
    producer.flush(20)
    assert all(f.get(timeout=10).offset >= 0 for f in futures)
    producer.close()
    partitions = [TopicPartition(topic, p) for p in range(3)]
    got = _consume(kafka_broker.bootstrap, partitions, 600)
    assert sorted(int(r.value) for r in got) == list(range(600))
    producers = admin.describe_producers(partitions)
    active = [s for state in producers.values() for s in state.active_producers]
    if idempotent:
        assert {s.producer_id for s in active} and all(s.producer_id >= 0 for s in active)
    else:
        assert active == []


def test_consume_from_latest_and_timestamp_and_list_offsets(admin, kafka_broker):
    topic = _create(admin)
    tp = TopicPartition(topic, 0)
    base = int(time.time() * 1000) - 60_000
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap)
    for i in range(10):
        producer.send(topic, value=f"old{i}".encode(), timestamp_ms=base + i * 1000)
    producer.flush(10)

    consumer = KafkaConsumer(bootstrap_servers=kafka_broker.bootstrap, group_id=None,
                             enable_auto_commit=False)
    assert consumer.beginning_offsets([tp]) == {tp: 0}
    assert consumer.end_offsets([tp]) == {tp: 10}
    found = consumer.offsets_for_times({tp: base + 4500})
    assert found[tp].offset == 5 and found[tp].timestamp == base + 5000
    consumer.assign([tp])
    consumer.seek_to_end()
    assert consumer.position(tp) == 10
    producer.send(topic, value=b"new")
    producer.flush(10)
    got: list = []
    deadline = time.monotonic() + 10
    while not got and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=200).values():
            got.extend(records)
    assert [r.value for r in got] == [b"new"]
    consumer.close()
    producer.close()

    from_ts = _consume(kafka_broker.bootstrap, [tp], 6, start={tp: found[tp].offset})
    assert [r.value for r in from_ts][:5] == [f"old{i}".encode() for i in range(5, 10)]
    offsets = admin.list_partition_offsets({tp: OffsetSpec.EARLIEST})
    assert offsets[tp].offset == 0
    offsets = admin.list_partition_offsets({tp: OffsetSpec.LATEST})
    assert offsets[tp].offset == 11


def test_describe_and_alter_configs(admin):
    topic = _create(admin, configs={"retention.ms": "7200000"})
    described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)],
                                       config_filter="all")
    configs = described["topic"][topic]
    assert configs["retention.ms"]["value"] == "7200000"
    assert configs["retention.ms"]["config_source"] == ConfigSourceType.DYNAMIC_TOPIC_CONFIG.name
    assert configs["cleanup.policy"]["value"] == "delete"

    admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs={
        "retention.ms": (AlterConfigOp.DELETE, None),
        "segment.ms": (AlterConfigOp.SET, "86400000"),
        "cleanup.policy": (AlterConfigOp.APPEND, "compact"),
    })])
    configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)],
                                     config_filter="all")["topic"][topic]
    assert configs["segment.ms"]["value"] == "86400000"
    assert configs["retention.ms"]["value"] == "604800000"
    assert configs["cleanup.policy"]["value"] == "delete,compact"

    broker = admin.describe_configs([ConfigResource(ConfigResourceType.BROKER, "1")],
                                    config_filter="all")["broker"]["1"]
    assert broker["num.partitions"]["value"] == "1"


def test_create_partitions_delete_records_cluster_and_log_dirs(admin, kafka_broker):
    topic = _create(admin)
    admin.create_partitions({topic: 4})
    assert len(admin.describe_topics([topic])[0]["partitions"]) == 4
    with pytest.raises(InvalidPartitionsError):
        admin.create_partitions({topic: 2})

    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap)
    for i in range(10):
        producer.send(topic, value=str(i).encode(), partition=3)
    producer.flush(10)
    producer.close()
    tp = TopicPartition(topic, 3)
    result = admin.delete_records({tp: 6})
    assert result[tp]["low_watermark"] == 6
    got = _consume(kafka_broker.bootstrap, [tp], 4)
    assert [r.offset for r in got] == [6, 7, 8, 9]
    with pytest.raises(UnknownTopicOrPartitionError):
        admin.delete_records({TopicPartition(topic, 9): 0}, partition_leader_id=1)

    cluster = admin.describe_cluster()
    assert cluster["controller_id"] == 1
    assert [b["broker_id"] for b in cluster["brokers"]] == [1]
    assert cluster["cluster_id"]

    [entry] = admin.describe_log_dirs({topic: [3]})
    [log_dir] = entry["log_dirs"]
    assert log_dir["log_dir"] == str(kafka_broker.data_dir / "data")
    [t] = log_dir["topics"]
    assert t["partitions"][0]["partition_size"] > 0
