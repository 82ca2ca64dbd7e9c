"""SnapshotPoller with one broker SIGSTOPped (`ctl pause`) on a real 3-broker cluster: every
tick stays short, the snapshot says which broker is paused / unresponsive, the partitions it
led show their new leader (with offsets) once the controller moves them, and after SIGCONT
the broker's fields come back. Before, each tick waited ~10 s (5 s timeout, retried) on the
paused broker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from core.admin.poller import SnapshotPoller
from core.admin.producer import Producer, ProducerRecord
from core.admin.snapshot import ClusterSnapshot
from core.cluster.local import LocalCluster
from core.cluster.state import read_cluster_json
from tests.fixtures import QUIET_CLUSTER_CONFIG, running_local_cluster

pytestmark = pytest.mark.timeout(300)

TOPIC = "paused-demo"
PARTITIONS = 6
TICK_BOUND_S = 2.5  # the goal is ~1.5 s at a 1 s interval; slack for 2 shared cores
#: attach mode, the tick that finds the broker out: 0.5 s before a probe, 1 s probe timeout,
#: a retry elsewhere (measured 1.6-2.1 s; it was 10 s)
DETECTION_BOUND_S = 3.5


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    yield from running_local_cluster(tmp_path_factory, "poller-paused", {
        **QUIET_CLUSTER_CONFIG, "broker.session.timeout.ms": "6000"})


def _supervised_poller(cluster: LocalCluster, **kw: Any) -> SnapshotPoller:
    """A poller fed from cluster.json as the console's bridge feeds it."""
    def brokers() -> list[dict[str, Any]]:
        return list((read_cluster_json(cluster.data_dir) or {}).get("brokers", []))

    return SnapshotPoller(
        cluster.bootstrap, interval_s=1.0,
        metrics_urls=lambda: {int(b["id"]): f"http://127.0.0.1:{b['metrics_port']}/metrics"
                              for b in brokers() if b.get("metrics_port")},
        process_info=lambda: {int(b["id"]): (b.get("pid"), str(b.get("state") or ""))
                              for b in brokers()}, **kw)


async def _setup(poller: SnapshotPoller) -> None:
    admin = poller.admin
    md = await admin.metadata()
    if TOPIC not in md.topics:
        await admin.create_topic(TOPIC, partitions=PARTITIONS, replication_factor=3)
        await asyncio.sleep(0.5)
        producer = Producer(admin)
        for p in range(PARTITIONS):
            await producer.send_many(TOPIC, [ProducerRecord(b"v", partition=p)] * 5)


async def _group_coordinated_by(poller: SnapshotPoller, broker_id: int) -> str | None:
    """A group (with committed offsets on TOPIC) whose coordinator is `broker_id`."""
    for i in range(60):
        gid = f"paused-group-{i}"
        if await poller.admin.find_coordinator(gid) == broker_id:
            await poller.admin.alter_consumer_group_offsets(gid, {(TOPIC, 0): 1})
            return gid
    return None  # broker_id leads no __consumer_offsets partition


async def _full_isr(poller: SnapshotPoller, timeout: float = 60) -> ClusterSnapshot:
    deadline = time.monotonic() + timeout
    while True:
        snap = await poller.poll_once()
        t = snap.topic(TOPIC)
        if t is not None and all(len(p.isr) == 3 and p.leader >= 0 for p in t.partitions) \
                and all(p.high_watermark is not None for p in t.partitions):
            return snap
        assert time.monotonic() < deadline, f"ISR never complete: {snap.errors}"
        await asyncio.sleep(0.5)


def _target(snap: ClusterSnapshot, *, controller: bool = False) -> tuple[int, set[int]]:
    """A broker (not the controller, or the controller) that leads partitions of TOPIC, and
    those partitions."""
    t = snap.topic(TOPIC)
    assert t is not None
    led: dict[int, set[int]] = {}
    for p in t.partitions:
        led.setdefault(p.leader, set()).add(p.partition)
    if controller:
        assert snap.controller_id in led, (snap.controller_id, led)
        return snap.controller_id, led[snap.controller_id]
    candidates = [b for b in sorted(led) if b != snap.controller_id] or sorted(led)
    return candidates[0], led[candidates[0]]


async def _timed_poll(poller: SnapshotPoller) -> tuple[ClusterSnapshot, float]:
    started = time.monotonic()
    snap = await poller.poll_once()
    return snap, time.monotonic() - started


async def _while_paused(poller: SnapshotPoller, target: int, led: set[int], *,
                        first_bound: float, check: Any) -> list[float]:
    """Poll until the partitions `target` led have a new leader with known offsets (and two
    more ticks); every tick after the first within TICK_BOUND_S, checked by `check`."""
    durations: list[float] = []
    moved_at: int | None = None
    deadline = time.monotonic() + 45
    while True:
        snap, took = await _timed_poll(poller)
        durations.append(took)
        bound = first_bound if len(durations) == 1 else TICK_BOUND_S
        assert took <= bound, f"tick {len(durations)} took {took:.2f}s: {snap.errors}"
        assert snap.poll_duration_s <= took + 0.01
        check(snap)
        t = snap.topic(TOPIC)
        assert t is not None
        parts = [t.partitions[p] for p in sorted(led)]
        if moved_at is None and all(p.leader not in (target, -1) for p in parts):
            moved_at = len(durations)
        if moved_at is not None and len(durations) >= moved_at + 1:
            # the new leaders answered within a tick of the move
            assert all(p.high_watermark == 5 and p.log_start_offset == 0 for p in parts), parts
            return durations
        if moved_at is None:
            assert all(p.high_watermark is None for p in parts if p.leader == target), parts
        assert time.monotonic() < deadline, f"leadership never moved off {target}: {parts}"
        await asyncio.sleep(max(0.0, 1.0 - took))


def test_supervised_poller_does_not_wait_on_a_paused_broker(cluster: LocalCluster):
    async def main() -> list[float]:
        poller = _supervised_poller(cluster)
        try:
            await _setup(poller)
            snap = await _full_isr(poller)
            target, led = _target(snap)
            group = await _group_coordinated_by(poller, target)
            print(f"pausing broker {target}, coordinator of group {group}")
            if group is not None:
                snap = await poller.poll_once()
                g = snap.group(group)
                assert g is not None and g.coordinator_id == target and g.state == "Empty", g
            await cluster.control.pause(target)
            try:
                def check(s: ClusterSnapshot) -> None:
                    assert f"broker {target} is paused: not asked" in s.errors, s.errors
                    b = s.broker(target)
                    assert b is not None and b.state == "paused"
                    assert b.bytes_in_per_sec is None  # its /metrics is not scraped
                    if group is not None:  # still shown while its coordinator is not asked
                        g = s.group(group)
                        assert g is not None, [x.group_id for x in s.groups]
                        assert g.coordinator_id != target or g.state == "Unknown", g

                durations = await _while_paused(poller, target, led, first_bound=TICK_BOUND_S,
                                                check=check)
            finally:
                await cluster.control.resume(target)
            # its fields come back: online, metrics rates, no 'not asked' line
            await _until_back(poller, target, lambda snap, b: (
                b.state == "online" and b.bytes_in_per_sec is not None
                and not any("not asked" in e for e in snap.errors)))
            await _full_isr(poller)
            return durations
        finally:
            await poller.close()

    durations = asyncio.run(main())
    print(f"supervised: {len(durations)} ticks while paused, max {max(durations):.2f}s")


async def _until_back(poller: SnapshotPoller, target: int,
                      is_back: Callable[[ClusterSnapshot, Any], bool], *,
                      tick_bound: float | None = None, timeout: float = 30.0) -> None:
    """Poll once a second until broker `target` is back by `is_back(snapshot, broker)`;
    each tick within `tick_bound` seconds when given."""
    deadline = time.monotonic() + timeout
    while True:
        snap, took = await _timed_poll(poller)
        if tick_bound is not None:
            assert took <= tick_bound, took
        b = snap.broker(target)
        if b is not None and is_back(snap, b):
            return
        assert time.monotonic() < deadline, (b, snap.errors)
        await asyncio.sleep(1.0)


@pytest.mark.parametrize("controller", [False, True], ids=["follower", "controller"])
def test_attached_poller_backs_off_an_unresponsive_broker(cluster: LocalCluster,
                                                          controller: bool):
    """No process info (attach mode), default request timeout (5 s): a request with no
    answer gets the broker probed on a fresh connection, so even the tick that finds it out
    is short; then it is not asked while it stays unresponsive, and a probe finds it back.
    Pausing the active controller also stalls DescribeQuorum on every live broker (they
    forward it): that must not hold up the tick or the requests behind it."""

    async def main() -> list[float]:
        poller = SnapshotPoller(cluster.bootstrap, interval_s=1.0)
        try:
            await _setup(poller)
            snap = await _full_isr(poller)
            target, led = _target(snap, controller=controller)
            await cluster.control.pause(target)
            try:
                def check(s: ClusterSnapshot) -> None:
                    b = s.broker(target)
                    assert b is not None and b.state in ("unresponsive", "offline"), b
                    assert any(e.startswith(f"broker {target} (") and "unresponsive" in e
                               for e in s.errors), s.errors

                durations = await _while_paused(poller, target, led,
                                                first_bound=DETECTION_BOUND_S, check=check)
            finally:
                await cluster.control.resume(target)
            await _until_back(poller, target, lambda snap, b: (
                b.state == "online" and not any("unresponsive" in e for e in snap.errors)),
                tick_bound=TICK_BOUND_S)
            await _full_isr(poller)
            return durations
        finally:
            await poller.close()

    durations = asyncio.run(main())
    print(f"attached: {len(durations)} ticks while paused, first {durations[0]:.2f}s, "
          f"then max {max(durations[1:]):.2f}s")


def test_poll_once_after_a_resumed_broker_rejoins_is_fast(cluster: LocalCluster):
    """Sanity: with every broker running again, ticks are quick and error-free."""
    async def main() -> list[float]:
        poller = _supervised_poller(cluster)
        try:
            await _full_isr(poller)
            out = []
            for _ in range(3):
                snap, took = await _timed_poll(poller)
                assert not snap.errors, snap.errors
                assert all(b.state == "online" for b in snap.brokers), snap.brokers
                out.append(took)
            return out
        finally:
            await poller.close()

    assert max(asyncio.run(main())) < 1.0
