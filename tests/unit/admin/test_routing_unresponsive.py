"""Action clients sharing the poller's brokers-not-to-wait-on (`unresponsive=`): requests any
broker can answer skip a known-down broker, one already waiting on a broker reported down
meanwhile ends at once, and `refusal_of` names why a broker is not asked."""

from __future__ import annotations

import asyncio
import time

import pytest

from core.admin.client import AdminClient
from core.common.errors import KafkaError
from tests.unit.admin.fake_broker import FakeBroker

pytestmark = pytest.mark.timeout(30)


def _metadata(fakes: list[FakeBroker]):
    def handler(version, request):
        return {"brokers": [{"node_id": i + 1, "host": "127.0.0.1", "port": f.port}
                            for i, f in enumerate(fakes)],
                "cluster_id": "c", "controller_id": 1, "topics": []}
    return handler


def test_a_request_waiting_on_a_broker_reported_down_meanwhile_ends_at_once():
    """The action client (10 s timeout, no back-off of its own) shares the poller's
    bookkeeping; its ListGroups hangs on broker 1 (Metadata still answers, so the probe does
    not end it); the poller then reports broker 1 paused: the wait ends now, with the reason."""
    async def main() -> float:
        release = asyncio.Event()
        fake = FakeBroker()
        fake.handlers[3] = _metadata([fake])

        async def stalled(version, request):
            await release.wait()
            return {"groups": []}
        fake.handlers[16] = stalled
        async with fake:
            poller = AdminClient(f"127.0.0.1:{fake.port}", request_timeout=5.0, retries=1,
                                 unresponsive_backoff=3.0, probe_timeout=0.3)
            action = AdminClient(f"127.0.0.1:{fake.port}", request_timeout=10.0, retries=3,
                                 unresponsive=poller.unresponsive)
            try:
                await action.metadata()
                await poller.metadata()
                started = time.monotonic()
                waiting = asyncio.ensure_future(action.list_groups(raise_errors=True))
                await asyncio.sleep(0.8)  # suspected, probed, the probe answered: still waits
                assert not waiting.done()
                poller.set_known_down({("127.0.0.1", fake.port): "broker 1 is paused: not asked"})
                with pytest.raises(KafkaError, match="broker 1 is paused"):
                    await waiting
                assert action.refusal_of(1) == "broker 1 is paused: not asked"
                return time.monotonic() - started
            finally:
                release.set()
                await action.close()
                await poller.close()

    assert asyncio.run(main()) < 2.0  # before: the 10 s request timeout (x retries)


def test_any_broker_requests_skip_a_known_down_broker():
    async def main() -> None:
        a, b = FakeBroker(), FakeBroker()
        fakes = [a, b]
        for f in fakes:
            f.handlers[3] = _metadata(fakes)
        async with a, b:
            action = AdminClient(f"127.0.0.1:{a.port},127.0.0.1:{b.port}",
                                 request_timeout=10.0, retries=3)
            try:
                await action.metadata()
                action.set_known_down({("127.0.0.1", a.port): "broker 1 is paused: not asked"})
                assert action.refusal_of(1) == "broker 1 is paused: not asked"
                assert action.refusal_of(2) is None
                before = len(a.requests)
                for _ in range(10):
                    await action.metadata()
                assert len(a.requests) == before
            finally:
                await action.close()

    asyncio.run(main())
