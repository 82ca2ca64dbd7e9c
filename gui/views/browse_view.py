"""Browse messages: choose where to start, read, filter, inspect, and tail live."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QDateTime, Qt, QTimer
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDateTimeEdit,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from gui.bridge.backend import BrowseSpec
from gui.models.messages import MessageFilterProxy, MessagesModel, render, ts_text
from gui.views.common import (
    button,
    describe_error,
    hbox,
    make_table,
    page_header,
    selected_item,
    show_error,
)

NOT_READ = "No messages read yet. Choose a topic and press Read (Enter)."


class BrowseView(QWidget):
    """Reads records with the backend's browser; a live tail polls for new ones."""

    def __init__(self, session: Any) -> None:
        super().__init__()
        self.session = session
        self._tail_positions: dict[int, int] | None = None
        self._tail_busy = False
        layout = QVBoxLayout(self)
        layout.setContentsMargins(18, 14, 18, 14)
        layout.setSpacing(10)
        header, self.subtitle = page_header("Browse messages", "")
        layout.addWidget(header)

        self.topic = QComboBox()
        self.topic.setObjectName("browse_topic")
        self.topic.setEditable(True)
        self.topic.setMinimumWidth(200)
        self.partition = QComboBox()
        self.partition.addItem("All partitions", None)
        self.start = QComboBox()
        self.start.setObjectName("browse_start")
        for label, key in (("Latest N", "latest"), ("Earliest", "earliest"),
                           ("From offset", "offset"), ("From timestamp", "timestamp")):
            self.start.addItem(label, key)
        self.value = QSpinBox()
        self.value.setRange(0, 2**31 - 1)
        self.value.setValue(100)
        self.when = QDateTimeEdit(QDateTime.currentDateTime().addSecs(-600))
        self.when.setDisplayFormat("yyyy-MM-dd HH:mm:ss")
        self.when.setCalendarPopup(True)
        self.when.setVisible(False)
        self.limit = QSpinBox()
        self.limit.setRange(1, 5000)
        self.limit.setValue(500)
        self.limit.setPrefix("max ")
        self.read_button = button("Read", primary=True,
                                  tooltip="Read the records (Enter in the topic box)")
        self.read_button.setObjectName("browse_read")
        self.live = QCheckBox("Live tail")
        self.live.setObjectName("browse_live")
        self.live.setToolTip("Keep reading: append new records every second")
        self.limit.setToolTip("At most this many records per read")
        self.start.setToolTip("Where to start reading in each partition")
        layout.addLayout(hbox(QLabel("Topic"), self.topic, self.partition, self.start,
                              self.value, self.when, self.limit, self.read_button, self.live,
                              None))

        self.filter = QLineEdit()
        self.filter.setObjectName("browse_filter")
        self.filter.setPlaceholderText("Filter: substring of key, value or headers   (Ctrl+F)")
        self.filter.setClearButtonEnabled(True)
        self.format = QComboBox()
        for label, key in (("Auto", "auto"), ("JSON", "json"), ("Text", "text"), ("Hex", "hex")):
            self.format.addItem(label, key)
        layout.addLayout(hbox(self.filter, QLabel("Show as"), self.format))

        self.model = MessagesModel(self)
        self.proxy = MessageFilterProxy(self)
        self.proxy.setSourceModel(self.model)
        # Value takes what is left and gives way first (the detail pane shows it whole)
        self.table = make_table(self.proxy, "MessagesTable", stretch=4, max_width=240,
                                stretch_floor=120, empty=NOT_READ)
        self.table.sortByColumn(2, Qt.SortOrder.AscendingOrder)
        self.detail = QPlainTextEdit()
        self.detail.setObjectName("message_detail")
        self.detail.setReadOnly(True)
        self.detail.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        split = QSplitter(Qt.Orientation.Horizontal)
        split.setObjectName("BrowseSplit")
        split.addWidget(self.table)
        split.addWidget(self.detail)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        self.splitter = split
        layout.addWidget(split, 1)

        self.read_button.clicked.connect(self.read)
        if self.topic.lineEdit() is not None:
            self.topic.lineEdit().returnPressed.connect(self.read)
        self._read_once = False
        self.filter.textChanged.connect(self.proxy.set_needle)
        self.filter.textChanged.connect(lambda _t: self._update_subtitle())
        self.format.currentIndexChanged.connect(lambda _i: self._show_detail())
        self.table.selectionModel().selectionChanged.connect(lambda *_: self._show_detail())
        self.start.currentIndexChanged.connect(self._start_changed)
        self.topic.currentTextChanged.connect(self._topic_changed)
        self.live.toggled.connect(self._live_toggled)
        self._timer = QTimer(self)
        self._timer.setInterval(1000)
        self._timer.timeout.connect(self._tail_tick)
        self._partitions: dict[str, int] = {}
        self._start_changed(0)  # "N = 100", not a bare 100

    # -- inputs ----------------------------------------------------------------------------

    def on_snapshot(self, snap: Any) -> None:
        names = [t.name for t in snap.topics if not t.internal]
        self._partitions = {t.name: len(t.partitions) for t in snap.topics}
        existing = [self.topic.itemText(i) for i in range(self.topic.count())]
        if existing != names:
            current = self.topic.currentText()
            self.topic.blockSignals(True)
            self.topic.clear()
            self.topic.addItems(names)
            self.topic.setCurrentText(current)
            self.topic.blockSignals(False)
        self._topic_changed(self.topic.currentText())

    def set_topic(self, name: str) -> None:
        self.topic.setCurrentText(name)

    def _topic_changed(self, name: str) -> None:
        n = self._partitions.get(name, 0)
        if self.partition.count() - 1 == n:
            return
        self.partition.clear()
        self.partition.addItem("All partitions", None)
        for p in range(n):
            self.partition.addItem(f"Partition {p}", p)

    def _start_changed(self, _i: int) -> None:
        mode = self.start.currentData()
        self.value.setVisible(mode in ("latest", "offset"))
        self.when.setVisible(mode == "timestamp")
        if mode == "latest":
            self.value.setPrefix("N = ")
        elif mode == "offset":
            self.value.setPrefix("offset ")

    def spec(self) -> BrowseSpec:
        mode = self.start.currentData()
        value = (int(self.when.dateTime().toMSecsSinceEpoch()) if mode == "timestamp"
                 else self.value.value())
        return BrowseSpec(topic=self.topic.currentText().strip(),
                          partition=self.partition.currentData(), start=mode, value=value,
                          limit=self.limit.value())

    # -- reading ---------------------------------------------------------------------------

    def read(self) -> None:
        spec = self.spec()
        if not spec.topic:
            self.subtitle.setText("Choose a topic to read first.")
            self.topic.setFocus()
            return
        self.read_button.setEnabled(False)
        self.subtitle.setText(f"Reading {spec.topic}…")
        self.session.browse(spec, on_ok=self._loaded,
                            on_err=lambda exc: self._failed(spec.topic, exc))

    def _loaded(self, records: list[Any]) -> None:
        self.read_button.setEnabled(True)
        self.model.clear()
        self.model.set_items(records)
        self._tail_positions = None
        positions: dict[int, int] = {}
        for r in records:
            positions[r.partition] = max(positions.get(r.partition, -1), r.offset + 1)
        self._tail_positions = positions or None
        self._read_once = True
        self._update_subtitle()
        if records:
            self.table.scrollToBottom()

    def _failed(self, topic: str, exc: BaseException) -> None:
        # the rows of an earlier read would pass for this topic's: drop them
        self.read_button.setEnabled(True)
        self.model.clear()
        self._tail_positions = None
        self.detail.clear()
        reason = describe_error(exc).split("\n")[0]
        self.subtitle.setText(f"Could not read {topic}")
        self.table.empty_hint.set_text(f"Could not read {topic}: {reason}")
        show_error(self, f"Could not read messages of {topic}", exc)

    def _update_subtitle(self) -> None:
        shown, total = self.proxy.rowCount(), self.model.rowCount()
        text = f"{total:,} record(s)"
        if shown != total:
            text += f", {shown:,} match the filter"
        if self.live.isChecked():
            text += " · live"
        self.subtitle.setText(text)
        needle = self.filter.text().strip()
        if total and needle:
            hint = f"No message matches \u201c{needle}\u201d."
        elif self._read_once:
            hint = ("No records there: the topic (or partition) has none from that "
                    "position." + (" Live tail is waiting for new ones." if
                                   self.live.isChecked() else ""))
        else:
            hint = NOT_READ
        self.table.empty_hint.set_text(hint)

    def _show_detail(self) -> None:
        r = selected_item(self.table)
        if r is None:
            self.detail.clear()
            return
        mode = self.format.currentData()
        lines = [f"topic      {r.topic}", f"partition  {r.partition}", f"offset     {r.offset}",
                 f"timestamp  {ts_text(r.timestamp_ms)}  ({r.timestamp_ms})", "",
                 "── key ──", render(r.key, mode if mode != "json" else "auto"), "",
                 "── value ──", render(r.value, mode), ""]
        if r.headers:
            lines.append("── headers ──")
            lines += [f"{k}: {render(v, 'text' if mode != 'hex' else 'hex')}"
                      for k, v in r.headers]
        self.detail.setPlainText("\n".join(lines))

    # -- live tail -------------------------------------------------------------------------

    def _live_toggled(self, on: bool) -> None:
        if on:
            self._timer.start()
            self._tail_tick()
        else:
            self._timer.stop()
        self._update_subtitle()

    def _tail_tick(self) -> None:
        topic = self.topic.currentText().strip()
        if self._tail_busy or not topic:
            return
        self._tail_busy = True
        self.session.tail(topic, self.partition.currentData(), self._tail_positions,
                          on_ok=self._tailed, on_err=self._tail_failed)

    def _tailed(self, result: tuple[list[Any], dict[int, int]]) -> None:
        self._tail_busy = False
        records, positions = result
        self._tail_positions = positions
        self._read_once = True
        if records:
            bar = self.table.verticalScrollBar()
            at_bottom = bar.value() >= bar.maximum() - 4
            self.model.append(records)
            if at_bottom:
                self.table.scrollToBottom()
        self._update_subtitle()

    def _tail_failed(self, exc: BaseException) -> None:
        self._tail_busy = False
        self.subtitle.setText(f"Live tail error: {exc}")
