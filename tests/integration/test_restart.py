"""Everything written by real clients survives a broker restart (clean, then SIGKILL).

Phase 1 (module fixture): confluent-kafka, kafka-python and aiokafka write topics with keys,
headers, compression and idempotence; configs are altered, partitions added, records deleted,
and a hand-built idempotent producer writes two batches. Phase 2 (the tests): restart the broker
and read it all back; the idempotent producer's state must survive, so a retried batch is
recognised as a duplicate and a sequence gap is refused.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field

import pytest
from aiokafka import AIOKafkaProducer
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
    OffsetSpec,
)
from kafka import KafkaProducer
from kio.schema.errors import ErrorCode

from core.records.batch import build_batch
from tests.fixtures import raw_request

pytestmark = pytest.mark.timeout(120)
TIMEOUT = 15


@dataclass
class Written:
    expected: dict[tuple[str, int], list[bytes]] = field(default_factory=dict)
    confluent: str = ""
    configured: str = ""
    idempotent: str = ""
    producer_id: int = -1
    batches: list[bytes] = field(default_factory=list)
    live_producer: Producer | None = None


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _produce_raw(port: int, topic: str, batch: bytes) -> tuple[ErrorCode, int]:
    response = raw_request(port, 0, 9, transactional_id=None, acks=-1, timeout=5000, topic_data=[
        dict(name=topic, partition_data=[dict(index=0, records=batch)])])
    part = response.responses[0].partition_responses[0]
    return part.error_code, part.base_offset


def _idempotent_batch(pid: int, seq: int, values: list[bytes]) -> bytes:
    return build_batch([(None, v, ()) for v in values], timestamp_ms=int(time.time() * 1000),
                       producer_id=pid, producer_epoch=0, base_sequence=seq)


@pytest.fixture(scope="module")
def written(kafka_broker) -> Written:
    bootstrap = kafka_broker.bootstrap
    admin = AdminClient({"bootstrap.servers": bootstrap})
    w = Written(confluent=_name("rs-conf"), configured=_name("rs-cfg"),
                idempotent=_name("rs-idem"))
    kp_topic, aio_topic = _name("rs-kp"), _name("rs-aio")
    futures = admin.create_topics([
        NewTopic(w.confluent, 3, 1), NewTopic(kp_topic, 1, 1), NewTopic(aio_topic, 1, 1),
        NewTopic(w.configured, 1, 1, config={"retention.ms": "86400000"}),
        NewTopic(w.idempotent, 1, 1)])
    for future in futures.values():
        future.result(TIMEOUT)

    # confluent-kafka: idempotent, gzip, keys and headers; kept open across the restart
    w.live_producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                                "compression.type": "gzip", "linger.ms": 5})
    for i in range(300):
        value = f"c{i}".encode()
        w.live_producer.produce(w.confluent, key=b"k", value=value, partition=i % 3,
                                headers=[("i", str(i).encode())])
        w.expected.setdefault((w.confluent, i % 3), []).append(value)
    assert w.live_producer.flush(TIMEOUT) == 0

    # kafka-python: lz4, idempotent
    producer = KafkaProducer(bootstrap_servers=bootstrap, compression_type="lz4",
                             enable_idempotence=True, acks="all")
    values = [f"kp{i}".encode() for i in range(200)]
    for value in values:
        producer.send(kp_topic, value=value)
    producer.flush(TIMEOUT)
    producer.close()
    w.expected[(kp_topic, 0)] = values

    # aiokafka: zstd
    async def aio() -> None:
        p = AIOKafkaProducer(bootstrap_servers=bootstrap, compression_type="zstd", acks="all")
        await p.start()
        try:
            for i in range(200):
                await p.send(aio_topic, value=f"aio{i}".encode())
            await p.flush()
        finally:
            await p.stop()
    asyncio.run(aio())
    w.expected[(aio_topic, 0)] = [f"aio{i}".encode() for i in range(200)]

    # admin state: more partitions, deleted records
    admin.create_partitions([NewPartitions(w.configured, 4)])[w.configured].result(TIMEOUT)
    producer = Producer({"bootstrap.servers": bootstrap})
    for i in range(10):
        producer.produce(w.configured, value=str(i).encode(), partition=0)
    assert producer.flush(TIMEOUT) == 0
    tp = TopicPartition(w.configured, 0, 5)
    assert admin.delete_records([tp])[tp].result(TIMEOUT).low_watermark == 5
    w.expected[(w.configured, 0)] = [str(i).encode() for i in range(5, 10)]

    # a hand-built idempotent producer: sequences 0-2 then 3-4
    init = raw_request(kafka_broker.port, 22, 4, transactional_id=None, transaction_timeout=60000,
                producer_id=-1, producer_epoch=-1)
    assert init.error_code == ErrorCode.none
    w.producer_id = init.producer_id
    w.batches = [_idempotent_batch(w.producer_id, 0, [b"i0", b"i1", b"i2"]),
                 _idempotent_batch(w.producer_id, 3, [b"i3", b"i4"])]
    assert _produce_raw(kafka_broker.port, w.idempotent, w.batches[0]) == (ErrorCode.none, 0)
    assert _produce_raw(kafka_broker.port, w.idempotent, w.batches[1]) == (ErrorCode.none, 3)
    w.expected[(w.idempotent, 0)] = [b"i0", b"i1", b"i2", b"i3", b"i4"]
    return w


def _read_back(bootstrap: str, expected: dict[tuple[str, int], list[bytes]]) -> None:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": _name("rs-g"),
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    consumer.assign([TopicPartition(t, p, -2) for t, p in expected])  # OFFSET_BEGINNING
    total = sum(len(v) for v in expected.values())
    got: dict[tuple[str, int], list[bytes]] = {}
    deadline = time.monotonic() + 30
    while sum(len(v) for v in got.values()) < total and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        assert msg.error() is None, msg.error()
        got.setdefault((msg.topic(), msg.partition()), []).append(msg.value())
    consumer.close()
    assert got == expected


def _check_idempotent_state(port: int, w: Written) -> None:
    described = raw_request(port, 61, 0, topics=[dict(name=w.idempotent, partition_indexes=[0])])
    [state] = described.topics[0].partitions[0].active_producers
    assert (state.producer_id, state.producer_epoch, state.last_sequence) == (
        w.producer_id, 0, 4)
    # a retry of the last batch is a duplicate: same offset, nothing appended
    assert _produce_raw(port, w.idempotent, w.batches[1]) == (ErrorCode.none, 3)
    # a sequence gap is refused
    gap = _idempotent_batch(w.producer_id, 9, [b"gap"])
    code, _ = _produce_raw(port, w.idempotent, gap)
    assert code == ErrorCode.out_of_order_sequence_number


def test_everything_survives_a_clean_restart(kafka_broker, written):
    w = written
    _read_back(kafka_broker.bootstrap, w.expected)  # before, as a baseline
    kafka_broker.restart()
    bootstrap = kafka_broker.bootstrap
    _read_back(bootstrap, w.expected)

    admin = AdminClient({"bootstrap.servers": bootstrap})
    resource = ConfigResource(ConfigResource.Type.TOPIC, w.configured)
    configs = admin.describe_configs([resource])[resource].result(TIMEOUT)
    assert configs["retention.ms"].value == "86400000"
    assert configs["retention.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    md = admin.list_topics(w.configured, timeout=TIMEOUT)
    assert len(md.topics[w.configured].partitions) == 4
    earliest = admin.list_offsets({TopicPartition(w.configured, 0): OffsetSpec.earliest()})
    assert earliest[TopicPartition(w.configured, 0)].result(TIMEOUT).offset == 5

    _check_idempotent_state(kafka_broker.port, w)
    # the next sequence is accepted right after the last one
    nxt = _idempotent_batch(w.producer_id, 5, [b"i5"])
    assert _produce_raw(kafka_broker.port, w.idempotent, nxt) == (ErrorCode.none, 5)
    w.batches.append(nxt)
    w.expected[(w.idempotent, 0)].append(b"i5")


def test_live_idempotent_producer_continues_without_duplicates(kafka_broker, written):
    w = written
    assert w.live_producer is not None
    errors: list = []
    for i in range(300, 450):
        value = f"c{i}".encode()
        w.live_producer.produce(w.confluent, key=b"k", value=value, partition=i % 3,
                                on_delivery=lambda err, msg: errors.append(err))
        w.expected[(w.confluent, i % 3)].append(value)
    assert w.live_producer.flush(30) == 0
    assert errors == [None] * 150
    _read_back(kafka_broker.bootstrap, w.expected)


def test_everything_survives_sigkill(kafka_broker, written):
    w = written
    time.sleep(1.2)  # let one offset checkpoint (1 s in tests) pass, as in normal operation
    kafka_broker.kill()
    kafka_broker.start()
    _read_back(kafka_broker.bootstrap, w.expected)
    described = raw_request(kafka_broker.port, 61, 0,
                     topics=[dict(name=w.idempotent, partition_indexes=[0])])
    [state] = described.topics[0].partitions[0].active_producers
    assert (state.producer_id, state.last_sequence) == (w.producer_id, 5)
    assert _produce_raw(kafka_broker.port, w.idempotent, w.batches[-1]) == (ErrorCode.none, 5)
