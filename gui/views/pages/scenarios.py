"""Scenarios page: pick a bundled scenario, run it against the cluster, watch its event log."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFontDatabase, QTextCharFormat
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from gui.bridge.scenarios import (
    ScenarioController,
    ScenarioError,
    ScenarioEvent,
    ScenarioSummary,
    bundled_files,
    controller_for,
    read_scenario,
)
from gui.views.common import button, hbox, page_header, section
from gui.views.pages import PageSpec

KIND_COLORS = {"fault": "#c0392b", "warning": "#b9770e", "done": "#1e8449",
               "setup": "#2e86c1", "action": "#7d3c98"}


class ScenariosView(QWidget):
    """Scenario list on the left; details, run controls and the live event log on the right."""

    def __init__(self, session: Any) -> None:
        super().__init__()
        self.session = session
        self.controller: ScenarioController = controller_for(session)
        self.scenario: Any = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(18, 14, 18, 14)
        layout.setSpacing(10)
        header, self.subtitle = page_header(
            "Scenarios", "Seeded load, consumer groups (one deliberately slow) and timed "
            "faults from a YAML file, run against this cluster.")
        layout.addWidget(header)

        split = QSplitter(Qt.Orientation.Horizontal)
        left = QWidget()
        left_l = QVBoxLayout(left)
        left_l.setContentsMargins(0, 0, 0, 0)
        left_l.addWidget(section("Bundled scenarios"))
        self.files = QListWidget()
        self.files.setObjectName("scenario_files")
        left_l.addWidget(self.files, 1)
        split.addWidget(left)

        right = QWidget()
        right_l = QVBoxLayout(right)
        right_l.setContentsMargins(8, 0, 0, 0)
        box = QGroupBox("Scenario")
        form = QFormLayout(box)
        self.description = QLabel("Choose a scenario.")
        self.description.setObjectName("scenario_description")
        self.description.setWordWrap(True)
        self.plan = QLabel("")
        self.plan.setObjectName("scenario_plan")
        self.plan.setWordWrap(True)
        self.seed = QSpinBox()
        self.seed.setObjectName("scenario_seed")
        self.seed.setRange(0, 2**31 - 1)
        self.duration = QDoubleSpinBox()
        self.duration.setObjectName("scenario_duration")
        self.duration.setRange(1, 24 * 3600)
        self.duration.setDecimals(0)
        self.duration.setSuffix(" s")
        form.addRow("About", self.description)
        form.addRow("Plan", self.plan)
        form.addRow("Seed", self.seed)
        form.addRow("Duration", self.duration)
        right_l.addWidget(box)
        self.run_button = button("Run scenario", primary=True,
                                 tooltip="Run it against the connected cluster")
        self.run_button.setObjectName("scenario_run")
        self.stop_button = button("Stop", danger=True, tooltip="Stop the running scenario")
        self.stop_button.setObjectName("scenario_stop")
        self.stop_button.setEnabled(False)
        self.status = QLabel("")
        self.status.setObjectName("scenario_status")
        right_l.addLayout(hbox(self.status, None, self.stop_button, self.run_button))
        right_l.addWidget(section("Event log"))
        self.log = QPlainTextEdit()
        self.log.setObjectName("scenario_log")
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(5000)
        self.log.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        right_l.addWidget(self.log, 1)
        split.addWidget(right)
        split.setStretchFactor(1, 3)
        split.setSizes([260, 800])
        layout.addWidget(split, 1)

        self.files.currentItemChanged.connect(self._selected)
        self.run_button.clicked.connect(self.run)
        self.stop_button.clicked.connect(self.controller.stop)
        self.controller.event.connect(self._event)
        self.controller.finished.connect(self._finished)
        self.controller.failed.connect(self._failed)
        self.controller.running_changed.connect(self._running)
        self.reload()

    # the list ------------------------------------------------------------------------
    def reload(self) -> None:
        self.files.clear()
        for path in bundled_files():
            item = QListWidgetItem(path.stem)
            item.setData(Qt.ItemDataRole.UserRole, path)
            item.setToolTip(str(path))
            self.files.addItem(item)
        if self.files.count():
            self.files.setCurrentRow(0)

    def select(self, name: str) -> bool:
        for i in range(self.files.count()):
            if self.files.item(i).text() == name:
                self.files.setCurrentRow(i)
                return True
        return False

    def _selected(self, item: QListWidgetItem | None, _previous: Any = None) -> None:
        if item is None:
            return
        try:
            self.scenario = read_scenario(item.data(Qt.ItemDataRole.UserRole))
        except ScenarioError as exc:
            self.scenario = None
            self.description.setText(f"Invalid scenario: {exc}")
            self.plan.setText("")
            return
        sc = self.scenario
        self.description.setText(sc.description.strip() or sc.name)
        topics = ", ".join(f"{t.name} ({t.partitions}p)" for t in sc.topics) or "none"
        producers = ", ".join(f"{p.topic} @ {p.rate:g}/s" for p in sc.producers) or "none"
        groups = ", ".join(f"{c.group}" + (f" (slow, {c.processing_ms:g} ms/record)"
                                           if c.processing_ms else "")
                           for c in sc.consumers) or "none"
        faults = "; ".join(f"{f.at:g}s {f.fault} {f.target_text()}"
                           + (f" {f.ms:g} ms" if f.fault == "latency" else "")
                           + (f" to {f.reset_text()}" if f.is_action else "")
                           for f in sc.faults) or "none"
        self.plan.setText(f"Topics: {topics}\nProducers: {producers}\nGroups: {groups}\n"
                          f"Faults: {faults}")
        self.seed.setValue(sc.seed)
        self.duration.setValue(sc.duration)

    # running -------------------------------------------------------------------------
    def run(self) -> None:
        if self.scenario is None:
            self.status.setText("Choose a scenario first.")
            return
        scenario = self.scenario.with_overrides(self.seed.value(), self.duration.value())
        self.log.clear()
        if self.controller.run(scenario):
            self.status.setText(f"Running {scenario.name}…")

    def _running(self, running: bool) -> None:
        self.run_button.setEnabled(not running)
        self.stop_button.setEnabled(running)
        self.files.setEnabled(not running)

    def _append(self, text: str, kind: str = "") -> None:
        fmt = QTextCharFormat()
        color = KIND_COLORS.get(kind)
        if color:
            fmt.setForeground(QColor(color))
        cursor = self.log.textCursor()
        cursor.movePosition(cursor.MoveOperation.End)
        cursor.insertText(text + "\n", fmt)
        self.log.setTextCursor(cursor)
        self.log.ensureCursorVisible()

    def _event(self, event: ScenarioEvent) -> None:
        self._append(event.line(), event.kind)

    def _finished(self, summary: ScenarioSummary) -> None:
        for line in summary.lines():
            self._append(line, "done")
        self.status.setText(f"{summary.name}: {summary.outcome} "
                            f"after {summary.elapsed_s:.0f}s, "
                            f"{sum(summary.produced.values()):,} produced, "
                            f"{len(summary.faults)} fault(s)")

    def _failed(self, message: str) -> None:
        self._append(f"failed: {message}", "warning")
        self.status.setText(message)

    def on_snapshot(self, snap: Any) -> None:
        """The event log comes from the runner, not from snapshots."""

    def closeEvent(self, event: Any) -> None:
        self.controller.stop()
        super().closeEvent(event)


PAGE = PageSpec("Scenarios", "▶", 50, ScenariosView)
