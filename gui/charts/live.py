"""Live throughput and lag charts (pyqtgraph) over bounded ring buffers, shared time axis."""

from __future__ import annotations

import math
import time
from collections.abc import Hashable
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QCheckBox, QComboBox, QGridLayout, QVBoxLayout, QWidget

from gui.charts.markers import MarkerLayer, broker_changes
from gui.charts.ring import WINDOW_S, SeriesSet

PALETTE = ("#3b82f6", "#ef4444", "#10b981", "#f59e0b", "#8b5cf6", "#06b6d4", "#ec4899",
           "#84cc16", "#f97316", "#64748b")
TOP_TOPICS = 8
#: the time axis moves in steps of this many seconds (axes repaint rarely, not every tick)
X_STEP_S = 15.0


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 x 10^k that is >= value (>= 1)."""
    if value <= 1:
        return 1.0
    exp = 10 ** math.floor(math.log10(value))
    for m in (1, 2, 2.5, 5, 10):
        if m * exp >= value:
            return m * exp
    return 10 * exp


class _Plot:
    """One titled plot with a legend and one curve per series key."""

    def __init__(self, title: str, units: str) -> None:
        axis = pg.DateAxisItem(orientation="bottom")
        self.widget = pg.PlotWidget(axisItems={"bottom": axis})
        self.widget.setObjectName(title)
        self.item = self.widget.getPlotItem()
        self.item.setTitle(title)
        self.item.showGrid(x=True, y=True, alpha=0.15)
        self.item.setLabel("left", units=units)
        self.item.setMouseEnabled(x=False, y=False)
        self.item.hideButtons()
        self.item.setMenuEnabled(False)
        self.legend = self.item.addLegend(offset=(8, 8), labelTextSize="8pt")
        self.item.disableAutoRange()
        self.item.setYRange(0, 1, padding=0)
        self.y_top = 1.0
        self.curves: dict[Hashable, pg.PlotDataItem] = {}
        self.title = title

    def fit_y(self, peak: float) -> None:
        """Rescale Y only when the data outgrows it or shrinks well below it (few repaints)."""
        if peak > self.y_top or peak < self.y_top * 0.3:
            top = nice_ceiling(peak * 1.15)
            if top != self.y_top:
                self.y_top = top
                self.item.setYRange(0, top, padding=0)

    def curve(self, key: Hashable, label: str, index: int, dashed: bool = False) -> Any:
        curve = self.curves.get(key)
        if curve is None:
            pen = pg.mkPen(PALETTE[index % len(PALETTE)], width=2,
                           style=pg.QtCore.Qt.PenStyle.DashLine if dashed
                           else pg.QtCore.Qt.PenStyle.SolidLine)
            curve = self.item.plot([], [], pen=pen, name=label)
            curve.setClipToView(True)
            self.curves[key] = curve
        return curve

    def prune(self, keep: set[Hashable]) -> None:
        for key in [k for k in self.curves if k not in keep]:
            curve = self.curves.pop(key)
            self.item.removeItem(curve)
            self.legend.removeItem(curve)

    def theme(self, tokens: dict[str, str]) -> None:
        self.widget.setBackground(tokens.get("plot_bg", "#ffffff"))
        fg = tokens.get("plot_fg", "#444444")
        for name in ("left", "bottom"):
            ax = self.item.getAxis(name)
            ax.setPen(pg.mkPen(fg))
            ax.setTextPen(pg.mkPen(fg))
        self.item.setTitle(self.title, color=fg)
        self.legend.setLabelTextColor(fg)


class ChartsView(QWidget):
    """Records/s and bytes/s in/out per broker and per topic, and consumer lag per group."""

    def __init__(self, capacity: int = 900) -> None:
        super().__init__()
        pg.setConfigOptions(antialias=True, foreground="#4b5563")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(18, 14, 18, 14)
        from gui.views.common import hbox, page_header  # views own the page chrome

        header, self.subtitle = page_header("Live charts", "Last 5 minutes, one sample per poll")
        self.scope = QComboBox()
        self.scope.addItem("Per broker", "broker")
        self.scope.addItem("Per topic", "topic")
        self.scope.setObjectName("chart_scope")
        self.paused = QCheckBox("Pause")
        self.paused.setToolTip("Freeze the charts (samples are still recorded)")
        layout.addLayout(hbox(header, None, self.scope, self.paused))
        grid = QGridLayout()
        grid.setSpacing(10)
        self.records_in = _Plot("Records in /s", "rec/s")
        self.bytes_in = _Plot("Bytes in /s", "B/s")
        self.bytes_out = _Plot("Bytes out /s", "B/s")
        self.lag = _Plot("Consumer lag", "records")
        self.plots = (self.records_in, self.bytes_in, self.bytes_out, self.lag)
        for i, plot in enumerate(self.plots):
            grid.addWidget(plot.widget, i // 2, i % 2)
            if plot is not self.records_in:
                plot.item.setXLink(self.records_in.item)
        layout.addLayout(grid, 1)
        cap = capacity
        self.broker_msgs = SeriesSet(cap)
        self.broker_in = SeriesSet(cap)
        self.broker_out = SeriesSet(cap)
        self.topic_msgs = SeriesSet(cap)
        self.topic_in = SeriesSet(cap)
        self.topic_out = SeriesSet(cap)
        self.group_lag = SeriesSet(cap)
        self.samples = 0
        self.scope.currentIndexChanged.connect(lambda _i: self.redraw(force=True))
        self._last_t = 0.0
        self._x_end = 0.0
        #: fault markers (kills, pauses, network faults, throttles) on every plot
        self.markers = MarkerLayer(plot.item for plot in self.plots)
        self._brokers: tuple[Any, ...] = ()

    def apply_theme(self, tokens: dict[str, str]) -> None:
        for plot in self.plots:
            plot.theme(tokens)

    def record(self, snap: Any) -> None:
        """Append one sample per series from a snapshot (cheap; always done)."""
        t = snap.taken_at or time.time()
        if t <= self._last_t:
            return
        self._last_t = t
        self.broker_msgs.add(t, {b.id: b.messages_in_per_sec for b in snap.brokers})
        self.broker_in.add(t, {b.id: b.bytes_in_per_sec for b in snap.brokers})
        self.broker_out.add(t, {b.id: b.bytes_out_per_sec for b in snap.brokers})
        topics = [x for x in snap.topics if not x.internal]
        self.topic_msgs.add(t, {x.name: x.messages_in_per_sec for x in topics})
        self.topic_in.add(t, {x.name: x.bytes_in_per_sec for x in topics})
        self.topic_out.add(t, {x.name: x.bytes_out_per_sec for x in topics})
        self.group_lag.add(t, {g.group_id: g.total_lag for g in snap.groups})
        self.samples += 1
        if self._brokers:
            for marker in broker_changes(self._brokers, snap.brokers, t):
                self.markers.add(marker)
        self._brokers = snap.brokers

    def on_snapshot(self, snap: Any) -> None:
        self.record(snap)
        if self.isVisible() and not self.paused.isChecked():
            self.redraw()

    def _draw(self, plot: _Plot, series: SeriesSet, keys: list[Hashable], label: Any) -> None:
        peak = 0.0
        lo = self._last_t - WINDOW_S
        for i, key in enumerate(keys):
            ring = series.series.get(key)
            if ring is None:
                continue
            t, v = ring.arrays()
            if len(v):
                visible = v[t >= lo]
                if len(visible):
                    peak = max(peak, float(np.nanmax(visible)))
            plot.curve(key, label(key), i).setData(t, v, skipFiniteCheck=True)
        plot.prune(set(keys))
        plot.fit_y(peak)

    def redraw(self, force: bool = False) -> None:
        if self.scope.currentData() == "broker":
            keys = sorted(self.broker_msgs.keys())
            label = lambda k: f"broker {k}"  # noqa: E731
            self._draw(self.records_in, self.broker_msgs, keys, label)
            self._draw(self.bytes_in, self.broker_in, sorted(self.broker_in.keys()), label)
            self._draw(self.bytes_out, self.broker_out, sorted(self.broker_out.keys()), label)
        else:
            top = sorted(self.topic_msgs.keys(),
                         key=lambda k: -(self.topic_msgs.series[k].last() or 0))[:TOP_TOPICS]
            self._draw(self.records_in, self.topic_msgs, top, str)
            self._draw(self.bytes_in, self.topic_in, top, str)
            self._draw(self.bytes_out, self.topic_out, top, str)
        lag_keys = sorted(self.group_lag.keys(),
                          key=lambda k: -(self.group_lag.series[k].last() or 0))[:TOP_TOPICS]
        self._draw(self.lag, self.group_lag, lag_keys, str)
        if self._last_t:
            self.markers.prune(self._last_t - WINDOW_S - X_STEP_S)
            end = math.ceil(self._last_t / X_STEP_S) * X_STEP_S
            if end != self._x_end:
                self._x_end = end
                self.records_in.item.setXRange(end - WINDOW_S, end, padding=0)

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        self.redraw(force=True)
