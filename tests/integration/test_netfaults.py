"""The fault proxy in front of a real broker: metadata rewritten to the proxy, added latency
measured on real requests, connections dropped and blackholed, and healed again."""

from __future__ import annotations

import asyncio
import time

import pytest

from core.admin.client import AdminClient
from core.admin.producer import Producer
from core.common.errors import KafkaError
from core.netfaults import ProxySet

pytestmark = pytest.mark.timeout(60)


async def _timed_metadata(admin: AdminClient, n: int = 5) -> float:
    """Median seconds of n Metadata round trips on the same connection."""
    times = []
    for _ in range(n):
        started = time.monotonic()
        await admin.metadata([])
        times.append(time.monotonic() - started)
    return sorted(times)[n // 2]


def test_latency_drop_blackhole(kafka_broker, topic_name):
    async def scenario() -> None:
        proxies = await ProxySet.start({1: ("127.0.0.1", kafka_broker.port)})
        proxy = proxies[1]
        admin = AdminClient(proxies.bootstrap, request_timeout=1.5, retries=0)
        try:
            md = await admin.metadata()
            # the broker's advertised address is rewritten to the proxy's
            assert [(b.host, b.port) for b in md.brokers] == [proxy.address]

            base = await _timed_metadata(admin)
            proxy.set_latency(200)
            slow = await _timed_metadata(admin)
            assert slow - base >= 0.18, (base, slow)
            assert slow < 1.0
            # produce through the proxy works, just slower
            async with Producer(admin, acks=-1) as producer:
                started = time.monotonic()
                report = await producer.send(topic_name, b"v", b"k")
                assert report.ok and time.monotonic() - started >= 0.2
            proxy.clear()
            assert await _timed_metadata(admin) < base + 0.1

            # drop: the open connection is reset, new ones are refused until cleared
            accepted = proxy.connections_accepted
            proxy.drop()
            with pytest.raises(KafkaError):
                await admin.metadata([])
            with pytest.raises(KafkaError):
                await admin.metadata([])
            assert proxy.connections_dropped >= 2
            assert proxy.connections_accepted > accepted
            proxy.clear()
            admin._drop_stale_connections()
            await admin.metadata([])

            # blackhole: requests stall and time out, new connections too; clear heals
            proxy.blackhole()
            started = time.monotonic()
            with pytest.raises(KafkaError):
                await admin.metadata([])
            assert time.monotonic() - started >= 1.0
            fresh = AdminClient(proxies.bootstrap, request_timeout=1.0, retries=0)
            try:
                with pytest.raises(KafkaError):
                    await fresh.metadata([])
            finally:
                await fresh.close()
            proxy.clear()
            healed = AdminClient(proxies.bootstrap, request_timeout=5.0, retries=0)
            try:
                await asyncio.wait_for(healed.metadata([]), 10)
            finally:
                await healed.close()
        finally:
            await admin.close()
            await proxies.close()

    asyncio.run(scenario())


def test_confluent_client_stays_on_the_proxy(kafka_broker, topic_name):
    """A librdkafka client bootstrapped on the proxy produces through it (rewritten metadata)."""
    confluent_kafka = pytest.importorskip("confluent_kafka")

    async def scenario() -> None:
        proxies = await ProxySet.start({1: ("127.0.0.1", kafka_broker.port)})
        try:
            proxy = proxies[1]
            producer = confluent_kafka.Producer({"bootstrap.servers": proxies.bootstrap,
                                                 "acks": "all", "linger.ms": 0})
            errors: list = []
            for i in range(20):
                producer.produce(topic_name, f"v{i}".encode(),
                                 on_delivery=lambda err, _m: err and errors.append(err))
            remaining = await asyncio.to_thread(producer.flush, 20)
            assert remaining == 0 and not errors
            # every connection librdkafka made went through the proxy
            assert proxy.connections_accepted >= 2
        finally:
            await proxies.close()

    asyncio.run(scenario())
