"""aiokafka's transactional producer and read_committed consumer (older API versions: v0/v1 of
AddPartitionsToTxn, EndTxn, TxnOffsetCommit) against one real broker."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from tests.fixtures import BrokerProcess

pytestmark = pytest.mark.timeout(60)


def test_aiokafka_commit_abort_and_offsets(broker_factory) -> None:
    broker: BrokerProcess = broker_factory(**{"transaction.state.log.num.partitions": "2"})
    topic = f"aio-{uuid.uuid4().hex[:8]}"
    group = f"aio-g-{uuid.uuid4().hex[:8]}"

    async def run() -> None:
        from aiokafka.admin import AIOKafkaAdminClient, NewTopic
        admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(topic, 1, 1)])
        finally:
            await admin.close()
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap,
                                    transactional_id=f"aio-{uuid.uuid4().hex[:8]}")
        await producer.start()
        try:
            async with producer.transaction():
                for i in range(5):
                    await producer.send_and_wait(topic, b"c%d" % i, partition=0)
            await producer.begin_transaction()
            await producer.send_and_wait(topic, b"aborted", partition=0)
            await producer.abort_transaction()
            async with producer.transaction():
                await producer.send_and_wait(topic, b"last", partition=0)
                from aiokafka.structs import TopicPartition
                await producer.send_offsets_to_transaction({TopicPartition(topic, 0): 3}, group)
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=broker.bootstrap,
                                    isolation_level="read_committed",
                                    auto_offset_reset="earliest", group_id=None)
        await consumer.start()
        try:
            values: list[bytes] = []
            while len(values) < 6:
                batch = await asyncio.wait_for(consumer.getmany(timeout_ms=1000), 10)
                for records in batch.values():
                    values.extend(r.value for r in records)
            assert values == [b"c0", b"c1", b"c2", b"c3", b"c4", b"last"]
        finally:
            await consumer.stop()
        reader = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=group,
                                  enable_auto_commit=False)
        await reader.start()
        try:
            from aiokafka.structs import TopicPartition
            assert await reader.committed(TopicPartition(topic, 0)) == 3
        finally:
            await reader.stop()

    asyncio.run(run())
