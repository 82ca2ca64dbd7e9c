"""Transactions for the console: open ones, hanging ones, and partitions held back by an LSO.

One poll (on the bridge's loop) asks every broker for its transactional ids
(ListTransactions), describes the open ones at their coordinators (DescribeTransactions),
and compares each partition's last stable offset with its high watermark (ListOffsets
read_committed vs read_uncommitted); where LSO < HW it asks the leader which producer's open
transaction starts at the LSO (DescribeProducers). The result is an immutable
TransactionsSnapshot delivered to Qt by signal.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, Signal

from core.admin.client import ActiveProducer, AdminClient, TransactionDescription
from core.common.errors import KafkaError

log = logging.getLogger(__name__)

__all__ = ["HeldPartition", "OpenTransaction", "TransactionsController",
           "TransactionsSnapshot", "poll_transactions"]

#: states in which a transaction holds its partitions' LSO
OPEN_STATES = frozenset({"Ongoing", "PrepareCommit", "PrepareAbort"})


@dataclass(frozen=True, slots=True)
class OpenTransaction:
    transactional_id: str
    state: str
    producer_id: int
    producer_epoch: int
    coordinator_id: int
    start_ms: int
    timeout_ms: int
    partitions: tuple[tuple[str, int], ...]
    #: how long it has been open at poll time (ms); -1 when unknown
    open_ms: int

    @property
    def hanging(self) -> bool:
        """Open for longer than its transaction timeout (the coordinator should have
        aborted it by now)."""
        return self.open_ms >= 0 and self.timeout_ms > 0 and self.open_ms > self.timeout_ms


@dataclass(frozen=True, slots=True)
class HeldPartition:
    """A partition whose last stable offset is below its high watermark."""
    topic: str
    partition: int
    lso: int
    high_watermark: int
    #: producer ids whose open transaction starts at the LSO (from DescribeProducers)
    producers: tuple[int, ...] = ()
    #: the transactional ids of those producers, where an open transaction names them
    transactional_ids: tuple[str, ...] = ()

    @property
    def held(self) -> int:
        """Records that read_committed consumers cannot see yet."""
        return self.high_watermark - self.lso


@dataclass(frozen=True, slots=True)
class TransactionsSnapshot:
    taken_at: float
    #: every transactional id: state by id
    states: dict[str, str] = field(default_factory=dict)
    open: tuple[OpenTransaction, ...] = ()
    held: tuple[HeldPartition, ...] = ()
    partitions_checked: int = 0
    errors: tuple[str, ...] = ()

    @property
    def hanging(self) -> tuple[OpenTransaction, ...]:
        return tuple(t for t in self.open if t.hanging)


async def poll_transactions(admin: AdminClient, *, max_partitions: int = 5000,
                            now_ms: int | None = None) -> TransactionsSnapshot:
    """One TransactionsSnapshot of the cluster behind `admin`."""
    errors: list[str] = []
    now = int(time.time() * 1000) if now_ms is None else now_ms
    listings, md = await asyncio.gather(admin.list_transactions(), admin.metadata())
    states = {t.transactional_id: t.state for t in listings}
    open_ids = [t.transactional_id for t in listings if t.state in OPEN_STATES]
    described: dict[str, TransactionDescription] = \
        await admin.describe_transactions(open_ids) if open_ids else {}
    opened: list[OpenTransaction] = []
    for tid in open_ids:
        d = described.get(tid)
        if d is None or d.error is not None:
            errors.append(f"describe {tid}: {d.error if d else 'no answer'}")
            continue
        if d.state not in OPEN_STATES:  # finished in between
            states[tid] = d.state
            continue
        opened.append(OpenTransaction(
            tid, d.state, d.producer_id, d.producer_epoch, d.coordinator_id, d.start_ms,
            d.timeout_ms, d.partitions, now - d.start_ms if d.start_ms > 0 else -1))

    tps = [(t.name, p.partition) for t in md.topics.values() for p in t.partitions]
    tps = sorted(tps)[:max_partitions]
    if len(tps) == max_partitions:
        errors.append(f"only the first {max_partitions} partitions were checked")
    offsets = await admin.stable_offsets(tps) if tps else {}
    held_raw = []
    for tp, value in offsets.items():
        if isinstance(value, KafkaError):
            errors.append(f"{tp[0]}-{tp[1]}: {value}")
        elif value[0] >= 0 and value[0] < value[1]:
            held_raw.append((tp, value))
    producers: dict[Any, Any] = await admin.describe_producers(
        [tp for tp, _ in held_raw]) if held_raw else {}
    by_pid = {t.producer_id: t.transactional_id for t in opened}
    held = []
    for (topic, p), (lso, hw) in sorted(held_raw):
        active = producers.get((topic, p))
        pids: tuple[int, ...] = ()
        if isinstance(active, list):
            pids = tuple(a.producer_id for a in active if _holds(a, lso))
        held.append(HeldPartition(topic, p, lso, hw, pids,
                                  tuple(by_pid[x] for x in pids if x in by_pid)))
    return TransactionsSnapshot(time.time(), states, tuple(sorted(
        opened, key=lambda t: t.start_ms)), tuple(held), len(tps), tuple(errors))


def _holds(a: ActiveProducer, lso: int) -> bool:
    return a.current_txn_start_offset == lso


class TransactionsController(QObject):
    """Polls transactions for a Session on demand (never two polls at once)."""

    snapshot = Signal(object)  # TransactionsSnapshot
    failed = Signal(str)

    def __init__(self, session: Any) -> None:
        super().__init__()
        self.session = session
        self._admin: AdminClient | None = None
        self._bootstrap = ""
        self._future: Any = None
        self.last: TransactionsSnapshot | None = None

    @property
    def polling(self) -> bool:
        return self._future is not None and not self._future.done()

    def refresh(self) -> bool:
        """Start one poll; False when one is running or there is no cluster yet."""
        caps = getattr(self.session, "capabilities", None)
        if self.polling or caps is None or not getattr(caps, "bootstrap", ""):
            return False
        bootstrap = caps.bootstrap

        async def go() -> TransactionsSnapshot:
            if self._admin is None or self._bootstrap != bootstrap:
                if self._admin is not None:
                    await self._admin.close()
                self._admin = AdminClient(bootstrap, client_id="kaflab-console-txn",
                                          request_timeout=10, retries=2)
                self._bootstrap = bootstrap
            # the console's brokers-not-to-wait-on (paused ones fail at once, with why); the
            # backend's client adopts the poller's after the first snapshot, so re-read it
            backend_admin = getattr(getattr(self.session, "backend", None), "admin", None)
            shared = getattr(backend_admin, "unresponsive", None)
            if shared is not None:
                self._admin.unresponsive = shared
            return await poll_transactions(self._admin)

        self._future = self.session.bridge.call(go(), self._done, self._failed)
        return True

    def close(self) -> None:
        if self._future is not None:
            self._future.cancel()
        admin, self._admin = self._admin, None
        bridge = getattr(self.session, "bridge", None)
        if admin is not None and bridge is not None and bridge.running:
            bridge.call(admin.close())

    def _done(self, snap: TransactionsSnapshot) -> None:
        self.last = snap
        self.snapshot.emit(snap)

    def _failed(self, exc: BaseException) -> None:
        if isinstance(exc, asyncio.CancelledError):
            return
        self.failed.emit(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
