"""Reads for export / count never end short without saying so (core.admin.export.fetch_range).

A range read ends at the end offset it started with (the high watermark when a selection
starts). If the partition then answers with nothing below that end (as a new leader whose high
watermark trails can for a moment after a leadership change), the read waits and retries, and
after the stall timeout fails with IncompleteReadError naming the partition and the offsets;
before this, export and count_records stopped there silently and wrote a short file. Here the
end is set past the high watermark of a real broker so that the stall is certain.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from core.admin.browser import Browser
from core.admin.client import AdminClient
from core.admin.export import IncompleteReadError, count_records, fetch_range

confluent_kafka = pytest.importorskip("confluent_kafka")
from confluent_kafka.admin import AdminClient as KafkaAdmin  # noqa: E402
from confluent_kafka.admin import NewTopic  # noqa: E402

pytestmark = pytest.mark.timeout(120)

RECORDS = 40


def _produce(bootstrap: str, topic: str) -> None:
    admin = KafkaAdmin({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(RECORDS):
        producer.produce(topic, value=f"v-{i}".encode())
    assert producer.flush(30) == 0


async def _read(bootstrap: str, topic: str, end: int, stall_timeout: float
                ) -> tuple[list[int], int, BaseException | None, float]:
    offsets: list[int] = []
    advanced = 0
    async with AdminClient(bootstrap) as admin:
        began = time.monotonic()
        try:
            async for records, step in fetch_range(Browser(admin), topic, 0, 0, end,
                                                   stall_timeout=stall_timeout):
                offsets += [r.offset for r in records]
                advanced += step
        except IncompleteReadError as exc:
            return offsets, advanced, exc, time.monotonic() - began
        return offsets, advanced, None, time.monotonic() - began


def test_a_range_up_to_the_high_watermark_is_read_whole(kafka_broker, topic_name) -> None:
    _produce(kafka_broker.bootstrap, topic_name)
    offsets, advanced, error, _ = asyncio.run(
        _read(kafka_broker.bootstrap, topic_name, RECORDS, 5.0))
    assert error is None
    assert offsets == list(range(RECORDS)) and advanced == RECORDS

    async def count() -> dict[int, int]:
        async with AdminClient(kafka_broker.bootstrap) as admin:
            return await count_records(admin, topic_name)
    assert asyncio.run(count()) == {0: RECORDS}


def test_a_range_past_what_the_leader_serves_fails_loudly(kafka_broker, topic_name) -> None:
    _produce(kafka_broker.bootstrap, topic_name)
    offsets, advanced, error, took = asyncio.run(
        _read(kafka_broker.bootstrap, topic_name, RECORDS + 5, 1.0))
    assert offsets == list(range(RECORDS)), "the records before the stall are delivered"
    assert advanced == RECORDS
    assert isinstance(error, IncompleteReadError), "a short read must not end silently"
    assert f"{topic_name}-0" in str(error) and f"offset {RECORDS}" in str(error)
    assert f"end offset was {RECORDS + 5}" in str(error)
    assert 1.0 <= took < 10.0, f"failed after {took:.1f} s (stall timeout 1 s)"
