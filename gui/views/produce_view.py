"""Produce panel: topic, partition or key hash, key/value templates, headers, count and rate."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from gui.bridge.backend import ProduceReport, ProduceSpec
from gui.views.common import button, hbox, page_header, show_error

TEMPLATES = {
    "JSON order": ('{"order_id": {counter}, "amount": {random}, "ts": {timestamp}}',
                   "customer-{counter}"),
    "Plain text": ("hello {counter}", ""),
    "Sensor reading": ('{"sensor": "s-{counter}", "value": {random}, "at": {timestamp}}',
                       "s-{counter}"),
}


class ProduceView(QWidget):
    """Produces ``count`` records at ``rate``/s; progress bar and delivery report."""

    def __init__(self, session: Any) -> None:
        super().__init__()
        self.session = session
        self.running: Any = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(18, 14, 18, 14)
        layout.setSpacing(10)
        header, _ = page_header("Produce", "Write records to a topic. Templates expand "
                                "{counter}, {random} and {timestamp}.")
        layout.addWidget(header)

        box = QGroupBox("Record")
        form = QFormLayout(box)
        self.topic = QComboBox()
        self.topic.setObjectName("produce_topic")
        self.topic.setEditable(True)
        self.topic.setMinimumWidth(260)
        self.partition = QComboBox()
        self.partition.setObjectName("produce_partition")
        self.partition.addItem("By key hash / partitioner", None)
        self.template = QComboBox()
        self.template.addItem("Custom")
        self.template.addItems(list(TEMPLATES))
        self.key = QPlainTextEdit()
        self.key.setObjectName("produce_key")
        self.key.setPlaceholderText("key (empty: null key)")
        self.key.setFixedHeight(34)
        self.value = QPlainTextEdit()
        self.value.setObjectName("produce_value")
        self.value.setPlaceholderText('value, e.g. {"id": {counter}}')
        self.value.setFixedHeight(90)
        self.headers = QPlainTextEdit()
        self.headers.setObjectName("produce_headers")
        self.headers.setPlaceholderText("headers, one name=value a line")
        self.headers.setFixedHeight(52)
        form.addRow("Topic", self.topic)
        form.addRow("Partition", self.partition)
        form.addRow("Template", self.template)
        form.addRow("Key", self.key)
        form.addRow("Value", self.value)
        form.addRow("Headers", self.headers)
        layout.addWidget(box)

        run = QGroupBox("Run")
        run_form = QFormLayout(run)
        self.count = QSpinBox()
        self.count.setObjectName("produce_count")
        self.count.setRange(1, 10_000_000)
        self.count.setValue(1)
        self.rate = QDoubleSpinBox()
        self.rate.setObjectName("produce_rate")
        self.rate.setRange(0, 1_000_000)
        self.rate.setDecimals(0)
        self.rate.setSpecialValueText("as fast as possible")
        self.acks = QComboBox()
        self.acks.addItem("all (-1)", -1)
        self.acks.addItem("leader (1)", 1)
        self.acks.addItem("none (0)", 0)
        run_form.addRow("Count", self.count)
        run_form.addRow("Rate (records/s)", self.rate)
        run_form.addRow("Acks", self.acks)
        layout.addWidget(run)

        self.send_button = button("Produce", primary=True, tooltip="Send the records (Ctrl+Enter)")
        self.send_button.setObjectName("produce_send")
        self.cancel_button = button("Cancel", tooltip="Stop producing (records already sent "
                                                      "stay)")
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setObjectName("produce_progress")
        self.progress.setValue(0)
        layout.addLayout(hbox(self.progress, self.cancel_button, self.send_button))
        self.report = QLabel("")
        self.report.setObjectName("produce_report")
        self.report.setWordWrap(True)
        layout.addWidget(self.report)
        layout.addStretch(1)

        self.send_button.clicked.connect(self.send)
        self.cancel_button.clicked.connect(self.cancel)
        self.template.currentTextChanged.connect(self._apply_template)
        self.topic.currentTextChanged.connect(self._topic_changed)
        self._partitions: dict[str, int] = {}

    def on_snapshot(self, snap: Any) -> None:
        names = [t.name for t in snap.topics if not t.internal]
        self._partitions = {t.name: len(t.partitions) for t in snap.topics}
        current = self.topic.currentText()
        existing = [self.topic.itemText(i) for i in range(self.topic.count())]
        if existing != names:
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
        current = self.partition.currentData()
        self.partition.clear()
        self.partition.addItem("By key hash / partitioner", None)
        for p in range(n):
            self.partition.addItem(f"Partition {p}", p)
        if current is not None and current < n:
            self.partition.setCurrentIndex(current + 1)

    def _apply_template(self, name: str) -> None:
        if name in TEMPLATES:
            value, key = TEMPLATES[name]
            self.value.setPlainText(value)
            self.key.setPlainText(key)

    def spec(self) -> ProduceSpec:
        headers = []
        for line in self.headers.toPlainText().splitlines():
            if line.strip():
                k, _, v = line.partition("=")
                headers.append((k.strip(), v.strip()))
        return ProduceSpec(
            topic=self.topic.currentText().strip(), value=self.value.toPlainText(),
            key=self.key.toPlainText(), partition=self.partition.currentData(),
            headers=tuple(headers), count=self.count.value(), rate=self.rate.value(),
            acks=self.acks.currentData())

    def send(self) -> None:
        if self.running is not None:
            return
        spec = self.spec()
        if not spec.topic:
            self.report.setText("Choose a topic first.")
            return
        self.progress.setRange(0, spec.count)
        self.progress.setValue(0)
        text = f"Producing {spec.count:,} record(s) to {spec.topic}…"
        if self._partitions and spec.topic not in self._partitions:
            text += (f"  {spec.topic} is not an existing topic: the broker creates it on the "
                     "first write if auto.create.topics.enable is on (a few seconds), else "
                     "the produce fails.")
        self.report.setText(text)
        self.send_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.running = self.session.produce(spec, self._progress, on_ok=self._done,
                                            on_err=self._failed)

    def _progress(self, done: int, total: int) -> None:
        self.progress.setMaximum(total)
        self.progress.setValue(done)

    def _finish(self) -> None:
        self.running = None
        self.send_button.setEnabled(True)
        self.cancel_button.setEnabled(False)

    def _done(self, report: ProduceReport) -> None:
        self._finish()
        self.progress.setValue(report.delivered)
        rate = report.delivered / report.elapsed_s if report.elapsed_s > 0 else 0
        parts = ", ".join(f"p{p}: {a:,}\u2013{b:,}" for p, (a, b) in sorted(report.offsets.items()))
        text = (f"Delivered {report.delivered:,} of {report.requested:,} in "
                f"{report.elapsed_s:.2f}s ({rate:,.{0 if rate >= 10 else 1}f} records/s).")
        if parts:
            text += f"  Offsets {parts}."
        if report.failed:
            text += f"  {report.failed:,} failed: {'; '.join(report.errors[:3])}"
        self.report.setText(text)

    def _failed(self, exc: BaseException) -> None:
        self._finish()
        self.report.setText(f"Failed: {exc}")
        if not isinstance(exc, Exception) or "Cancelled" not in type(exc).__name__:
            show_error(self, "Produce failed", exc)

    def cancel(self) -> None:
        if self.running is not None:
            self.running.cancel()
