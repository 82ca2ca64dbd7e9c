"""aiokafka (asyncio client) used unchanged against a single kaflab broker."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic, RecordsToDelete
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import OffsetOutOfRangeError, TopicAlreadyExistsError

pytestmark = pytest.mark.timeout(90)


def run(bootstrap: str, body: Callable[[AIOKafkaAdminClient], Awaitable[Any]]) -> Any:
    """Run `body(admin)` on a fresh event loop with a started admin client."""

    async def main() -> Any:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
        await admin.start()
        try:
            return await body(admin)
        finally:
            await admin.close()

    return asyncio.run(main())


async def _create(admin: AIOKafkaAdminClient, partitions: int = 1,
                  configs: dict | None = None) -> str:
    name = f"aio-{uuid.uuid4().hex[:8]}"
    await admin.create_topics([NewTopic(name, partitions, 1, topic_configs=configs or {})])
    return name


async def _consume(bootstrap: str, partitions: list[TopicPartition], count: int,
                   seek: dict[TopicPartition, int] | None = None) -> list:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        consumer.assign(partitions)
        for tp, offset in (seek or {}).items():
            consumer.seek(tp, offset)
        got: list = []
        deadline = time.monotonic() + 20
        while len(got) < count and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                got.extend(records)
        return got
    finally:
        await consumer.stop()


def test_create_and_delete_topics(kafka_broker):
    async def body(admin: AIOKafkaAdminClient) -> None:
        name = await _create(admin, partitions=3)
        assert name in await admin.list_topics()
        with pytest.raises(TopicAlreadyExistsError):
            response = await admin.create_topics([NewTopic(name, 1, 1)])
            for _topic, code, *_ in response.topic_errors:
                if code:
                    raise TopicAlreadyExistsError()
        await admin.delete_topics([name])
        deadline = time.monotonic() + 10
        while name in await admin.list_topics() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert name not in await admin.list_topics()

    run(kafka_broker.bootstrap, body)


@pytest.mark.parametrize("acks", [0, 1, "all"])
@pytest.mark.parametrize("compression", [None, "gzip", "snappy", "lz4", "zstd"])
def test_acks_and_compression_with_keys_and_headers(kafka_broker, acks, compression):
    async def body(admin: AIOKafkaAdminClient) -> None:
        topic = await _create(admin)
        producer = AIOKafkaProducer(bootstrap_servers=kafka_broker.bootstrap, acks=acks,
                                    compression_type=compression, linger_ms=10)
        await producer.start()
        try:
            for i in range(150):
                await producer.send(topic, key=f"k{i}".encode(), value=f"v{i}".encode() * 5,
                                    headers=[("n", str(i).encode())])
            await producer.flush()
        finally:
            await producer.stop()
        got = await _consume(kafka_broker.bootstrap, [TopicPartition(topic, 0)], 150)
        assert [r.value for r in got] == [f"v{i}".encode() * 5 for i in range(150)]
        assert [r.offset for r in got] == list(range(150))
        assert got[3].key == b"k3" and list(got[3].headers) == [("n", b"3")]

    run(kafka_broker.bootstrap, body)


@pytest.mark.parametrize("idempotent", [True, False])
def test_idempotence_on_and_off(kafka_broker, idempotent):
    async def body(admin: AIOKafkaAdminClient) -> None:
        topic = await _create(admin, partitions=2)
        producer = AIOKafkaProducer(bootstrap_servers=kafka_broker.bootstrap,
                                    enable_idempotence=idempotent, acks="all")
        await producer.start()
        try:
            futures = [await producer.send(topic, value=str(i).encode(), partition=i % 2)
                       for i in range(400)]
            metadata = await asyncio.gather(*futures)
        finally:
            await producer.stop()
        assert sorted(m.offset for m in metadata if m.partition == 0) == list(range(200))
        got = await _consume(kafka_broker.bootstrap,
                             [TopicPartition(topic, 0), TopicPartition(topic, 1)], 400)
        assert sorted(int(r.value) for r in got) == list(range(400))

    run(kafka_broker.bootstrap, body)


def test_latest_timestamp_offsets_and_admin_ops(kafka_broker):
    async def body(admin: AIOKafkaAdminClient) -> None:
        topic = await _create(admin, configs={"retention.ms": "9000000"})
        tp = TopicPartition(topic, 0)
        base = int(time.time() * 1000) - 50_000
        producer = AIOKafkaProducer(bootstrap_servers=kafka_broker.bootstrap)
        await producer.start()
        try:
            for i in range(10):
                await producer.send(topic, value=f"r{i}".encode(), timestamp_ms=base + i * 1000)
            await producer.flush()

            consumer = AIOKafkaConsumer(bootstrap_servers=kafka_broker.bootstrap,
                                        group_id=None, auto_offset_reset="latest")
            await consumer.start()
            try:
                assert await consumer.beginning_offsets([tp]) == {tp: 0}
                assert await consumer.end_offsets([tp]) == {tp: 10}
                found = await consumer.offsets_for_times({tp: base + 2500})
                assert found[tp].offset == 3
                consumer.assign([tp])
                await consumer.seek_to_end(tp)
                assert await consumer.position(tp) == 10
                await producer.send_and_wait(topic, value=b"fresh")
                record = await asyncio.wait_for(consumer.getone(), 10)
                assert (record.offset, record.value) == (10, b"fresh")
            finally:
                await consumer.stop()
        finally:
            await producer.stop()
        from_ts = await _consume(kafka_broker.bootstrap, [tp], 8, seek={tp: 3})
        assert [r.value for r in from_ts][:7] == [f"r{i}".encode() for i in range(3, 10)]

        # configs
        [described] = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic)])
        entries = {c[0]: c[1] for c in described.resources[0][4]}
        assert entries["retention.ms"] == "9000000"
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic,
                                                  {"segment.ms": "123456"})])
        [described] = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic)])
        entries = {c[0]: c[1] for c in described.resources[0][4]}
        assert entries["segment.ms"] == "123456"
        assert entries["retention.ms"] == "604800000"  # legacy AlterConfigs replaced all

        # partitions, records, cluster
        await admin.create_partitions({topic: NewPartitions(total_count=3)})
        [topic_md] = await admin.describe_topics([topic])
        assert len(topic_md["partitions"]) == 3
        low = await admin.delete_records({tp: RecordsToDelete(before_offset=7)})
        assert low == {tp: 7}
        with pytest.raises(OffsetOutOfRangeError):
            await admin.delete_records({tp: RecordsToDelete(before_offset=500)})
        cluster = await admin.describe_cluster()
        assert cluster["controller_id"] == 1
        assert [b["node_id"] for b in cluster["brokers"]] == [1]

    run(kafka_broker.bootstrap, body)
