"""Broker logs page: every broker's log file, followed live; filter by broker, level, text."""

from __future__ import annotations

from typing import Any

from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import QCheckBox, QComboBox, QHeaderView, QLineEdit, QVBoxLayout, QWidget

from gui.models.logs import LEVELS, LogFilterProxy, LogModel
from gui.views.common import hbox, make_table, page_header

NO_LOGS = ("Broker log files are only available for the local cluster (attached clusters "
           "keep their logs on their hosts).")


class LogsView(QWidget):
    """Shows lines delivered by gui.bridge.logs.LogFollower (via ``append``)."""

    def __init__(self) -> None:
        super().__init__()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(18, 14, 18, 14)
        layout.setSpacing(10)
        header, self.subtitle = page_header("Broker logs", "")
        layout.addWidget(header)
        self.broker = QComboBox()
        self.broker.setObjectName("log_broker")
        self.broker.addItem("All brokers", None)
        self.level = QComboBox()
        self.level.setObjectName("log_level")
        for name in LEVELS:
            self.level.addItem(f"{name} and above" if name != "DEBUG" else "All levels", name)
        self.level.setCurrentIndex(1)
        self.filter = QLineEdit()
        self.filter.setObjectName("log_filter")
        self.filter.setPlaceholderText("Filter lines…   (Ctrl+F)")
        self.filter.setClearButtonEnabled(True)
        self.follow = QCheckBox("Follow")
        self.follow.setChecked(True)
        self.follow.setToolTip("Keep the newest lines in view")
        layout.addLayout(hbox(self.broker, self.level, self.filter, self.follow))
        self.model = LogModel(self)
        self.proxy = LogFilterProxy(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.configure(min_level="INFO")
        self.table = make_table(self.proxy, "LogTable", fit=False)
        self.table.setSortingEnabled(False)
        self.table.setAlternatingRowColors(False)
        self.table.verticalHeader().setDefaultSectionSize(20)
        self.table.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        layout.addWidget(self.table, 1)
        self.broker.currentIndexChanged.connect(
            lambda _i: self.proxy.configure(broker=self.broker.currentData()))
        self.level.currentIndexChanged.connect(
            lambda _i: self.proxy.configure(min_level=self.level.currentData()))
        self.filter.textChanged.connect(lambda t: self.proxy.configure(needle=t))
        for signal in (self.filter.textChanged, self.level.currentIndexChanged,
                       self.broker.currentIndexChanged):
            signal.connect(lambda *_: self._update_empty())
        self._source: str | None = None
        self._brokers: set[int] = set()
        self.set_source(None)

    def set_source(self, where: str | None) -> None:
        self._source = where
        self.subtitle.setText(where or NO_LOGS)
        self._update_empty()

    def _update_empty(self) -> None:
        """Why no line shows: no log source, none written yet, or the filters hide them."""
        needle = self.filter.text().strip()
        if getattr(self, "_source", None) is None:
            text = NO_LOGS
        elif self.model.rowCount() == 0:
            text = "No log lines yet."
        elif needle:
            text = f"No line matches \u201c{needle}\u201d at this level."
        else:
            text = "No line at this level for this broker: choose All levels or All brokers."
        self.table.empty_hint.set_text(text)

    def on_snapshot(self, snap: Any) -> None:
        """Logs come from the log follower, not from snapshots."""

    def append(self, lines: list[tuple[int, str, str]]) -> None:
        for broker_id in sorted({b for b, _, _ in lines} - self._brokers):
            self._brokers.add(broker_id)
            self.broker.addItem(f"broker {broker_id}", broker_id)
        self.model.append(lines)
        if self.proxy.rowCount() == 0:
            self._update_empty()
        if self.follow.isChecked():
            self.table.scrollToBottom()
