"""Delayed operations keyed by name: Kafka's purgatory, reduced to what the coordinator needs.

Each key has at most one deadline (rescheduling replaces it, as a heartbeat does). Deadlines
live in a heap with lazy deletion; the owner calls `pop_due(now_ms)` from its tick, so a fake
clock drives them deterministically in tests.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Hashable
from typing import Any

Callback = Callable[[], Any]


class DelayedOperations:
    """Named deadlines; `pop_due` returns the callbacks whose deadline has passed."""

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, Hashable]] = []
        self._live: dict[Hashable, tuple[int, int, Callback]] = {}
        self._seq = itertools.count()

    def schedule(self, key: Hashable, deadline_ms: int, callback: Callback) -> None:
        """Run `callback` once `deadline_ms` has passed, replacing any deadline for `key`."""
        seq = next(self._seq)
        self._live[key] = (deadline_ms, seq, callback)
        heapq.heappush(self._heap, (deadline_ms, seq, key))

    def cancel(self, key: Hashable) -> None:
        self._live.pop(key, None)

    def deadline(self, key: Hashable) -> int | None:
        entry = self._live.get(key)
        return None if entry is None else entry[0]

    def __contains__(self, key: Hashable) -> bool:
        return key in self._live

    def next_deadline(self) -> int | None:
        """The earliest live deadline, or None."""
        while self._heap:
            deadline, seq, key = self._heap[0]
            live = self._live.get(key)
            if live is not None and live[1] == seq:
                return deadline
            heapq.heappop(self._heap)
        return None

    def pop_due(self, now_ms: int) -> list[Callback]:
        """Remove and return, in deadline order, every callback due at `now_ms`."""
        due = []
        while self._heap and self._heap[0][0] <= now_ms:
            _deadline, seq, key = heapq.heappop(self._heap)
            live = self._live.get(key)
            if live is not None and live[1] == seq:
                del self._live[key]
                due.append(live[2])
        return due

    def clear(self) -> None:
        self._heap.clear()
        self._live.clear()
