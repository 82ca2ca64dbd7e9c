"""The console's actions with a paused broker (a real 3-broker cluster, the bridge's
KafkaBackend driven without Qt): each completes, or fails with the paused broker named, within
BOUND_S (creating / deleting a topic with the controller paused: ELECTION_BOUND_S, produce
with acks=all: ACKS_ALL_BOUND_S, both broker-side waits), instead of waiting out the action
client's 10 s request timeout x retries (40-45 s+ each before).

KAFLAB_MEASURE_BEFORE=1 runs the same steps with the action client NOT sharing the poller's
brokers-not-to-wait-on (the behaviour before), printing the times (the bounds then fail).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.cluster.local import free_base_port
from tests.fixtures import TEST_DEFAULTS

pytestmark = pytest.mark.timeout(300)

BOUND_S = 3.0
#: acks=all waits for the ISR to drop the paused broker (~9 s here): the request is only not
#: to be sent to the paused broker and not retried for 10 s x retries on top
ACKS_ALL_BOUND_S = 15.0
#: the active controller paused: a live broker forwards CreateTopics / DeleteTopics and
#: answers once the quorum elected another controller (~2-3.5 s here, broker-side)
ELECTION_BOUND_S = 6.0
BEFORE = bool(os.environ.get("KAFLAB_MEASURE_BEFORE"))


class Console:
    """A KafkaBackend on its own event loop, as the bridge's worker thread runs it."""

    def __init__(self, root: Path) -> None:
        from gui.bridge.kafka import KafkaBackend

        self.loop = asyncio.new_event_loop()
        self.backend = KafkaBackend(data_dir=root / "cluster", brokers=3,
                                    port=free_base_port(3), config=dict(TEST_DEFAULTS))
        if BEFORE:
            self.backend._share_unresponsive = lambda: None  # type: ignore[method-assign]

    def run(self, coro: Any, timeout: float = 60.0) -> Any:
        return self.loop.run_until_complete(asyncio.wait_for(coro, timeout))

    def timed(self, coro: Any) -> tuple[float, str]:
        """(seconds, 'ok' or the error shown to the operator)."""
        started = time.monotonic()
        try:
            result = self.run(coro, timeout=45.0)
            outcome = "ok"
            if getattr(result, "failed", 0):  # a ProduceReport
                outcome = f"{result.failed} of {result.requested} failed: {result.errors[0]}"
        except Exception as exc:  # what the console would show
            outcome = f"{type(exc).__name__}: {exc}"
        return time.monotonic() - started, outcome

    def connected_only_to(self, broker_id: int, *, connect: bool = False) -> None:
        """The action client's only open connection is to `broker_id` (as when it last talked
        to it), so that a request any broker can answer would be sent there by the old code.
        `connect`: open it (before the pause: a paused broker never completes a handshake)."""
        admin = self.backend.admin
        assert admin is not None
        md = admin._metadata or self.run(admin.metadata())
        if connect:
            self.run(admin.connection(broker_id))
        for b in md.brokers:
            if b.id != broker_id:
                admin.pool.discard(b.host, b.port)


@pytest.fixture(scope="module")
def console(tmp_path_factory) -> Iterator[Console]:
    c = Console(tmp_path_factory.mktemp("bridge-paused"))
    try:
        c.run(c.backend.open(lambda _text, _frac: None), timeout=120.0)
        c.run(c.backend.snapshot())
        yield c
    finally:
        local = c.backend.local
        try:
            c.run(c.backend.close(stop_cluster=False), timeout=30.0)
        finally:
            if local is not None:
                local.stop()
            c.loop.close()


def _wait_healthy(c: Console, timeout: float = 60.0) -> Any:
    """Every broker running and registered, every partition's ISR full."""
    deadline = time.monotonic() + timeout
    while True:
        snap = c.run(c.backend.snapshot())
        states = {b.id: b.state for b in snap.brokers}
        md = c.run(c.backend.admin.metadata())
        short = [p for t in md.topics.values() for p in t.partitions
                 if len(p.isr) < len(p.replicas)]
        if (len(states) == 3 and all(s in ("online", "running") for s in states.values())
                and len(md.brokers) == 3 and not short and snap.controller_id is not None):
            return snap
        assert time.monotonic() < deadline, f"cluster not healthy: {states}, {short[:3]}"
        time.sleep(0.3)


@pytest.mark.parametrize("role", ["follower", "controller"])
def test_actions_with_a_paused_broker(console, role):
    from gui.bridge.backend import BrowseSpec, ProduceSpec

    c = console
    b = c.backend
    snap = _wait_healthy(c)
    controller = snap.controller_id
    victim = controller if role == "controller" else \
        next(x.id for x in snap.brokers if x.id != controller)
    base = f"base-{role}"
    deadline = time.monotonic() + 60
    while True:  # the broker resumed by the previous test registers again (unfenced)
        try:
            c.run(b.create_topic(base, 3, 3, {}))
            break
        except Exception as exc:
            assert time.monotonic() < deadline, exc
            time.sleep(0.5)
    _wait_healthy(c)
    c.run(b.produce(ProduceSpec(topic=base, value="v{i}", count=30), lambda *_: None))

    times: dict[str, tuple[float, str]] = {}
    c.connected_only_to(victim, connect=True)
    c.run(b.broker_action("pause", victim))
    try:
        c.run(b.snapshot())  # the console polls every second: the poller learns the pause
        actions = {
            "create topic": lambda: b.create_topic(f"new-{role}", 3, 2, {}),
            "describe configs": lambda: b.describe_topic_configs(base),
            "produce 10 acks=1": lambda: b.produce(
                ProduceSpec(topic=base, value="p{i}", count=10, acks=1), lambda *_: None),
            "browse": lambda: b.browse(BrowseSpec(topic=base, start="earliest")),
            "delete topic": lambda: b.delete_topic(f"new-{role}"),
            # acks=all: the leader waits until the paused follower leaves the ISR (the
            # broker's replica.lag.time.max.ms / session fencing), whatever the client does
            "produce 10 acks=all": lambda: b.produce(
                ProduceSpec(topic=base, value="q{i}", count=10, acks=-1), lambda *_: None),
        }
        for what, action in actions.items():
            c.connected_only_to(victim)
            times[what] = c.timed(action())
    finally:
        c.run(b.broker_action("resume", victim))
    print(f"\npaused broker {victim} ({role}), {'before' if BEFORE else 'after'}:")
    for what, (s, outcome) in times.items():
        print(f"  {what:20s} {s:6.2f} s  {outcome[:160]}")
    for what, (s, outcome) in times.items():
        bound = ACKS_ALL_BOUND_S if what.endswith("acks=all") else \
            ELECTION_BOUND_S if role == "controller" and what.endswith("topic") else BOUND_S
        assert s < bound, f"{what} took {s:.1f} s ({outcome})"
        assert outcome == "ok" or f"broker {victim} is paused" in outcome, (what, outcome)
    for what in ("create topic", "describe configs", "delete topic"):  # any broker can answer
        assert times[what][1] == "ok", (what, times[what])
    _wait_healthy(c)
