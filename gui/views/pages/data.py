"""Data page: move replicas (reassign, replication factor, decommission, rolling restart) and
move messages (export, replay), group offsets, cluster snapshots and topology scripts.

Every action runs on the bridge's asyncio thread (gui.bridge.data.DataTools); progress lands
in the progress bar, the status line and, for reassignments, a per-partition table with each
replica's role, ISR membership and lag (bytes behind the leader, and records behind from the
brokers' metrics when the cluster is ours). Failures open a clear, non-blocking dialog.
"""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import QDateTime
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDateTimeEdit,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from gui.bridge.data import DataTools, MoveRow, parse_ids
from gui.views.common import EmptyHint, TableHeader, button, hbox, page_header, section, show_error
from gui.views.pages import PageSpec

MOVE_COLUMNS = ("Partition", "Replicas", "Adding", "Removing", "ISR", "Leader", "Progress",
                "Replica lag")


def _ids(values: tuple[int, ...]) -> str:
    return ", ".join(str(v) for v in values) or "-"


def _form(*rows: tuple[str, QWidget]) -> QFormLayout:
    form = QFormLayout()
    form.setHorizontalSpacing(12)
    for label, widget in rows:
        form.addRow(label, widget)
    return form


class DataPage(QWidget):
    """The Data page (see the module doc)."""

    def __init__(self, session: Any) -> None:
        super().__init__()
        self.session = session
        self.tools = DataTools(session)
        self.last_error: QMessageBox | None = None
        self.last_result: Any = None
        self.moves: list[MoveRow] = []
        self._lag: dict[tuple[str, int], dict[int, int]] = {}
        self._running = 0
        layout = QVBoxLayout(self)
        layout.setContentsMargins(18, 14, 18, 14)
        layout.setSpacing(10)
        header, self.subtitle = page_header(
            "Data", "Move replicas and messages: reassign, decommission, rolling restart, "
                    "export, replay, offsets, snapshots")
        layout.addWidget(header)
        self.tabs = QTabWidget()
        self.tabs.addTab(self._replicas_tab(), "Replicas")
        self.tabs.addTab(self._brokers_tab(), "Brokers")
        self.tabs.addTab(self._messages_tab(), "Export && replay")
        self.tabs.addTab(self._offsets_tab(), "Offsets")
        self.tabs.addTab(self._snapshots_tab(), "Snapshots && scripts")
        layout.addWidget(self.tabs, 1)
        self.progress = QProgressBar()
        self.progress.setObjectName("data_progress")
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.status = QLabel("Ready.")
        self.status.setObjectName("data_status")
        self.status.setWordWrap(True)
        self.progress.setMaximumWidth(420)
        layout.addLayout(hbox(self.status, self.progress))

    # tabs -------------------------------------------------------------------------------
    def _topic_combo(self, name: str) -> QComboBox:
        combo = QComboBox()
        combo.setObjectName(name)
        combo.setEditable(True)
        combo.setMinimumWidth(220)
        return combo

    def _replicas_tab(self) -> QWidget:
        tab = QWidget()
        v = QVBoxLayout(tab)
        self.re_topic = self._topic_combo("reassign_topic")
        self.re_partitions = QLineEdit()
        self.re_partitions.setObjectName("reassign_partitions")
        self.re_partitions.setPlaceholderText("all, or e.g. 0,2")
        self.re_replicas = QLineEdit()
        self.re_replicas.setObjectName("reassign_replicas")
        self.re_replicas.setPlaceholderText("target brokers, e.g. 2,3")
        self.re_button = button("Reassign", primary=True,
                                tooltip="Add the target replicas, let them catch up and join "
                                        "the ISR, then drop the others (KIP-455)")
        self.re_cancel = button("Cancel reassignment",
                                tooltip="Go back to the original replicas")
        self.rf_spin = QSpinBox()
        self.rf_spin.setObjectName("rf_spin")
        self.rf_spin.setRange(1, 16)
        self.rf_spin.setValue(3)
        self.rf_button = button("Change replication factor",
                                tooltip="Add or remove replicas of every partition of the "
                                        "topic to reach this replication factor")
        v.addLayout(_form(("Topic", self.re_topic), ("Partitions", self.re_partitions),
                          ("Target replicas", self.re_replicas)))
        v.addLayout(hbox(self.re_button, self.re_cancel, None, QLabel("Replication factor"),
                         self.rf_spin, self.rf_button))
        v.addWidget(section("Partitions being moved"))
        self.move_table = QTableWidget(0, len(MOVE_COLUMNS))
        self.move_table.setObjectName("move_table")
        # columns fit their contents (labels never clipped), Replica lag takes what is left
        self.move_table.setHorizontalHeader(TableHeader(self.move_table, stretch="last"))
        self.move_table.setHorizontalHeaderLabels(MOVE_COLUMNS)
        self.move_table.verticalHeader().setVisible(False)
        self.move_table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.move_table.empty_hint = EmptyHint(
            self.move_table, "No partition is being moved. Choose a topic and target replicas, "
                             "then Reassign.")
        v.addWidget(self.move_table, 1)
        self.re_button.clicked.connect(self.start_reassign)
        self.re_cancel.clicked.connect(self.cancel_reassign)
        self.rf_button.clicked.connect(self.change_rf)
        return tab

    def _brokers_tab(self) -> QWidget:
        tab = QWidget()
        v = QVBoxLayout(tab)
        v.addWidget(section("Decommission a broker"))
        v.addWidget(QLabel("Moves every replica off the broker to the least-loaded others "
                           "(keeping each replication factor); then it can be stopped."))
        self.de_broker = QSpinBox()
        self.de_broker.setObjectName("decommission_broker")
        self.de_broker.setRange(0, 10000)
        self.de_broker.setValue(1)
        self.de_stop = QCheckBox("Stop it afterwards")
        self.de_button = button("Decommission", danger=True,
                                tooltip="Move every replica off this broker")
        v.addLayout(hbox(QLabel("Broker"), self.de_broker, self.de_stop, self.de_button, None))
        v.addWidget(section("Rolling restart"))
        v.addWidget(QLabel("Restarts the brokers one by one through the supervisor, waiting "
                           "for zero under-replicated partitions between them."))
        self.rr_button = button("Rolling restart")
        self.rr_button.setObjectName("rolling_restart")
        v.addLayout(hbox(self.rr_button, None))
        v.addStretch(1)
        self.de_button.clicked.connect(lambda: self._confirm(
            "Decommission broker",
            f"Move every replica off broker {self.de_broker.value()}"
            + (" and stop it" if self.de_stop.isChecked() else "") + "?",
            self.decommission))
        self.rr_button.clicked.connect(lambda: self._confirm(
            "Rolling restart", "Restart every broker, one at a time?", self.rolling_restart))
        return tab

    def _messages_tab(self) -> QWidget:
        tab = QWidget()
        v = QVBoxLayout(tab)
        v.addWidget(section("Export a selection"))
        self.ex_topic = self._topic_combo("export_topic")
        self.ex_partitions = QLineEdit()
        self.ex_partitions.setPlaceholderText("all, or e.g. 0,1")
        self.ex_from = QLineEdit()
        self.ex_from.setPlaceholderText("first offset (optional)")
        self.ex_to = QLineEdit()
        self.ex_to.setPlaceholderText("end offset, exclusive (optional)")
        self.ex_contains = QLineEdit()
        self.ex_contains.setPlaceholderText("key, value or header contains… (optional)")
        self.ex_format = QComboBox()
        self.ex_format.addItems(["jsonl", "csv"])
        self.ex_path = QLineEdit()
        self.ex_path.setObjectName("export_path")
        self.ex_path.setPlaceholderText("output file")
        browse = button("…", tooltip="Choose the output file")
        browse.clicked.connect(lambda: self._pick_save(self.ex_path, "Export to"))
        self.ex_button = button("Export", primary=True,
                                tooltip="Write the selected records to the file")
        v.addLayout(_form(("Topic", self.ex_topic), ("Partitions", self.ex_partitions),
                          ("Offsets", self._row(self.ex_from, self.ex_to)),
                          ("Filter", self.ex_contains), ("Format", self.ex_format),
                          ("File", self._row(self.ex_path, browse))))
        v.addLayout(hbox(self.ex_button, None))
        v.addWidget(section("Record a time window and replay it"))
        self.rp_topic = self._topic_combo("replay_topic")
        now = QDateTime.currentDateTime()
        self.rp_start = QDateTimeEdit(now.addSecs(-600))
        self.rp_end = QDateTimeEdit(now)
        for edit in (self.rp_start, self.rp_end):
            edit.setDisplayFormat("yyyy-MM-dd HH:mm:ss")
            edit.setCalendarPopup(True)
        self.rp_dest = QLineEdit()
        self.rp_dest.setObjectName("replay_dest")
        self.rp_dest.setPlaceholderText("destination topic")
        self.rp_speed = QDoubleSpinBox()
        self.rp_speed.setRange(0.0, 1000.0)
        self.rp_speed.setValue(1.0)
        self.rp_speed.setSuffix("x")
        self.rp_speed.setToolTip("1x keeps the original timing; 0 sends as fast as possible")
        self.rp_button = button("Replay", tooltip="Produce the window's records into the "
                                                  "destination topic")
        v.addLayout(_form(("Source", self.rp_topic),
                          ("Window", self._row(self.rp_start, QLabel("to"), self.rp_end)),
                          ("Into", self.rp_dest), ("Speed", self.rp_speed)))
        v.addLayout(hbox(self.rp_button, None))
        v.addStretch(1)
        self.ex_button.clicked.connect(self.export)
        self.rp_button.clicked.connect(self.replay)
        return tab

    def _offsets_tab(self) -> QWidget:
        tab = QWidget()
        v = QVBoxLayout(tab)
        self.of_group = QComboBox()
        self.of_group.setObjectName("offsets_group")
        self.of_group.setEditable(True)
        self.of_path = QLineEdit()
        self.of_path.setObjectName("offsets_path")
        self.of_path.setPlaceholderText("JSON file")
        pick = button("…", tooltip="Choose the offsets file")
        pick.clicked.connect(lambda: self._pick_save(self.of_path, "Offsets file"))
        self.of_save = button("Save offsets", primary=True,
                              tooltip="Write the group's committed offsets to the file")
        self.of_restore = button("Restore offsets",
                                 tooltip="Commit the saved offsets (the group must be empty)")
        v.addLayout(_form(("Group", self.of_group), ("File", self._row(self.of_path, pick))))
        v.addLayout(hbox(self.of_save, self.of_restore, None))
        v.addWidget(QLabel("Kafka only lets you change the offsets of an empty group: stop "
                           "its consumers before restoring."))
        v.addStretch(1)
        self.of_save.clicked.connect(self.save_offsets)
        self.of_restore.clicked.connect(self.restore_offsets)
        return tab

    def _snapshots_tab(self) -> QWidget:
        tab = QWidget()
        v = QVBoxLayout(tab)
        v.addWidget(section("Cluster snapshot"))
        v.addWidget(QLabel("Save: every broker is paused while its data is copied, then "
                           "resumed. Restore: the brokers are stopped, their data replaced, "
                           "and started again — a fixture you can return to."))
        self.sn_path = QLineEdit()
        self.sn_path.setObjectName("snapshot_path")
        self.sn_path.setPlaceholderText("snapshot directory")
        pick = button("…", tooltip="Choose the snapshot directory")
        pick.clicked.connect(lambda: self._pick_dir(self.sn_path))
        self.sn_save = button("Save snapshot", primary=True)
        self.sn_restore = button("Restore snapshot", danger=True)
        v.addLayout(_form(("Directory", self._row(self.sn_path, pick))))
        v.addLayout(hbox(self.sn_save, self.sn_restore, None))
        v.addWidget(section("Topology script"))
        v.addWidget(QLabel("Every topic with its configs as kafka-topics.sh commands and as a "
                           "Python script (confluent-kafka) that recreate them on any cluster."))
        self.sc_dir = QLineEdit()
        self.sc_dir.setObjectName("script_dir")
        self.sc_dir.setPlaceholderText("output directory")
        pick2 = button("…", tooltip="Choose the output directory")
        pick2.clicked.connect(lambda: self._pick_dir(self.sc_dir))
        self.sc_button = button("Export scripts", tooltip="Write kafka-topics.sh commands and a "
                                                          "Python script for every topic")
        v.addLayout(_form(("Directory", self._row(self.sc_dir, pick2))))
        v.addLayout(hbox(self.sc_button, None))
        v.addStretch(1)
        self.sn_save.clicked.connect(self.snapshot_save)
        self.sn_restore.clicked.connect(lambda: self._confirm(
            "Restore snapshot",
            f"Stop every broker and replace the cluster's data with the snapshot in "
            f"<b>{self.sn_path.text().strip() or '(no directory chosen)'}</b>?<br>"
            "Everything written since the snapshot is lost.", self.snapshot_restore))
        self.sc_button.clicked.connect(self.export_scripts)
        return tab

    @staticmethod
    def _row(*widgets: QWidget) -> QWidget:
        box = QWidget()
        box.setLayout(hbox(*widgets))
        return box

    def _pick_save(self, edit: QLineEdit, title: str) -> None:
        path, _ = QFileDialog.getSaveFileName(self, title, edit.text())
        if path:
            edit.setText(path)

    def _pick_dir(self, edit: QLineEdit) -> None:
        path = QFileDialog.getExistingDirectory(self, "Directory", edit.text())
        if path:
            edit.setText(path)

    # page protocol ----------------------------------------------------------------------
    def on_snapshot(self, snap: Any) -> None:
        topics = [t.name for t in snap.topics]
        for combo in (self.re_topic, self.ex_topic, self.rp_topic):
            self._fill(combo, topics)
        self._fill(self.of_group, [g.group_id for g in snap.groups])
        self._lag = {(p.topic, p.partition): p.lag_by_replica for p in snap.partitions()}
        if self.moves:
            self._show_moves(self.moves, report=False)  # fresher per-replica lag

    def set_capabilities(self, caps: Any) -> None:
        supervised = bool(caps.supervised and caps.data_dir is not None)
        why = "" if supervised else "Needs the kaflab supervisor (a local cluster)."
        for b in (self.rr_button, self.sn_save, self.sn_restore, self.de_stop):
            b.setEnabled(supervised)
            if why:
                b.setToolTip(why)

    @staticmethod
    def _fill(combo: QComboBox, items: list[str]) -> None:
        current = combo.currentText()
        existing = [combo.itemText(i) for i in range(combo.count())]
        if existing != items:
            combo.blockSignals(True)
            combo.clear()
            combo.addItems(items)
            combo.setCurrentText(current)
            combo.blockSignals(False)

    # feedback ---------------------------------------------------------------------------
    def _begin(self, message: str) -> None:
        self._running += 1
        self.progress.setValue(0)
        self.status.setText(message)

    def _fraction(self, fraction: float, message: str | None = None) -> None:
        self.progress.setValue(int(max(0.0, min(1.0, fraction)) * 1000))
        if message:
            self.status.setText(message)

    def _ok(self, message: str) -> Any:
        def done(result: Any) -> None:
            self._running -= 1
            self.last_result = result
            self.progress.setValue(1000)
            self.status.setText(message.format(result=result))
        return done

    def _err(self, title: str) -> Any:
        def failed(exc: BaseException) -> None:
            self._running -= 1
            self.status.setText(f"{title}: {str(exc).splitlines()[0] if str(exc) else exc}")
            self.last_error = show_error(self, title, exc)
        return failed

    def _confirm(self, title: str, text: str, action: Any) -> None:
        """Ask before a button's heavy or destructive action (as Delete topic and Kill do)."""
        answer = QMessageBox.warning(
            self, title, text,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel)
        if answer == QMessageBox.StandardButton.Yes:
            action()

    def _guard(self, title: str, fn: Any) -> None:
        """Run fn(); a bad input or a missing capability becomes the error dialog."""
        try:
            fn()
        except Exception as exc:  # ValueError from parsing, DataToolError, ...
            self._running = max(0, self._running)
            self.status.setText(f"{title}: {exc}")
            self.last_error = show_error(self, title, exc)

    def _show_moves(self, moves: list[MoveRow], report: bool = True) -> None:
        self.moves = moves
        table = self.move_table
        table.setRowCount(len(moves))
        for row, m in enumerate(moves):
            lag_records = self._lag.get((m.topic, m.partition), {})
            parts = []
            for broker, role, in_isr, lag_bytes in m.replicas_detail:
                if role == "leader":
                    parts.append(f"{broker}: leader")
                    continue
                lag = lag_records.get(broker)
                shown = (f"{lag} rec" if lag is not None else
                         f"{lag_bytes} B" if lag_bytes is not None else "?")
                parts.append(f"{broker}: {shown}{' ✓' if in_isr else ''} ({role})")
            values = (f"{m.topic}-{m.partition}", _ids(m.replicas), _ids(m.adding),
                      _ids(m.removing), _ids(m.isr), str(m.leader),
                      "done" if m.done else f"{m.fraction:.0%}", "   ".join(parts))
            for col, text in enumerate(values):
                table.setItem(row, col, QTableWidgetItem(text))
        if moves and report:
            done = sum(1 for m in moves if m.done)
            fraction = sum(m.fraction for m in moves) / len(moves)
            self._fraction(fraction, f"Moving {len(moves)} partition(s): {done} done, "
                                     f"{fraction:.0%}")

    # actions ----------------------------------------------------------------------------
    def start_reassign(self) -> None:
        def go() -> None:
            topic = self.re_topic.currentText().strip()
            replicas = parse_ids(self.re_replicas.text())
            if not topic or not replicas:
                raise ValueError("Choose a topic and the target replicas (e.g. 2,3).")
            parts = parse_ids(self.re_partitions.text()) if self.re_partitions.text().strip() \
                not in ("", "all") else None
            self._begin(f"Reassigning {topic} to brokers {replicas}…")
            self.tools.reassign(topic, parts, replicas, self._show_moves,
                                on_ok=self._moved("Reassignment"),
                                on_err=self._err("Reassignment failed"))
        self._guard("Reassignment failed", go)

    def _moved(self, what: str) -> Any:
        ok = self._ok(f"{what} done")

        def done(rows: list[MoveRow]) -> None:
            self._show_moves(rows)
            ok(rows)
        return done

    def cancel_reassign(self) -> None:
        def go() -> None:
            topic = self.re_topic.currentText().strip()
            parts = parse_ids(self.re_partitions.text()) if self.re_partitions.text().strip() \
                not in ("", "all") else None
            self._begin(f"Cancelling the reassignment of {topic}…")
            self.tools.cancel(topic, parts,
                              on_ok=self._ok("Cancelled {result} reassignment(s)"),
                              on_err=self._err("Cancel failed"))
        self._guard("Cancel failed", go)

    def change_rf(self) -> None:
        def go() -> None:
            topic = self.re_topic.currentText().strip()
            if not topic:
                raise ValueError("Choose a topic.")
            rf = self.rf_spin.value()
            self._begin(f"Changing the replication factor of {topic} to {rf}…")
            self.tools.change_replication_factor(
                topic, rf, self._show_moves, on_ok=self._moved("Replication factor change"),
                on_err=self._err("Replication factor change failed"))
        self._guard("Replication factor change failed", go)

    def decommission(self) -> None:
        def go() -> None:
            broker = self.de_broker.value()
            self._begin(f"Moving every replica off broker {broker}…")
            self.tabs.setCurrentIndex(0)
            self.tools.decommission(broker, self.de_stop.isChecked(), self._show_moves,
                                    on_ok=self._moved(f"Decommission of broker {broker}"),
                                    on_err=self._err("Decommission failed"))
        self._guard("Decommission failed", go)

    def rolling_restart(self) -> None:
        def go() -> None:
            self._begin("Rolling restart…")
            self.tools.rolling_restart(
                lambda done, total, message: self._fraction(done / max(1, total), message),
                on_ok=self._ok("Rolling restart done: brokers {result}"),
                on_err=self._err("Rolling restart failed"))
        self._guard("Rolling restart failed", go)

    @staticmethod
    def _opt_int(edit: QLineEdit) -> int | None:
        text = edit.text().strip()
        if not text:
            return None
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"Not an offset: {text!r}") from None

    def export(self) -> None:
        def go() -> None:
            topic = self.ex_topic.currentText().strip()
            path = self.ex_path.text().strip()
            if not topic or not path:
                raise ValueError("Choose a topic and an output file.")
            parts = parse_ids(self.ex_partitions.text()) if self.ex_partitions.text().strip() \
                not in ("", "all") else None
            self._begin(f"Exporting {topic}…")
            self.tools.export(
                topic, path, self.ex_format.currentText(), partitions=parts,
                start_offset=self._opt_int(self.ex_from), end_offset=self._opt_int(self.ex_to),
                contains=self.ex_contains.text(),
                on_progress=lambda done, total: self._fraction(done / max(1, total)),
                on_ok=self._ok(f"Exported {{result}} record(s) to {path}"),
                on_err=self._err("Export failed"))
        self._guard("Export failed", go)

    def replay(self) -> None:
        def go() -> None:
            topic = self.rp_topic.currentText().strip()
            dest = self.rp_dest.text().strip()
            if not topic or not dest:
                raise ValueError("Choose a source topic and a destination topic.")
            start = self.rp_start.dateTime().toMSecsSinceEpoch()
            end = self.rp_end.dateTime().toMSecsSinceEpoch()
            if end <= start:
                raise ValueError("The window's end must be after its start.")
            speed = self.rp_speed.value()
            self._begin(f"Replaying {topic} into {dest} at {speed:g}x…")
            self.tools.replay(
                topic, start, end, dest, speed,
                on_progress=lambda done, total: self._fraction(
                    done / max(1, total), f"Replayed {done} of {total}…"),
                on_ok=self._ok(f"Replayed into {dest}: {{result[0]}} sent, {{result[1]}} "
                               "failed"),
                on_err=self._err("Replay failed"))
        self._guard("Replay failed", go)

    def save_offsets(self) -> None:
        def go() -> None:
            group, path = self.of_group.currentText().strip(), self.of_path.text().strip()
            if not group or not path:
                raise ValueError("Choose a group and a file.")
            self._begin(f"Saving the offsets of {group}…")
            self.tools.save_offsets(group, path,
                                    on_ok=self._ok(f"Saved {{result}} offset(s) to {path}"),
                                    on_err=self._err("Saving offsets failed"))
        self._guard("Saving offsets failed", go)

    def restore_offsets(self) -> None:
        def go() -> None:
            path = self.of_path.text().strip()
            if not path:
                raise ValueError("Choose the saved offsets file.")
            self._begin("Restoring offsets…")
            self.tools.restore_offsets(path, self.of_group.currentText().strip() or None,
                                       on_ok=self._ok("Restored {result} offset(s)"),
                                       on_err=self._err("Restoring offsets failed"))
        self._guard("Restoring offsets failed", go)

    def snapshot_save(self) -> None:
        def go() -> None:
            path = self.sn_path.text().strip() or time.strftime("snapshot-%Y%m%d-%H%M%S")
            self._begin("Saving a snapshot…")
            self.tools.snapshot_save(path, lambda m, f: self._fraction(f, m),
                                     on_ok=self._ok(f"Snapshot saved to {path}"),
                                     on_err=self._err("Snapshot failed"))
        self._guard("Snapshot failed", go)

    def snapshot_restore(self) -> None:
        def go() -> None:
            path = self.sn_path.text().strip()
            if not path:
                raise ValueError("Choose the snapshot directory to restore.")
            self._begin("Restoring a snapshot…")
            self.tools.snapshot_restore(path, lambda m, f: self._fraction(f, m),
                                        on_ok=self._ok(f"Cluster restored from {path}"),
                                        on_err=self._err("Restore failed"))
        self._guard("Restore failed", go)

    def export_scripts(self) -> None:
        def go() -> None:
            directory = self.sc_dir.text().strip()
            if not directory:
                raise ValueError("Choose an output directory.")
            self._begin("Exporting the topology scripts…")
            self.tools.export_scripts(
                directory, on_ok=self._ok("Wrote {result[0]} and {result[1]} "
                                          "({result[2]} topics)"),
                on_err=self._err("Script export failed"))
        self._guard("Script export failed", go)


PAGE = PageSpec("Data", "⇅", 40, DataPage)
