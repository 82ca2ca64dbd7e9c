"""Transactions page: open transactions, hanging ones, and partitions held back by their LSO."""

from __future__ import annotations

import datetime
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from gui.bridge.transactions import TransactionsController, TransactionsSnapshot
from gui.models import fmt
from gui.views.common import Card, EmptyHint, TableHeader, button, hbox, page_header, section
from gui.views.pages import PageSpec

RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
HANGING = QColor(fmt.BAD)  # the console's status red (#c0392b was 2.9:1 on dark)


class _Item(QTableWidgetItem):
    """A cell that sorts by a value (numbers as numbers)."""

    def __init__(self, text: str, key: Any = None) -> None:
        super().__init__(text)
        self.key = text if key is None else key

    def __lt__(self, other: QTableWidgetItem) -> bool:
        other_key = getattr(other, "key", other.text())
        try:
            return self.key < other_key
        except TypeError:
            return str(self.key) < str(other_key)


def _table(name: str, headers: list[str], numeric: tuple[int, ...] = ()) -> QTableWidget:
    """``numeric``: columns of numbers, right-aligned like the console's other tables."""
    table = QTableWidget(0, len(headers))
    table.setObjectName(name)
    table.setHorizontalHeaderLabels(headers)
    table.setSortingEnabled(True)
    table.setAlternatingRowColors(True)
    table.setShowGrid(False)
    table.setWordWrap(False)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.verticalHeader().setVisible(False)
    table.verticalHeader().setDefaultSectionSize(26)
    # labels never clipped, columns fit their contents, the last one takes what is left
    table.setHorizontalHeader(TableHeader(table, stretch="last"))
    table.setHorizontalHeaderLabels(headers)
    table.horizontalHeader().setSortIndicatorShown(False)  # TableHeader draws the arrow
    for column in numeric:
        table.horizontalHeaderItem(column).setTextAlignment(RIGHT)
    table.numeric = numeric  # type: ignore[attr-defined]
    return table


def _fill(table: QTableWidget, rows: list[list[_Item]], color: list[bool] | None = None) -> None:
    table.setSortingEnabled(False)
    table.setRowCount(len(rows))
    numeric = getattr(table, "numeric", ())
    for r, row in enumerate(rows):
        for c, item in enumerate(row):
            if c in numeric:
                item.setTextAlignment(RIGHT)
            if color and color[r]:
                item.setForeground(HANGING)
            table.setItem(r, c, item)
    table.setSortingEnabled(True)  # the header fits the columns to the new rows


def _duration(ms: int) -> str:
    if ms < 0:
        return "\u2013"
    s = ms / 1000
    if s < 120:
        return f"{s:.1f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def _clock(ms: int) -> str:
    if ms <= 0:
        return "\u2013"
    return datetime.datetime.fromtimestamp(ms / 1000).strftime("%H:%M:%S")


class TransactionsView(QWidget):
    """Cards, the open-transactions table (hanging rows in red) and the held-partitions table."""

    def __init__(self, session: Any, interval_ms: int = 2000) -> None:
        super().__init__()
        self.session = session
        self.controller = TransactionsController(session)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(18, 14, 18, 14)
        layout.setSpacing(10)
        header, self.subtitle = page_header(
            "Transactions", "Open transactions, hanging ones (open longer than their "
            "timeout), and partitions whose last stable offset holds read_committed "
            "consumers back.")
        layout.addWidget(header)
        self.card_ids = Card("transactional ids")
        self.card_open = Card("open transactions")
        self.card_hanging = Card("hanging")
        self.card_held = Card("partitions held (LSO < HW)")
        self.refresh_button = button("Refresh", tooltip="Poll transactions now")
        self.refresh_button.setObjectName("txn_refresh")
        layout.addLayout(hbox(self.card_ids, self.card_open, self.card_hanging, self.card_held,
                              None, self.refresh_button))
        layout.addWidget(section("Open transactions"))
        self.open_table = _table("txn_open", [
            "Transactional id", "State", "Producer id", "Epoch", "Coordinator", "Started",
            "Open for", "Timeout", "Partitions"], numeric=(2, 3, 4, 6, 7))
        self.open_table.empty_hint = EmptyHint(self.open_table, "No open transactions.")
        layout.addWidget(self.open_table, 3)
        layout.addWidget(section("Partitions held back by an open transaction"))
        self.held_table = _table("txn_held", [
            "Topic", "Partition", "LSO", "High watermark", "Held records", "Producer ids",
            "Transactional ids"], numeric=(1, 2, 3, 4))
        self.held_table.empty_hint = EmptyHint(
            self.held_table, "No partition is held back: every last stable offset is at its "
                             "high watermark.")
        layout.addWidget(self.held_table, 2)
        self.status = QLabel("")
        self.status.setObjectName("txn_status")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)

        self.refresh_button.clicked.connect(self.refresh)
        self.controller.snapshot.connect(self.show_snapshot)
        self.controller.failed.connect(self.status.setText)
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._tick)
        self.timer.start()

    def refresh(self) -> None:
        self.controller.refresh()

    def _tick(self) -> None:
        if self.isVisible():
            self.controller.refresh()

    def show_snapshot(self, snap: TransactionsSnapshot) -> None:
        hanging = snap.hanging
        self.card_ids.set(str(len(snap.states)))
        self.card_open.set(str(len(snap.open)), "warn" if snap.open else "")
        self.card_hanging.set(str(len(hanging)), "bad" if hanging else "ok")
        self.card_held.set(str(len(snap.held)), "warn" if snap.held else "ok")
        rows = [[_Item(t.transactional_id), _Item(t.state + (" (hanging)" if t.hanging else "")),
                 _Item(str(t.producer_id), t.producer_id), _Item(str(t.producer_epoch),
                                                                 t.producer_epoch),
                 _Item(str(t.coordinator_id), t.coordinator_id),
                 _Item(_clock(t.start_ms), t.start_ms),
                 _Item(_duration(t.open_ms), t.open_ms),
                 _Item(_duration(t.timeout_ms), t.timeout_ms),
                 _Item(", ".join(f"{tp}-{p}" for tp, p in t.partitions), len(t.partitions))]
                for t in snap.open]
        _fill(self.open_table, rows, [t.hanging for t in snap.open])
        held = [[_Item(h.topic), _Item(str(h.partition), h.partition),
                 _Item(f"{h.lso:,}", h.lso), _Item(f"{h.high_watermark:,}", h.high_watermark),
                 _Item(f"{h.held:,}", h.held),
                 _Item(", ".join(map(str, h.producers)) or "?"),
                 _Item(", ".join(h.transactional_ids) or "\u2013")] for h in snap.held]
        _fill(self.held_table, held)
        when = datetime.datetime.fromtimestamp(snap.taken_at).strftime("%H:%M:%S")
        text = f"{snap.partitions_checked:,} partitions checked at {when}."
        if snap.errors:
            text += " " + "; ".join(snap.errors[:3])
        self.status.setText(text)

    def on_snapshot(self, snap: Any) -> None:
        """Polled on its own timer (transactions are not in the cluster snapshot)."""

    def closeEvent(self, event: Any) -> None:
        self.timer.stop()
        self.controller.close()
        super().closeEvent(event)


PAGE = PageSpec("Transactions", "⇄", 61, TransactionsView)
