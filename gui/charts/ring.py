"""Bounded ring buffers of (time, value) samples, numpy-backed, for the live charts."""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import numpy as np

WINDOW_S = 300.0


class Ring:
    """A fixed-capacity ring of (t, value); ``arrays()`` returns them oldest first."""

    __slots__ = ("_n", "_pos", "_t", "_v", "capacity")

    def __init__(self, capacity: int = 600) -> None:
        self.capacity = capacity
        self._t = np.empty(capacity, dtype=np.float64)
        self._v = np.empty(capacity, dtype=np.float64)
        self._pos = 0
        self._n = 0

    def append(self, t: float, value: float) -> None:
        self._t[self._pos] = t
        self._v[self._pos] = value
        self._pos = (self._pos + 1) % self.capacity
        if self._n < self.capacity:
            self._n += 1

    def __len__(self) -> int:
        return self._n

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        if self._n < self.capacity:
            return self._t[: self._n].copy(), self._v[: self._n].copy()
        order = np.r_[self._pos:self.capacity, 0:self._pos]
        return self._t[order], self._v[order]

    def last(self) -> float | None:
        if not self._n:
            return None
        return float(self._v[(self._pos - 1) % self.capacity])


class SeriesSet:
    """Named series sharing a clock; series unseen for a whole window are dropped."""

    def __init__(self, capacity: int = 600, window_s: float = WINDOW_S) -> None:
        self.capacity = capacity
        self.window_s = window_s
        self.series: dict[Hashable, Ring] = {}
        self._last_seen: dict[Hashable, float] = {}

    def add(self, t: float, values: Mapping[Hashable, float | None]) -> None:
        for key, value in values.items():
            if value is None:
                continue
            ring = self.series.get(key)
            if ring is None:
                ring = self.series[key] = Ring(self.capacity)
            ring.append(t, float(value))
            self._last_seen[key] = t
        stale = [k for k, seen in self._last_seen.items() if t - seen > self.window_s]
        for key in stale:
            self.series.pop(key, None)
            self._last_seen.pop(key, None)

    def keys(self) -> list[Hashable]:
        return list(self.series)
