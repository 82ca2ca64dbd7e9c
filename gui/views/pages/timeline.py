"""Timeline page: scrub back to any recorded moment; brokers, partitions and events then."""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import QRectF, Qt, QTimer
from PySide6.QtGui import QBrush, QColor, QPainter, QPalette, QPen
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QLabel,
    QSlider,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from gui.bridge.timeline import TimelineEvent, for_session
from gui.models import fmt
from gui.views.common import EmptyHint, TableHeader, hbox, page_header, section
from gui.views.pages import PageSpec

SLIDER_STEPS = 1000
FAULT_COLOR = QColor("#c0392b")
#: rows in trouble: the console's status red (fmt.BAD), readable on both themes' tables
#: (#c0392b was 2.9:1 on the dark theme's panel)
ROW_FAULT = QColor(fmt.BAD)
EVENT_COLOR = QColor("#2e86c1")


def _clock(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts)) + f".{int(ts * 10) % 10}"


class MarkerStrip(QWidget):
    """A thin bar over the slider: a tick per event (faults in red), the cursor in the
    theme's text colour (a fixed near-black one vanished on the dark theme)."""

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("timeline_markers")
        self.setFixedHeight(22)
        self.span: tuple[float, float] | None = None
        self.marks: list[tuple[float, str, bool]] = []
        self.cursor: float | None = None

    def set_data(self, span: tuple[float, float] | None, marks: list[tuple[float, str, bool]],
                 cursor: float | None) -> None:
        self.span, self.marks, self.cursor = span, marks, cursor
        self.update()

    def _x(self, ts: float) -> float:
        assert self.span is not None
        first, last = self.span
        width = max(1.0, self.width() - 16.0)
        return 8.0 + width * (ts - first) / max(1e-6, last - first)

    def paintEvent(self, _event: Any) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.fillRect(QRectF(8, 9, max(0, self.width() - 16), 4), QColor(128, 128, 128, 60))
        if self.span is None:
            return
        for ts, _kind, fault in self.marks:
            if not (self.span[0] <= ts <= self.span[1]):
                continue
            x = self._x(ts)
            p.setPen(QPen(FAULT_COLOR if fault else EVENT_COLOR, 2 if fault else 1))
            p.drawLine(int(x), 2 if fault else 6, int(x), 20 if fault else 16)
        if self.cursor is not None:
            x = self._x(self.cursor)
            ink = self.palette().color(QPalette.ColorRole.WindowText)
            p.setPen(QPen(ink, 1))
            p.setBrush(QBrush(ink))
            p.drawEllipse(QRectF(x - 4, 7, 8, 8))


class _Item(QTableWidgetItem):
    """A cell that sorts by ``key`` (numbers as numbers, not as text)."""

    def __init__(self, text: str, key: Any) -> None:
        super().__init__(text)
        self.key = key

    def __lt__(self, other: QTableWidgetItem) -> bool:
        other_key = getattr(other, "key", other.text())
        try:
            return bool(self.key < other_key)
        except TypeError:
            return str(self.key) < str(other_key)


def _number(text: str) -> int:
    try:
        return int(text.replace(",", ""))
    except ValueError:
        return -1  # "none", "": before every real value


def _table(name: str, headers: list[str], numeric: tuple[int, ...] = (),
           empty: str = "", stretch_floor: int | None = None) -> QTableWidget:
    """Sortable like the console's other tables: fitted columns (the last one stretches),
    numbers right-aligned and sorted as numbers, a sentence while empty."""
    table = QTableWidget(0, len(headers))
    table.setObjectName(name)
    # with stretch_floor the last column (long text) gives way before the table scrolls
    table.setHorizontalHeader(TableHeader(
        table, stretch=len(headers) - 1 if stretch_floor else "last",
        stretch_floor=stretch_floor))
    table.setHorizontalHeaderLabels(headers)
    table.horizontalHeader().setSortIndicatorShown(False)  # TableHeader draws the arrow
    for column in numeric:
        table.horizontalHeaderItem(column).setTextAlignment(
            Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    table.numeric = numeric  # type: ignore[attr-defined]
    table.setSortingEnabled(True)
    table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
    table.setAlternatingRowColors(True)
    table.setShowGrid(False)
    table.setWordWrap(False)
    table.verticalHeader().setVisible(False)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.verticalHeader().setDefaultSectionSize(24)
    table.empty_hint = EmptyHint(table, empty)  # type: ignore[attr-defined]
    return table


def _fill(table: QTableWidget, rows: list[list[str]],
          colors: list[QColor | None] | None = None) -> list[QTableWidgetItem]:
    """Replace the rows (kept in the user's sort order); the first cell of each row."""
    numeric = getattr(table, "numeric", ())
    sorting = table.isSortingEnabled()
    table.setSortingEnabled(False)
    table.setRowCount(len(rows))
    firsts: list[QTableWidgetItem] = []
    last = table.columnCount() - 1
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            item = _Item(text, _number(text) if c in numeric else text)
            if c in numeric:
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight
                                      | Qt.AlignmentFlag.AlignVCenter)
            if c == last and text:
                item.setToolTip(text)  # the stretch column may elide a long event
            if colors and colors[r] is not None:
                item.setForeground(colors[r])
            table.setItem(r, c, item)
            if c == 0:
                firsts.append(item)
    table.setSortingEnabled(sorting)
    return firsts


class TimelineView(QWidget):
    """Slider over the recorded span; the state at the cursor and the events around it."""

    def __init__(self, session: Any) -> None:
        super().__init__()
        self.session = session
        self.timeline = for_session(session)
        self.span: tuple[float, float] | None = None
        self.count = 0
        self.cursor: float | None = None
        self.marks: list[tuple[float, str, bool]] = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(18, 14, 18, 14)
        layout.setSpacing(8)
        header, self.subtitle = page_header(
            "Timeline", "Every snapshot and broker event is recorded; drag the slider to see "
            "the cluster as it was. Red marks are faults.")
        layout.addWidget(header)
        self.markers = MarkerStrip()
        layout.addWidget(self.markers)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setObjectName("timeline_slider")
        self.slider.setRange(0, SLIDER_STEPS)
        self.slider.setValue(SLIDER_STEPS)
        self.live = QCheckBox("Live")
        self.live.setObjectName("timeline_live")
        self.live.setChecked(True)
        self.live.setToolTip("Follow the newest snapshot")
        self.when = QLabel("nothing recorded yet")
        self.when.setObjectName("timeline_when")
        layout.addLayout(hbox(self.slider, self.live))
        layout.addWidget(self.when)

        split = QSplitter(Qt.Orientation.Horizontal)
        state = QWidget()
        state_l = QVBoxLayout(state)
        state_l.setContentsMargins(0, 0, 0, 0)
        state_l.addWidget(section("Brokers"))
        self.brokers = _table("timeline_brokers", ["Broker", "State", "Role", "Leaders",
                                                   "Under-replicated"], numeric=(0, 3, 4),
                              empty="No snapshot recorded at this moment.")
        self.brokers.setMaximumHeight(150)
        state_l.addWidget(self.brokers)
        state_l.addWidget(section("Partitions"))
        self.partitions = _table("timeline_partitions", ["Topic", "Partition", "Leader",
                                                         "Replicas", "ISR", "High watermark"],
                                 numeric=(1, 2, 5),
                                 empty="No topics at this moment.")
        state_l.addWidget(self.partitions, 1)
        split.addWidget(state)
        events = QWidget()
        events_l = QVBoxLayout(events)
        events_l.setContentsMargins(8, 0, 0, 0)
        events_l.addWidget(section("Events around this moment (±60 s)"))
        self.events = _table("timeline_events", ["Time", "Source", "Kind", "Event"],
                             empty="No broker events within 60 s of this moment.",
                             stretch_floor=160)
        events_l.addWidget(self.events, 1)
        split.addWidget(events)
        split.setSizes([560, 520])
        layout.addWidget(split, 1)

        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(80)
        self._debounce.timeout.connect(self._query)
        self._span_timer = QTimer(self)
        self._span_timer.setInterval(2000)
        self._span_timer.timeout.connect(self.timeline.refresh_span)
        self._span_timer.start()
        self.slider.valueChanged.connect(self._slid)
        self.live.toggled.connect(lambda on: on and self._go_live())
        self.timeline.span_changed.connect(self._span_changed)
        self.timeline.state_ready.connect(self._state_ready)

    # data in -------------------------------------------------------------------------
    def on_snapshot(self, snap: Any) -> None:
        """Recording happens in the bridge; a live view refreshes with the span."""
        if self.live.isChecked():
            self.timeline.refresh_span()

    def _span_changed(self, data: tuple[float, float, int, list]) -> None:
        first, last, count, marks = data
        self.span, self.count, self.marks = (first, last), count, marks
        if self.live.isChecked():
            self._go_live()
        else:
            self.markers.set_data(self.span, self.marks, self.cursor)

    def _go_live(self) -> None:
        if self.span is None:
            return
        self.slider.blockSignals(True)
        self.slider.setValue(SLIDER_STEPS)
        self.slider.blockSignals(False)
        self.show_time(self.span[1])

    def _slid(self, value: int) -> None:
        if self.span is None:
            return
        if value < SLIDER_STEPS and self.live.isChecked():
            self.live.blockSignals(True)
            self.live.setChecked(False)
            self.live.blockSignals(False)
        first, last = self.span
        self.cursor = first + (last - first) * value / SLIDER_STEPS
        self.markers.set_data(self.span, self.marks, self.cursor)
        self._debounce.start()

    def show_time(self, t: float) -> None:
        """Move the cursor to Unix time ``t`` and ask for the state then."""
        self.cursor = t
        if self.span is not None:
            first, last = self.span
            value = round(SLIDER_STEPS * (t - first) / max(1e-6, last - first))
            self.slider.blockSignals(True)
            self.slider.setValue(max(0, min(SLIDER_STEPS, value)))
            self.slider.blockSignals(False)
        self.markers.set_data(self.span, self.marks, self.cursor)
        self._query()

    def _query(self) -> None:
        if self.cursor is not None:
            self.timeline.query(self.cursor)

    # data out ------------------------------------------------------------------------
    def _state_ready(self, data: tuple[float, Any, list[TimelineEvent]]) -> None:
        t, snap, events = data
        ago = (self.span[1] - t) if self.span else 0.0
        where = f"{_clock(t)}  ({ago:.0f}s before the newest of {self.count} snapshots)" \
            if ago >= 0.5 else f"{_clock(t)}  (newest of {self.count} snapshots)"
        self.when.setText(where)
        self._show_state(snap)
        rows, colors = [], []
        nearest, best = -1, None
        for i, e in enumerate(events):
            rows.append([_clock(e.ts), e.source, e.kind, e.text])
            colors.append(ROW_FAULT if e.is_fault else None)
            if best is None or abs(e.ts - t) < best:
                nearest, best = i, abs(e.ts - t)
        firsts = _fill(self.events, rows, colors)
        if nearest >= 0:  # its row after the user's sort
            self.events.selectRow(firsts[nearest].row())
            self.events.scrollToItem(firsts[nearest],
                                     QAbstractItemView.ScrollHint.PositionAtCenter)

    def _show_state(self, snap: Any) -> None:
        if snap is None:
            _fill(self.brokers, [])
            _fill(self.partitions, [])
            return
        parts = [p for t in snap.topics if not t.internal for p in t.partitions]
        leaders = {b.id: sum(1 for p in parts if p.leader == b.id) for b in snap.brokers}
        urp = {b.id: sum(1 for p in parts if b.id in p.replicas and b.id not in p.isr)
               for b in snap.brokers}
        rows, colors = [], []
        for b in snap.brokers:
            down = b.state in ("offline", "killed", "stopped", "crashed", "paused",
                               "unresponsive")
            rows.append([str(b.id), b.state, "controller" if b.id == snap.controller_id
                         else "", str(leaders.get(b.id, 0)), str(urp.get(b.id, 0))])
            colors.append(ROW_FAULT if down else None)
        _fill(self.brokers, rows, colors)
        rows, colors = [], []
        for p in parts:
            rows.append([p.topic, str(p.partition), str(p.leader) if p.leader >= 0 else "none",
                         ",".join(map(str, p.replicas)), ",".join(map(str, p.isr)),
                         "" if p.high_watermark is None else f"{p.high_watermark:,}"])
            colors.append(ROW_FAULT if p.leader < 0 or p.under_replicated else None)
        _fill(self.partitions, rows, colors)


PAGE = PageSpec("Timeline", "◷", 60, TimelineView)
