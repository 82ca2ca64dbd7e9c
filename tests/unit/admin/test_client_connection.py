"""KafkaConnection against an in-process fake broker: negotiation, pipelining, timeouts."""

from __future__ import annotations

import asyncio

import pytest

from core.common.errors import RequestTimedOutError, UnsupportedVersionError
from core.network.client import BrokerConnectionError, ConnectionPool, KafkaConnection
from core.protocol.build import build
from core.protocol.codec import request_class
from tests.unit.admin.fake_broker import FakeBroker

pytestmark = pytest.mark.timeout(20)


def _metadata(version, request):
    return {"brokers": [{"node_id": 1, "host": "127.0.0.1", "port": 1}], "cluster_id": "c",
            "controller_id": 1, "topics": []}


def test_negotiates_v3_and_sends_highest_version():
    async def main():
        async with FakeBroker({3: _metadata}, apis={3: (0, 9)}) as fake:
            conn = await KafkaConnection.connect("127.0.0.1", fake.port, client_id="t")
            assert conn.api_versions[3] == (0, 9)
            assert fake.requests[0][:2] == (18, 3)
            resp = await conn.request(3, topics=None)
            assert resp.controller_id == 1 and resp.cluster_id == "c"
            assert fake.requests[-1][:2] == (3, 9)
            with pytest.raises(UnsupportedVersionError):
                conn.version_for(55)
            await conn.close()
            assert conn.closed
    asyncio.run(main())


def test_falls_back_when_api_versions_v3_is_refused():
    async def main():
        async with FakeBroker({3: _metadata}, max_api_versions=0) as fake:
            conn = await KafkaConnection.connect("127.0.0.1", fake.port)
            assert conn.api_versions[18] == (0, 0)
            assert [r[:2] for r in fake.requests] == [(18, 0)]
            await conn.close()
    asyncio.run(main())


def test_pipelined_requests_match_in_order():
    async def main():
        seen = []

        def handler(version, request):
            seen.append(request.topics)
            return {"brokers": [], "cluster_id": str(len(seen)), "controller_id": len(seen),
                    "topics": []}

        async with FakeBroker({3: handler}) as fake:
            conn = await KafkaConnection.connect("127.0.0.1", fake.port)
            results = await asyncio.gather(*(conn.request(3, topics=None) for _ in range(50)))
            assert [r.controller_id for r in results] == list(range(1, 51))
            # an entity of an explicit version is sent as that version
            entity = build(request_class(3, 4), topics=None, allow_auto_topic_creation=False)
            resp = await conn.send(entity)
            assert type(resp).__version__ == 4
            await conn.close()
    asyncio.run(main())


def test_timeout_keeps_the_connection_usable():
    async def main():
        calls = {"n": 0}

        async def slow(version, request):
            calls["n"] += 1
            if calls["n"] == 1:
                await asyncio.sleep(0.5)
            return {"brokers": [], "cluster_id": "x", "controller_id": calls["n"], "topics": []}

        async with FakeBroker({3: slow}) as fake:
            conn = await KafkaConnection.connect("127.0.0.1", fake.port, timeout=5)
            with pytest.raises(RequestTimedOutError, match=f"127.0.0.1:{fake.port}"):
                await conn.request(3, topics=None, timeout=0.1)
            resp = await conn.request(3, topics=None)
            assert resp.controller_id == 2
            await conn.close()
    asyncio.run(main())


def test_connection_errors_name_the_broker():
    async def main():
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        with pytest.raises(BrokerConnectionError, match=f"127.0.0.1:{port}"):
            await KafkaConnection.connect("127.0.0.1", port, timeout=2)
    asyncio.run(main())


def test_lost_connection_fails_pending_requests():
    async def main():
        async def never(version, request):
            await asyncio.sleep(10)

        fake = FakeBroker({3: never})
        async with fake:
            conn = await KafkaConnection.connect("127.0.0.1", fake.port)
            task = asyncio.ensure_future(conn.request(3, topics=None))
            await asyncio.sleep(0.05)
            conn.close_nowait()
            with pytest.raises(BrokerConnectionError):
                await task
            with pytest.raises(BrokerConnectionError):
                await conn.request(3, topics=None)
    asyncio.run(main())


def test_pool_reuses_and_reconnects():
    async def main():
        async with FakeBroker({3: _metadata}) as fake:
            pool = ConnectionPool(client_id="p", timeout=2)
            a = await pool.get("127.0.0.1", fake.port)
            b = await pool.get("127.0.0.1", fake.port)
            assert a is b
            a.close_nowait()
            c = await pool.get("127.0.0.1", fake.port)
            assert c is not a and not c.closed
            await pool.close()
    asyncio.run(main())
