"""Moving replicas: partition reassignment, replication-factor changes, broker decommission
and rolling restarts, over the Kafka protocol (KIP-455), so they work on any Kafka cluster.

    async with AdminClient(bootstrap) as admin:
        await reassign(admin, {("orders", 0): [2, 3]}, on_progress=print)
        await change_replication_factor(admin, "orders", 3)
        await decommission(admin, broker_id=4)

A reassignment adds the target replicas, which catch up as followers and join the ISR; the
controller then drops the removed replicas (moving leadership into the target if needed).
Progress comes from ListPartitionReassignments, Metadata (ISR) and DescribeLogDirs (bytes each
replica holds, compared with the leader's).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.admin.client import TP, AdminClient, ClusterMetadata
from core.common.errors import KafkaError

__all__ = [
    "MoveStatus", "ReassignError", "ReplicaState", "cancel", "change_replication_factor",
    "decommission", "plan_decommission", "plan_replication_factor", "reassign",
    "rolling_restart", "status", "under_replicated", "wait_for",
]

#: called with the status of every partition being moved, after each poll
MoveCallback = Callable[[list["MoveStatus"]], None]
#: rolling restart progress: (brokers done, brokers in total, message)
StepCallback = Callable[[int, int, str], None]


class ReassignError(Exception):
    """A reassignment was refused or did not finish; the message says which and why."""


@dataclass(frozen=True, slots=True)
class ReplicaState:
    broker: int
    #: "leader", "adding", "removing" or "follower"
    role: str
    in_isr: bool
    size_bytes: int | None = None
    #: bytes behind the leader's copy (None when unknown)
    lag_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class MoveStatus:
    """One partition being moved to `target`."""

    topic: str
    partition: int
    target: tuple[int, ...]
    replicas: tuple[int, ...]
    adding: tuple[int, ...]
    removing: tuple[int, ...]
    isr: tuple[int, ...]
    leader: int
    done: bool
    replica_states: tuple[ReplicaState, ...] = ()

    @property
    def fraction(self) -> float:
        """0..1: done, or how much of the leader's bytes the adding replicas hold."""
        if self.done:
            return 1.0
        adding = [r for r in self.replica_states if r.role == "adding"]
        if not adding:
            return 0.95  # only removals / ISR left: nearly there
        parts = []
        leader = next((r for r in self.replica_states if r.role == "leader"), None)
        for r in adding:
            if r.in_isr:
                parts.append(1.0)
            elif leader is None or not leader.size_bytes or r.size_bytes is None:
                parts.append(0.0)
            else:
                parts.append(min(0.99, r.size_bytes / leader.size_bytes))
        return sum(parts) / len(parts)

    def describe(self) -> str:
        if self.done:
            return f"{self.topic}-{self.partition}: done, replicas {list(self.replicas)}"
        return (f"{self.topic}-{self.partition}: {self.fraction:.0%} replicas "
                f"{list(self.replicas)} adding {list(self.adding)} removing "
                f"{list(self.removing)} ISR {list(self.isr)}")


def overall_fraction(moves: Sequence[MoveStatus]) -> float:
    return sum(m.fraction for m in moves) / len(moves) if moves else 1.0


# plans -------------------------------------------------------------------------------------
def _load(md: ClusterMetadata) -> Counter[int]:
    load: Counter[int] = Counter({b.id: 0 for b in md.brokers})
    for t in md.topics.values():
        for p in t.partitions:
            load.update(p.replicas)
    return load


def plan_replication_factor(md: ClusterMetadata, topic: str, replication_factor: int,
                            brokers: Sequence[int] | None = None) -> dict[TP, list[int]]:
    """Targets that change `topic`'s replication factor: shrinking keeps the leader and the
    first replicas; growing adds the least-loaded brokers (of `brokers`, default all)."""
    if topic not in md.topics:
        raise ReassignError(f"Topic {topic!r} does not exist.")
    pool = list(brokers) if brokers is not None else [b.id for b in md.brokers]
    if replication_factor < 1:
        raise ReassignError("The replication factor must be at least 1.")
    if replication_factor > len(pool):
        raise ReassignError(f"Replication factor {replication_factor} needs "
                            f"{replication_factor} brokers; only {len(pool)} available.")
    load = _load(md)
    plan: dict[TP, list[int]] = {}
    for p in md.topics[topic].partitions:
        current = list(p.replicas)
        if p.leader in current:  # keep the leader first so it stays preferred
            current.remove(p.leader)
            current.insert(0, p.leader)
        target = current[:replication_factor]
        while len(target) < replication_factor:
            choice = min((b for b in pool if b not in target), key=lambda b: (load[b], b))
            load[choice] += 1
            target.append(choice)
        if target != list(p.replicas):
            plan[(topic, p.partition)] = target
    return plan


def plan_decommission(md: ClusterMetadata, broker_id: int,
                      exclude: Iterable[int] = ()) -> dict[TP, list[int]]:
    """Targets that move every replica off `broker_id` to the least-loaded other brokers
    (never to `exclude`), keeping each partition's replication factor."""
    if md.broker(broker_id) is None and not any(
            broker_id in p.replicas for t in md.topics.values() for p in t.partitions):
        raise ReassignError(f"Broker {broker_id} is not in the cluster.")
    banned = {broker_id, *exclude}
    pool = [b.id for b in md.brokers if b.id not in banned]
    load = _load(md)
    plan: dict[TP, list[int]] = {}
    stuck: list[str] = []
    for t in sorted(md.topics.values(), key=lambda t: t.name):
        for p in t.partitions:
            if broker_id not in p.replicas:
                continue
            kept = [b for b in p.replicas if b != broker_id]
            candidates = [b for b in pool if b not in kept]
            if not candidates:
                stuck.append(f"{t.name}-{p.partition} (replicas {list(p.replicas)})")
                continue
            choice = min(candidates, key=lambda b: (load[b], b))
            load[choice] += 1
            load[broker_id] -= 1
            plan[(t.name, p.partition)] = [*kept, choice]
    if stuck:
        raise ReassignError(
            f"Cannot move every replica off broker {broker_id} without lowering a replication "
            f"factor: no other broker is free for {', '.join(stuck[:10])}"
            f"{' ...' if len(stuck) > 10 else ''}. Add a broker or lower the replication "
            "factor of these topics first.")
    return plan


# actions -----------------------------------------------------------------------------------
async def submit(admin: AdminClient, targets: Mapping[TP, Sequence[int] | None]) -> None:
    """AlterPartitionReassignments; raises ReassignError listing every refused partition."""
    if not targets:
        return
    results = await admin.alter_partition_reassignments(targets)
    failed = {tp: err for tp, err in results.items() if err is not None}
    if failed:
        lines = [f"{t}-{p}: {err}" for (t, p), err in sorted(failed.items())]
        raise ReassignError("The controller refused the reassignment:\n" + "\n".join(lines))


async def cancel(admin: AdminClient, partitions: Iterable[TP]) -> None:
    """Cancel ongoing reassignments (the partitions go back to their original replicas)."""
    await submit(admin, dict.fromkeys(partitions))


async def status(admin: AdminClient, targets: Mapping[TP, Sequence[int]]) -> list[MoveStatus]:
    """The state of every partition in `targets` (one ListPartitionReassignments, one
    Metadata, one DescribeLogDirs per broker involved)."""
    ongoing = await admin.list_partition_reassignments(list(targets))
    md = await admin.metadata(sorted({t for t, _ in targets}))
    involved = sorted({b for tp in targets for b in (*targets[tp], *ongoing.get(tp, ((),))[0])}
                      | {b for (t, p) in targets
                         for b in getattr(md.partition(t, p), "replicas", ())})
    sizes: dict[tuple[int, TP], int] = {}
    try:
        dirs = await admin.describe_log_dirs(involved, raise_errors=False)
    except KafkaError:
        dirs = {}
    for broker, result in dirs.items():
        if isinstance(result, Exception):
            continue
        for d in result:
            for tp, (size, _lag, _future) in d.partitions.items():
                sizes[(broker, tp)] = size
    out = []
    for tp, target in targets.items():
        p = md.partition(*tp)
        replicas = tuple(p.replicas) if p else ()
        isr = tuple(p.isr) if p else ()
        leader = p.leader if p else -1
        adding: tuple[int, ...] = ()
        removing: tuple[int, ...] = ()
        if tp in ongoing:
            replicas, adding, removing = ongoing[tp]
        done = tp not in ongoing and tuple(replicas) == tuple(target)
        leader_size = sizes.get((leader, tp))
        states = []
        for b in replicas:
            role = ("leader" if b == leader else "adding" if b in adding
                    else "removing" if b in removing else "follower")
            size = sizes.get((b, tp))
            lag = (max(0, leader_size - size) if size is not None and leader_size is not None
                   else None)
            states.append(ReplicaState(b, role, b in isr, size, lag))
        out.append(MoveStatus(tp[0], tp[1], tuple(target), tuple(replicas), adding, removing,
                              isr, leader, done, tuple(states)))
    return out


async def wait_for(admin: AdminClient, targets: Mapping[TP, Sequence[int]], *,
                   timeout: float = 300.0, poll: float = 0.5,
                   on_progress: MoveCallback | None = None) -> list[MoveStatus]:
    """Poll until every partition sits on its target replicas; raises ReassignError on
    timeout (the reassignment goes on in the background)."""
    deadline = time.monotonic() + timeout
    while True:
        moves = await status(admin, targets)
        if on_progress is not None:
            on_progress(moves)
        if all(m.done for m in moves):
            return moves
        if time.monotonic() > deadline:
            pending = "\n".join(m.describe() for m in moves if not m.done)
            raise ReassignError(f"Reassignment not finished after {timeout:.0f}s (it continues "
                                f"in the background):\n{pending}")
        await asyncio.sleep(poll)


async def reassign(admin: AdminClient, targets: Mapping[TP, Sequence[int]], *,
                   wait: bool = True, timeout: float = 300.0, elect: bool = True,
                   on_progress: MoveCallback | None = None) -> list[MoveStatus]:
    """Move partitions to their target replicas; with `wait`, until done, then (with
    `elect`) make each partition's first target replica its leader (preferred election)."""
    targets = {tp: [int(b) for b in bs] for tp, bs in targets.items()}
    await submit(admin, targets)
    if not wait:
        return await status(admin, targets)
    moves = await wait_for(admin, targets, timeout=timeout, on_progress=on_progress)
    if elect and targets:
        try:
            await admin.elect_leaders(list(targets))
        except KafkaError:
            pass  # leadership is a preference; the move itself is done
    return moves


async def change_replication_factor(admin: AdminClient, topic: str, replication_factor: int,
                                    **kw: Any) -> list[MoveStatus]:
    """Raise or lower a topic's replication factor (a reassignment of each partition)."""
    md = await _metadata_with(admin, topic)
    return await reassign(admin, plan_replication_factor(md, topic, replication_factor), **kw)


async def decommission(admin: AdminClient, broker_id: int, *, control: Any = None,
                       stop: bool = False, **kw: Any) -> list[MoveStatus]:
    """Move every replica off `broker_id` (then, with `stop` and a ClusterControl, stop it)."""
    md = await admin.metadata()
    plan = plan_decommission(md, broker_id)
    moves = await reassign(admin, plan, **kw)
    if stop:
        if control is None:
            raise ReassignError("Stopping the broker needs the kaflab supervisor.")
        await control.stop(broker_id)
    return moves


async def _metadata_with(admin: AdminClient, topic: str, timeout: float = 5.0
                         ) -> ClusterMetadata:
    """Full metadata that includes `topic` (a just-created topic takes a moment to reach
    every broker)."""
    deadline = time.monotonic() + timeout
    while True:
        md = await admin.metadata()
        if topic in md.topics or time.monotonic() > deadline:
            return md
        await asyncio.sleep(0.2)


# rolling restart ---------------------------------------------------------------------------
async def under_replicated(admin: AdminClient) -> list[TP]:
    """Partitions whose ISR is smaller than their replica set (or that have no leader)."""
    md = await admin.metadata()
    return [(t.name, p.partition) for t in md.topics.values() for p in t.partitions
            if len(p.isr) < len(p.replicas) or p.leader < 0]


async def wait_healthy(admin: AdminClient, broker_id: int | None = None, *,
                       timeout: float = 120.0, poll: float = 0.3) -> None:
    """Until `broker_id` (if given) is in the metadata and no partition is under-replicated."""
    deadline = time.monotonic() + timeout
    last: list[TP] = []
    while time.monotonic() < deadline:
        try:
            md = await admin.metadata()
            if broker_id is None or md.broker(broker_id) is not None:
                last = [(t.name, p.partition) for t in md.topics.values()
                        for p in t.partitions if len(p.isr) < len(p.replicas) or p.leader < 0]
                if not last:
                    return
        except KafkaError:
            pass
        await asyncio.sleep(poll)
    shown = ", ".join(f"{t}-{p}" for t, p in last[:10])
    raise ReassignError(f"Still under-replicated after {timeout:.0f}s: {shown or 'broker '}"
                        f"{'' if shown else str(broker_id) + ' not back in the metadata'}")


async def rolling_restart(admin: AdminClient, control: Any,
                          brokers: Sequence[int] | None = None, *,
                          timeout_per_broker: float = 120.0, elect: bool = True,
                          on_progress: StepCallback | None = None) -> list[int]:
    """Restart brokers one by one through the supervisor (ClusterControl), waiting for zero
    under-replicated partitions before and after each; finally elect preferred leaders."""
    if brokers is None:
        document = await control.status()
        brokers = sorted(int(b["id"]) for b in document.get("brokers", [])
                         if b.get("state") in ("running", "starting", "paused"))
    order = list(brokers)
    total = len(order)

    def say(done: int, message: str) -> None:
        if on_progress is not None:
            on_progress(done, total, message)

    say(0, "Waiting for a healthy cluster (no under-replicated partitions)…")
    await wait_healthy(admin, timeout=timeout_per_broker)
    for i, broker_id in enumerate(order):
        say(i, f"Restarting broker {broker_id} ({i + 1} of {total})…")
        await control.restart(broker_id)
        say(i, f"Broker {broker_id} restarted; waiting for its replicas to rejoin the ISR…")
        await asyncio.sleep(0.5)
        await wait_healthy(admin, broker_id, timeout=timeout_per_broker)
        say(i + 1, f"Broker {broker_id} is back and every partition is fully replicated")
    if elect:
        try:
            await admin.elect_leaders(None)
        except KafkaError:
            pass
    say(total, f"Rolling restart of {total} broker(s) done")
    return order
