"""Fault markers on the live charts: a vertical line with a short label where a fault began
or ended (kill, pause, stop, start, network fault, replication throttle).

Markers come from what the console already has, successive snapshots: ``broker_changes``
compares two polls' brokers (process state, the supervisor's network fault, the throttle
rates) and names what changed. It is pure and costs one pass over the brokers per poll.
:class:`MarkerLayer` draws them as pyqtgraph InfiniteLines on every plot and keeps at most
``limit`` of them, dropping those that scrolled out of the window.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pyqtgraph as pg
from PySide6.QtGui import QFont

FAULT, RECOVERY, THROTTLE = "fault", "recovery", "throttle"
COLORS = {FAULT: "#ef4444", RECOVERY: "#10b981", THROTTLE: "#f59e0b"}
_DOWN = {"killed": "kill", "crashed": "crash", "stopped": "stop", "paused": "pause",
         "offline": "offline", "unresponsive": "unresponsive"}
_UP = ("running", "online")
#: label heights (fraction of the plot) used in turn by markers close together in time
LEVELS = (0.97, 0.74, 0.51, 0.28)
#: markers closer than this (s) get their labels at different heights
STAGGER_S = 15.0


@dataclass(frozen=True, slots=True)
class Marker:
    """One marker: when (Unix s), a short label and its kind (fault | recovery | throttle)."""

    t: float
    label: str
    kind: str


def _net(b: Any) -> tuple[Any, Any]:
    return getattr(b, "network_mode", None), getattr(b, "network_latency_ms", None)


def _throttle(b: Any) -> tuple[Any, Any]:
    return getattr(b, "leader_throttle_bps", None), getattr(b, "follower_throttle_bps", None)


def _net_label(broker_id: int, mode: str | None, ms: float | None) -> str:
    parts = [{"isolate": "isolate", "drop": "drop", "blackhole": "blackhole"}.get(mode or "",
                                                                                 mode or "")]
    if ms:
        parts.append(f"+{ms:g}ms")
    return f"{' '.join(p for p in parts if p)} b{broker_id}"


def broker_changes(before: Iterable[Any], after: Iterable[Any], t: float) -> list[Marker]:
    """Markers for what changed between two polls' brokers (BrokerInfo / BrokerFaults)."""
    old = {b.id: b for b in before}
    out: list[Marker] = []
    for b in after:
        prev = old.get(b.id)
        if prev is None:
            continue
        if b.state != prev.state:
            if b.state in _DOWN:
                out.append(Marker(t, f"{_DOWN[b.state]} b{b.id}", FAULT))
            elif b.state in _UP and prev.state in _DOWN:
                verb = "resume" if prev.state == "paused" else "up"
                out.append(Marker(t, f"{verb} b{b.id}", RECOVERY))
        if _net(b) != _net(prev):
            mode, ms = _net(b)
            if mode or ms:
                out.append(Marker(t, _net_label(b.id, mode, ms), FAULT))
            else:
                out.append(Marker(t, f"net ok b{b.id}", RECOVERY))
        if _throttle(b) != _throttle(prev):
            leader, follower = _throttle(b)
            if leader is None and follower is None:
                out.append(Marker(t, f"unthrottle b{b.id}", RECOVERY))
            else:
                top = max(x for x in (leader, follower) if x is not None)
                out.append(Marker(t, f"throttle b{b.id} {top / 1e6:g}MB/s", THROTTLE))
    return out


class MarkerLayer:
    """Draws markers on several PlotItems (one InfiniteLine per plot per marker).

    Only the first ``labelled`` plots (the top row of the charts page) carry the labels: a
    line costs ~0.05 ms and a label ~0.1 ms of Qt-thread time per tick (pyqtgraph moves it on
    every view change), so at most ``limit`` markers are kept, more than fit in 5 minutes.
    """

    def __init__(self, plots: Iterable[Any], limit: int = 24, labelled: int = 2) -> None:
        self.plots = list(plots)
        self.limit = limit
        self.labelled = labelled
        self.markers: deque[tuple[Marker, list[Any]]] = deque()
        self._last: tuple[float, int] = (float("-inf"), -1)  # (time, level) of the last label
        self._font = QFont()
        self._font.setPointSizeF(7.5)

    def add(self, marker: Marker) -> None:
        """Draw ``marker`` on every plot (labels of close markers at different heights)."""
        pen = pg.mkPen(COLORS.get(marker.kind, "#64748b"), width=1.5,
                       style=pg.QtCore.Qt.PenStyle.DashLine)
        last_t, last_level = self._last
        level = (last_level + 1) % len(LEVELS) if marker.t - last_t < STAGGER_S else 0
        self._last = (marker.t, level)
        lines = []
        for i, plot in enumerate(self.plots):
            labelled = i < self.labelled
            line = pg.InfiniteLine(pos=marker.t, angle=90, movable=False, pen=pen,
                                   label=marker.label if labelled else None, labelOpts={
                                       "position": LEVELS[level],
                                       "color": COLORS.get(marker.kind),
                                       "rotateAxis": (1, 0), "anchors": [(1, 0), (1, 0)]})
            if labelled:
                line.label.setFont(self._font)
            line.setZValue(-5)
            plot.addItem(line, ignoreBounds=True)
            lines.append(line)
        self.markers.append((marker, lines))
        while len(self.markers) > self.limit:
            self._remove(self.markers.popleft()[1])

    def prune(self, before: float) -> None:
        """Drop markers older than ``before`` (scrolled out of the window)."""
        while self.markers and self.markers[0][0].t < before:
            self._remove(self.markers.popleft()[1])

    def _remove(self, lines: list[Any]) -> None:
        for plot, line in zip(self.plots, lines, strict=True):
            plot.removeItem(line)

    def labels(self) -> list[str]:
        return [m.label for m, _ in self.markers]
