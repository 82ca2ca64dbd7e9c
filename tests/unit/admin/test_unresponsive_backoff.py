"""Brokers not to wait on: UnresponsiveBrokers' bookkeeping (fake clock), the AdminClient's
back-off and probe against a fake broker that stops answering (as a SIGSTOPped process: TCP
accepted, nothing answered), and the poller noticing a broker paused in the middle of a tick."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from core.admin.client import AdminClient, BrokerUnresponsiveError, UnresponsiveBrokers
from core.admin.poller import SnapshotPoller
from core.common.errors import KafkaError
from tests.unit.admin.fake_broker import FakeBroker

pytestmark = pytest.mark.timeout(30)

A = ("127.0.0.1", 9092)
B = ("127.0.0.1", 9093)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_timed_out_address_is_refused_probed_at_once_then_once_per_period():
    clock = Clock()
    tracker = UnresponsiveBrokers(3.0, clock=clock)
    assert tracker.refusal(A) is None and not tracker.probe_due(A)
    tracker.timed_out(A, "broker 1 is unresponsive")
    assert tracker.refusal(A) == "broker 1 is unresponsive"
    assert tracker.refusal(B) is None
    assert tracker.unresponsive() == {A: "broker 1 is unresponsive"}
    assert tracker.probe_due(A)  # the first probe at once: one slow request is not enough
    assert not tracker.probe_due(A)  # one probe at a time
    tracker.timed_out(A, "another request timed out")  # while probing: no change
    assert tracker.refusal(A) == "broker 1 is unresponsive" and not tracker.probe_due(A)
    tracker.probe_failed(A)  # no answer to the probe either: the next one a period later
    assert tracker.refusal(A) == "broker 1 is unresponsive"
    clock.now += 2.9
    assert not tracker.probe_due(A)
    clock.now += 0.1
    assert tracker.probe_due(A)
    tracker.probe_failed(A)
    clock.now += 3.0
    assert tracker.probe_due(A)
    tracker.answered(A)  # the probe answered
    assert tracker.refusal(A) is None and tracker.unresponsive() == {}


def test_known_down_is_never_probed_and_forgets_its_backoff_when_up():
    clock = Clock()
    tracker = UnresponsiveBrokers(3.0, clock=clock)
    tracker.timed_out(A, "late")
    tracker.probe_failed(A)
    assert tracker.set_down({A: "broker 1 is paused: not asked"}) == {A}
    assert tracker.set_down({A: "broker 1 is paused: not asked"}) == set()
    assert tracker.refusal(A) == "broker 1 is paused: not asked"
    clock.now += 10
    assert not tracker.probe_due(A)
    assert tracker.unresponsive() == {}  # reported as down, not as unresponsive
    tracker.set_down({})  # resumed
    assert tracker.refusal(A) is None


def test_backoff_off_by_default():
    tracker = UnresponsiveBrokers(None)
    tracker.timed_out(A, "late")
    assert tracker.refusal(A) is None


def _metadata_handler(fake: FakeBroker, topics: list | None = None):
    def handler(version, request):
        n = sum(1 for r in fake.requests if r[0] == 3)
        return {"brokers": [{"node_id": 1, "host": "127.0.0.1", "port": fake.port}],
                "cluster_id": "c", "controller_id": n, "topics": topics or []}
    return handler


def _pausable(handler, running: asyncio.Event):
    async def wrapped(version, request):
        await running.wait()
        return handler(version, request)
    return wrapped


def test_admin_waits_one_timeout_then_refuses_at_once_until_a_probe_answers():
    async def main():
        running = asyncio.Event()
        running.set()
        fake = FakeBroker()
        fake.handlers[3] = _pausable(_metadata_handler(fake), running)
        fake.handlers[16] = _pausable(lambda v, r: {"groups": [
            {"group_id": "g", "protocol_type": "consumer", "group_state": "Stable"}]}, running)
        async with fake:
            admin = AdminClient(f"127.0.0.1:{fake.port}", request_timeout=0.5, retries=1,
                                unresponsive_backoff=0.4, probe_timeout=0.3)
            try:
                await admin.metadata()
                assert [g.group_id for g in await admin.list_groups(raise_errors=True)] == ["g"]
                running.clear()  # SIGSTOP
                started = time.monotonic()
                with pytest.raises(KafkaError):
                    await admin.list_groups(raise_errors=True)
                first = time.monotonic() - started
                assert 0.45 <= first < 0.9  # one timeout, not one per retry
                started = time.monotonic()
                with pytest.raises(BrokerUnresponsiveError, match=r"broker 1 .* unresponsive"):
                    await admin.list_groups(raise_errors=True)
                assert time.monotonic() - started < 0.1  # not asked: answered at once
                assert admin.unresponsive.unresponsive()
                running.set()  # SIGCONT: the late responses are dropped, a probe finds it
                deadline = time.monotonic() + 3
                while True:
                    try:
                        groups = await admin.list_groups(raise_errors=True)
                        break
                    except BrokerUnresponsiveError:
                        assert time.monotonic() < deadline
                        await asyncio.sleep(0.05)
                assert [g.group_id for g in groups] == ["g"]
                # the timed-out request's late response was not taken for a newer request's
                md = await admin.metadata()
                assert md.controller_id == sum(1 for r in fake.requests if r[0] == 3)
                assert len(admin.pool._conns) == 1  # the same connection, not a reconnect
            finally:
                await admin.close()

    asyncio.run(main())


def test_a_stalled_broker_is_found_out_long_before_the_request_timeout():
    """request_timeout 5 s: a request with no answer after SUSPECT_AFTER_S gets the broker
    probed on a fresh connection; no answer there either ends the wait at once."""
    async def main():
        running = asyncio.Event()
        running.set()
        fake = FakeBroker()
        fake.handlers[3] = _pausable(_metadata_handler(fake), running)
        fake.handlers[16] = _pausable(lambda v, r: {"groups": []}, running)
        async with fake:
            admin = AdminClient(f"127.0.0.1:{fake.port}", request_timeout=5.0, retries=1,
                                unresponsive_backoff=3.0, probe_timeout=0.3)
            try:
                await admin.metadata()
                running.clear()
                started = time.monotonic()
                with pytest.raises(KafkaError, match="unresponsive"):
                    await admin.list_groups(raise_errors=True)
                return time.monotonic() - started
            finally:
                running.set()
                await admin.close()

    took = asyncio.run(main())
    assert took < 1.5


def test_one_slow_request_does_not_make_a_live_broker_unresponsive():
    """A slow request (a broker forwarding to a stalled controller) is waited for: the probe
    on a fresh connection answers, so the broker is not backed off."""
    async def main():
        fake = FakeBroker()
        fake.handlers[3] = _metadata_handler(fake)

        async def slow(version, request):
            await asyncio.sleep(1.2)
            return {"groups": [{"group_id": "g", "protocol_type": "consumer",
                                "group_state": "Stable"}]}
        fake.handlers[16] = slow
        async with fake:
            admin = AdminClient(f"127.0.0.1:{fake.port}", request_timeout=5.0, retries=1,
                                unresponsive_backoff=3.0, probe_timeout=0.3)
            try:
                groups = await admin.list_groups(raise_errors=True)
                assert admin.unresponsive.unresponsive() == {}
                await admin.metadata()  # still asked
                return groups
            finally:
                await admin.close()

    assert [g.group_id for g in asyncio.run(main())] == ["g"]


def test_poller_stops_waiting_on_a_broker_paused_during_a_tick():
    """ListOffsets hangs (the broker was SIGSTOPped just after the tick sent it); the
    supervisor's state turns "paused" mid-tick: the tick ends well before the 5 s timeout."""
    async def main():
        release = asyncio.Event()
        fake = FakeBroker()
        fake.handlers[3] = _metadata_handler(fake, [{
            "name": "t", "error_code": 0, "topic_id": None, "is_internal": False,
            "partitions": [{"error_code": 0, "partition_index": 0, "leader_id": 1,
                            "replica_nodes": [1], "isr_nodes": [1]}]}])
        fake.handlers[16] = lambda v, r: {"groups": []}

        async def hang(version, request):
            await release.wait()
            return None
        fake.handlers[2] = hang
        states = iter(["running"])

        def process_info():
            return {1: (os.getpid(), next(states, "paused"))}

        async with fake:
            poller = SnapshotPoller(f"127.0.0.1:{fake.port}", process_info=process_info,
                                    request_timeout=5.0)
            try:
                snap = await poller.poll_once()
            finally:
                await poller.close()
                release.set()
        return snap

    snap = asyncio.run(main())
    assert snap.poll_duration_s < 1.5, snap.errors
    assert "broker 1 is paused: not asked" in snap.errors
    assert snap.broker(1).state == "paused"
    assert snap.topic("t").partitions[0].high_watermark is None


def test_a_hung_metrics_endpoint_is_backed_off_after_one_timeout():
    """A /metrics endpoint that accepts and never answers costs one scrape timeout, then is
    not scraped (one line says so) while probes get no answer."""
    async def main():
        accepted = []

        async def hang(reader, writer):
            accepted.append(writer)  # never answers

        server = await asyncio.start_server(hang, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/metrics"
        fake = FakeBroker()
        fake.handlers[3] = _metadata_handler(fake)
        fake.handlers[16] = lambda v, r: {"groups": []}
        async with fake:
            poller = SnapshotPoller(f"127.0.0.1:{fake.port}", metrics_urls=lambda: {1: url},
                                    probe_timeout=0.2)
            try:
                first = await poller.poll_once()
                second = await poller.poll_once()
            finally:
                await poller.close()
                for writer in accepted:
                    writer.close()
                server.close()
        return first, second

    first, second = asyncio.run(main())
    assert 1.9 <= first.poll_duration_s < 3.0  # the 2 s scrape timeout, once
    assert second.poll_duration_s < 0.5
    assert any("/metrics is unresponsive" in e for e in second.errors), second.errors
    assert second.broker(1).state == "online"  # its Kafka listener answers
