"""Dialogs: create topic, add partitions, topic configs, reset offsets, broker faults."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from PySide6.QtCore import QDateTime, Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDateTimeEdit,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from gui.bridge.backend import ConfigEntry, ThrottleSpec
from gui.bridge.types import TOPIC_CONFIGS, topic_config_error, topic_name_error

#: The configs the create dialog offers directly (others go in the free-form box).
KEY_CONFIGS = ("cleanup.policy", "retention.ms", "min.insync.replicas", "compression.type",
               "max.message.bytes")


def _set_invalid(widget: Any, invalid: bool) -> None:
    if widget.property("invalid") != invalid:
        widget.setProperty("invalid", invalid)
        widget.style().unpolish(widget)
        widget.style().polish(widget)


def parse_config_lines(text: str) -> tuple[dict[str, str], list[str]]:
    """``key=value`` lines to a dict, plus Kafka-worded errors for bad lines or values."""
    configs: dict[str, str] = {}
    errors: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key:
            errors.append(f"Expected key=value, got: {line}")
            continue
        error = topic_config_error(key, value)
        if error:
            errors.append(error)
        configs[key] = value
    return configs, errors


class CreateTopicDialog(QDialog):
    """Name, partitions, replication factor and key configs, validated as Kafka does."""

    def __init__(self, parent: Any = None, brokers: int = 3, existing: set[str] | None = None,
                 default_partitions: int = 1, online: int | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Create topic")
        self.setMinimumWidth(520)
        self.existing = existing or set()
        self.brokers = brokers
        self.online = brokers if online is None else online
        layout = QVBoxLayout(self)
        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        self.name = QLineEdit()
        self.name.setObjectName("topic_name")
        self.name.setPlaceholderText("e.g. orders  (letters, digits, '.', '_', '-')")
        self.partitions = QSpinBox()
        self.partitions.setObjectName("topic_partitions")
        self.partitions.setRange(1, 10_000)
        self.partitions.setValue(max(1, default_partitions))
        self.rf = QSpinBox()
        self.rf.setObjectName("topic_rf")
        self.rf.setRange(1, max(1, brokers))
        self.rf.setValue(min(3, max(1, brokers)))
        self.rf.setToolTip(f"At most the number of brokers ({brokers})")
        form.addRow("Name", self.name)
        form.addRow("Partitions", self.partitions)
        form.addRow("Replication factor", self.rf)
        self.config_widgets: dict[str, Any] = {}
        for name in KEY_CONFIGS:
            d = TOPIC_CONFIGS[name]
            if d.choices:
                w = QComboBox()
                w.addItems(list(d.choices))
                w.setCurrentText(d.default or "")
            else:
                w = QLineEdit()
                w.setPlaceholderText(f"default: {d.default}")
            w.setToolTip(d.doc or name)
            self.config_widgets[name] = w
            form.addRow(name, w)
        self.extra = QPlainTextEdit()
        self.extra.setObjectName("topic_extra_configs")
        self.extra.setPlaceholderText("other configs, one key=value a line")
        self.extra.setFixedHeight(70)
        form.addRow("Other configs", self.extra)
        layout.addLayout(form)
        self.error = QLabel("")
        self.error.setObjectName("Muted")
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #d64545;")
        layout.addWidget(self.error)
        self.warning = QLabel("")
        self.warning.setObjectName("topic_rf_warning")
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet("color: #d08a00;")
        layout.addWidget(self.warning)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                        | QDialogButtonBox.StandardButton.Cancel)
        self.ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok.setText("Create")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.name.textChanged.connect(self.validate)
        self.extra.textChanged.connect(self.validate)
        self.rf.valueChanged.connect(self.validate)
        for w in self.config_widgets.values():
            sig = w.currentTextChanged if isinstance(w, QComboBox) else w.textChanged
            sig.connect(self.validate)
        self.validate()

    def configs(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, w in self.config_widgets.items():
            value = w.currentText() if isinstance(w, QComboBox) else w.text().strip()
            if value and value != TOPIC_CONFIGS[name].default:
                out[name] = value
        extra, _ = parse_config_lines(self.extra.toPlainText())
        out.update(extra)
        return out

    def errors(self) -> list[str]:
        errors: list[str] = []
        name = self.name.text()
        name_error = topic_name_error(name) if name else "Enter a topic name."
        if name_error:
            errors.append(name_error)
        elif name in self.existing:
            errors.append(f"Topic '{name}' already exists.")
        for key, w in self.config_widgets.items():
            value = w.currentText() if isinstance(w, QComboBox) else w.text().strip()
            if value:
                error = topic_config_error(key, value)
                if error:
                    errors.append(error)
        errors += parse_config_lines(self.extra.toPlainText())[1]
        return errors

    def validate(self) -> bool:
        errors = self.errors()
        _set_invalid(self.name, bool(self.name.text()) and any(
            e for e in errors if "Topic" in e or "topic name" in e.lower()))
        shown = [e for e in errors if e != "Enter a topic name."]
        self.error.setText("\n".join(shown))
        # the broker decides (a paused broker may still count), so a warning, not an error
        self.warning.setText(
            f"Only {self.online} of {self.brokers} brokers are online: the cluster will "
            f"likely refuse a replication factor of {self.rf.value()} "
            "(INVALID_REPLICATION_FACTOR)." if self.rf.value() > self.online else "")
        self.warning.setVisible(bool(self.warning.text()))
        self.ok.setEnabled(not errors)
        return not errors

    def values(self) -> tuple[str, int, int, dict[str, str]]:
        return self.name.text(), self.partitions.value(), self.rf.value(), self.configs()


class AddPartitionsDialog(QDialog):
    """Grow a topic to a new partition count (Kafka never shrinks)."""

    def __init__(self, parent: Any, topic: str, current: int) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Add partitions — {topic}")
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.total = QSpinBox()
        self.total.setRange(current + 1, 100_000)
        self.total.setValue(current + 1)
        form.addRow("Current partitions", QLabel(str(current)))
        form.addRow("New total", self.total)
        layout.addLayout(form)
        note = QLabel("Partitions can only be added. Keyed records will map to different "
                      "partitions afterwards.")
        note.setObjectName("Muted")
        note.setWordWrap(True)
        layout.addWidget(note)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)


class TopicConfigDialog(QDialog):
    """All topic configs with Kafka's defaults; edit values, blank resets to the default."""

    def __init__(self, parent: Any, topic: str, entries: list[ConfigEntry]) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Configs — {topic}")
        self.resize(760, 560)
        self.entries = {e.name: e for e in entries}
        layout = QVBoxLayout(self)
        hint = QLabel("Overrides are shown in bold. Clear a value to return to the default.")
        hint.setObjectName("Muted")
        layout.addWidget(hint)
        self.table = QTableWidget(len(entries), 4)
        self.table.setHorizontalHeaderLabels(["Config", "Value", "Kafka default", "Source"])
        self.table.verticalHeader().setVisible(False)
        self.table.setAlternatingRowColors(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.
                                                            ResizeToContents)
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        for row, e in enumerate(entries):
            d = TOPIC_CONFIGS.get(e.name)
            name_item = QTableWidgetItem(e.name)
            name_item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
            name_item.setToolTip(d.doc if d and d.doc else e.name)
            value_item = QTableWidgetItem("" if e.is_default else (e.value or ""))
            if e.is_default:
                value_item.setData(Qt.ItemDataRole.ToolTipRole,
                                   f"default: {e.value if e.value is not None else ''}")
            else:
                f = value_item.font()
                f.setBold(True)
                value_item.setFont(f)
                name_item.setFont(f)
            if e.read_only:
                value_item.setFlags(Qt.ItemFlag.ItemIsEnabled)
            default = d.default if d else (e.value if e.is_default else "")
            default_item = QTableWidgetItem("" if default is None else str(default))
            default_item.setFlags(Qt.ItemFlag.ItemIsEnabled)
            source_item = QTableWidgetItem(e.source.replace("_", " ").lower())
            source_item.setFlags(Qt.ItemFlag.ItemIsEnabled)
            for col, item in enumerate((name_item, value_item, default_item, source_item)):
                self.table.setItem(row, col, item)
        layout.addWidget(self.table)
        self.error = QLabel("")
        self.error.setStyleSheet("color: #d64545;")
        self.error.setWordWrap(True)
        layout.addWidget(self.error)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save
                                        | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self._accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.table.itemChanged.connect(lambda _i: self.changes())

    def changes(self) -> tuple[dict[str, str], list[str], list[str]]:
        """(configs to set, configs to delete, errors)."""
        set_: dict[str, str] = {}
        delete: list[str] = []
        errors: list[str] = []
        for row in range(self.table.rowCount()):
            name = self.table.item(row, 0).text()
            value = self.table.item(row, 1).text().strip()
            e = self.entries[name]
            if not value:
                if not e.is_default:
                    delete.append(name)
                continue
            if not e.is_default and value == (e.value or ""):
                continue
            error = topic_config_error(name, value)
            if error:
                errors.append(error)
            set_[name] = value
        self.error.setText("\n".join(errors))
        self.buttons.button(QDialogButtonBox.StandardButton.Save).setEnabled(not errors)
        return set_, delete, errors

    def _accept(self) -> None:
        if not self.changes()[2]:
            self.accept()


class ResetOffsetsDialog(QDialog):
    """Reset a group's offsets on a topic: earliest, latest, a timestamp or a given offset."""

    def __init__(self, parent: Any, group_id: str, topics: list[str]) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Reset offsets — {group_id}")
        self.setMinimumWidth(440)
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.topic = QComboBox()
        self.topic.addItems(topics)
        self.topic.setEditable(True)
        self.partitions = QLineEdit()
        self.partitions.setPlaceholderText("all  (or e.g. 0,1,4)")
        self.to = QComboBox()
        self.to.addItems(["earliest", "latest", "timestamp", "offset"])
        self.timestamp = QDateTimeEdit(QDateTime.currentDateTime().addSecs(-3600))
        self.timestamp.setDisplayFormat("yyyy-MM-dd HH:mm:ss")
        self.timestamp.setCalendarPopup(True)
        self.offset = QSpinBox()
        self.offset.setRange(0, 2**31 - 1)
        form.addRow("Topic", self.topic)
        form.addRow("Partitions", self.partitions)
        form.addRow("Reset to", self.to)
        form.addRow("Timestamp", self.timestamp)
        form.addRow("Offset", self.offset)
        layout.addLayout(form)
        note = QLabel("Only possible while the group has no active members (state Empty).")
        note.setObjectName("Muted")
        layout.addWidget(note)
        self.error = QLabel("")
        self.error.setObjectName("reset_error")
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #d64545;")
        layout.addWidget(self.error)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        self.ok = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok.setText("Reset")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.to.currentTextChanged.connect(self._mode)
        self._mode(self.to.currentText())
        self.partitions.textChanged.connect(self.validate)
        self.topic.currentTextChanged.connect(self.validate)
        self.validate()

    def _partitions(self) -> list[int] | None:
        """The partitions typed (None: all); ValueError for anything but numbers >= 0."""
        text = self.partitions.text().strip()
        if not text or text.lower() == "all":
            return None
        parts = []
        for piece in text.replace(" ", "").split(","):
            if not piece:
                continue
            if not piece.isdigit():
                raise ValueError(f"Partitions: '{piece}' is not a partition number "
                                 "(e.g. 0,1,4, or empty for all).")
            parts.append(int(piece))
        return parts or None

    def validate(self) -> bool:
        errors = []
        if not self.topic.currentText().strip():
            errors.append("Choose a topic.")
        try:
            self._partitions()
        except ValueError as exc:
            errors.append(str(exc))
        self.error.setText("\n".join(errors))
        self.ok.setEnabled(not errors)
        _set_invalid(self.partitions, any(e.startswith("Partitions") for e in errors))
        return not errors

    def _mode(self, mode: str) -> None:
        self.timestamp.setEnabled(mode == "timestamp")
        self.offset.setEnabled(mode == "offset")

    def values(self) -> tuple[str, list[int] | None, str, int | None]:
        parts = self._partitions()
        mode = self.to.currentText()
        value: int | None = None
        if mode == "timestamp":
            value = int(self.timestamp.dateTime().toMSecsSinceEpoch())
        elif mode == "offset":
            value = self.offset.value()
        return self.topic.currentText(), parts, mode, value


class LatencyDialog(QDialog):
    """How many ms the broker's proxy adds to every round trip."""

    def __init__(self, parent: Any, broker_id: int, current_ms: float | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Add latency — broker {broker_id}")
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.ms = QSpinBox()
        self.ms.setObjectName("latency_ms")
        self.ms.setRange(1, 60_000)
        self.ms.setSuffix(" ms")
        self.ms.setSingleStep(50)
        self.ms.setValue(int(current_ms) if current_ms else 200)
        form.addRow("Added latency", self.ms)
        layout.addLayout(form)
        note = QLabel("Every round trip to or from this broker (clients and the other brokers) "
                      "gets this much longer, through the supervisor's proxy.")
        note.setObjectName("Muted")
        note.setWordWrap(True)
        layout.addWidget(note)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Apply")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def value(self) -> int:
        return self.ms.value()


class ThrottleDialog(QDialog):
    """A replication throttle on one broker: leader and follower rates in MB/s (0 = none),
    applied to all replicas (``*``) or to the replicas being reassigned; or cleared.

    ``result_action`` is "apply" or "clear" once accepted.
    """

    MB = 1_000_000  # Kafka's rates are bytes/s; the tools' docs count MB as 10^6 bytes

    def __init__(self, parent: Any, broker_id: int, leader_bps: int | None = None,
                 follower_bps: int | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Replication throttle — broker {broker_id}")
        self.setMinimumWidth(460)
        self.result_action = ""
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.leader = self._rate("throttle_leader", leader_bps)
        self.follower = self._rate("throttle_follower", follower_bps)
        self.replicas = QComboBox()
        self.replicas.setObjectName("throttle_replicas")
        self.replicas.addItem("All replicas (*)", "all")
        self.replicas.addItem("Replicas being reassigned", "reassigning")
        form.addRow("Leader rate", self.leader)
        form.addRow("Follower rate", self.follower)
        form.addRow("Apply to", self.replicas)
        layout.addLayout(form)
        note = QLabel("Sets leader.replication.throttled.rate / follower.replication.throttled."
                      "rate on this broker and the topics' *.replication.throttled.replicas, "
                      "as kafka-configs and kafka-reassign-partitions --throttle do. "
                      "0 leaves that side unthrottled.")
        note.setObjectName("Muted")
        note.setWordWrap(True)
        layout.addWidget(note)
        self.error = QLabel("")
        self.error.setStyleSheet("color: #d64545;")
        layout.addWidget(self.error)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                        | QDialogButtonBox.StandardButton.Cancel)
        self.ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok.setText("Apply")
        self.clear_button = self.buttons.addButton("Clear throttle",
                                                   QDialogButtonBox.ButtonRole.DestructiveRole)
        self.clear_button.setObjectName("throttle_clear")
        self.clear_button.setEnabled(leader_bps is not None or follower_bps is not None)
        self.buttons.accepted.connect(self._apply)
        self.buttons.rejected.connect(self.reject)
        self.clear_button.clicked.connect(self._clear)
        layout.addWidget(self.buttons)
        self.leader.valueChanged.connect(self.validate)
        self.follower.valueChanged.connect(self.validate)
        self.validate()

    def _rate(self, name: str, bps: int | None) -> QDoubleSpinBox:
        box = QDoubleSpinBox()
        box.setObjectName(name)
        box.setRange(0.0, 100_000.0)
        box.setDecimals(2)
        box.setSuffix(" MB/s")
        box.setSpecialValueText("none")
        box.setValue(bps / self.MB if bps else 0.0)
        return box

    def _bps(self, box: QDoubleSpinBox) -> int | None:
        value = box.value()
        return round(value * self.MB) if value > 0 else None

    def validate(self) -> bool:
        ok = self.leader.value() > 0 or self.follower.value() > 0
        self.error.setText("" if ok else "Give a leader or a follower rate.")
        self.ok.setEnabled(ok)
        return ok

    def spec(self) -> ThrottleSpec:
        return ThrottleSpec(self._bps(self.leader), self._bps(self.follower),
                            self.replicas.currentData())

    def _apply(self) -> None:
        if self.validate():
            self.result_action = "apply"
            self.accept()

    def _clear(self) -> None:
        self.result_action = "clear"
        self.accept()


def fmt_ts(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
