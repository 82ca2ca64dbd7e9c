"""Cluster page: summary cards, the brokers table with supervisor actions, the Raft quorum."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGridLayout, QMessageBox, QSplitter, QVBoxLayout, QWidget

from gui.bridge.backend import Capabilities, not_supervised
from gui.models.cluster import BrokersModel, QuorumModel
from gui.views.common import (
    Card,
    button,
    hbox,
    make_table,
    page_header,
    section,
    selected_item,
    show_error,
    sorting_proxy,
)

ACTIONS = (
    ("start", "Start", "Start the stopped broker process"),
    ("stop", "Stop", "Controlled shutdown (SIGTERM): leadership moves away first"),
    ("kill", "Kill -9", "SIGKILL the broker process: an uncontrolled failure"),
    ("pause", "Pause", "SIGSTOP: the process freezes, sessions time out"),
    ("resume", "Resume", "SIGCONT a paused broker"),
    ("restart", "Restart", "Stop, then start the broker"),
)
#: Which actions make sense in which supervisor state.
_ENABLED = {
    "start": {"stopped", "killed", "crashed", "offline"},
    "stop": {"running", "online", "starting", "paused"},
    "kill": {"running", "online", "starting", "paused"},
    "pause": {"running", "online"},
    "resume": {"paused"},
    "restart": {"running", "online", "paused", "stopped", "killed", "crashed"},
}


class ClusterView(QWidget):
    """Brokers (with start/stop/kill/pause/resume/restart/add) and the metadata quorum."""

    def __init__(self, session: Any) -> None:
        super().__init__()
        self.session = session
        self.caps: Capabilities | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(18, 14, 18, 14)
        layout.setSpacing(10)
        header, self.subtitle = page_header("Cluster", "Connecting…")
        layout.addWidget(header)

        cards = QGridLayout()
        cards.setSpacing(10)
        self.cards = {
            "brokers": Card("Brokers online"), "controller": Card("Active controller"),
            "topics": Card("Topics"), "partitions": Card("Partitions"),
            "urp": Card("Under-replicated"), "offline": Card("Offline partitions"),
            "groups": Card("Consumer groups"),
        }
        for i, card in enumerate(self.cards.values()):
            cards.addWidget(card, 0, i)
        layout.addLayout(cards)

        self.brokers = BrokersModel(self)
        self.brokers_proxy = sorting_proxy(self.brokers, self)
        self.table = make_table(self.brokers_proxy, "BrokersTable")
        self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        for col, width in ((0, 60), (1, 150), (2, 90), (3, 95), (4, 70), (5, 80), (6, 75)):
            self.table.setColumnWidth(col, width)
        self.table.selectionModel().selectionChanged.connect(self._update_buttons)

        self.buttons: dict[str, Any] = {}
        for action, text, tip in ACTIONS:
            b = button(text, danger=action == "kill", tooltip=tip)
            b.setObjectName(f"broker_{action}")
            b.clicked.connect(lambda _=False, a=action: self._act(a))
            self.buttons[action] = b
        self.add_button = button("Add broker", primary=True,
                                 tooltip="Start one more broker process")
        self.add_button.setObjectName("broker_add")
        self.add_button.clicked.connect(lambda: self._act("add"))

        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.addLayout(hbox(section("Brokers"), None,
                                  *self.buttons.values(), self.add_button))
        top_layout.addWidget(self.table)

        self.quorum = QuorumModel(self)
        self.quorum_table = make_table(sorting_proxy(self.quorum, self), "QuorumTable")
        self.quorum_table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.quorum_table.setColumnWidth(2, 140)
        self.quorum_title = section("Metadata quorum (KRaft)")
        bottom = QWidget()
        bottom_layout = QVBoxLayout(bottom)
        bottom_layout.setContentsMargins(0, 0, 0, 0)
        bottom_layout.addWidget(self.quorum_title)
        bottom_layout.addWidget(self.quorum_table)

        split = QSplitter(Qt.Orientation.Vertical)
        split.setObjectName("ClusterSplit")
        split.addWidget(top)
        split.addWidget(bottom)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        layout.addWidget(split, 1)
        self.splitter = split
        self._update_buttons()

    # -- state ---------------------------------------------------------------------------

    def set_capabilities(self, caps: Capabilities) -> None:
        self.caps = caps
        if caps.supervised:
            self.subtitle.setText(f"Local cluster · {caps.bootstrap}")
        else:
            self.subtitle.setText(f"Attached to {caps.bootstrap}")
        self._update_buttons()

    def on_snapshot(self, snap: Any) -> None:
        self.brokers.set_items(snap.brokers)
        self.quorum.set_quorum(snap.quorum)
        online = sum(1 for b in snap.brokers if b.state in ("online", "running"))
        total = len(snap.brokers)
        self.cards["brokers"].set(f"{online} / {total}", "ok" if online == total else "warn")
        self.cards["controller"].set("\u2013" if snap.controller_id in (None, -1)
                                     else str(snap.controller_id),
                                     "bad" if snap.controller_id in (None, -1) else "")
        parts = [p for t in snap.topics for p in t.partitions]
        urp = sum(1 for p in parts if len(p.isr) < len(p.replicas))
        offline = sum(1 for p in parts if p.leader < 0)
        self.cards["topics"].set(f"{len(snap.topics):,}")
        self.cards["partitions"].set(f"{len(parts):,}")
        self.cards["urp"].set(f"{urp:,}", "warn" if urp else "ok")
        self.cards["offline"].set(f"{offline:,}", "bad" if offline else "ok")
        self.cards["groups"].set(f"{len(snap.groups):,}")
        q = snap.quorum
        if q is not None:
            self.quorum_title.setText(
                f"Metadata quorum (KRaft) — leader {q.leader_id}, epoch {q.epoch}, "
                f"high watermark {q.high_watermark:,}")
        else:
            self.quorum_title.setText("Metadata quorum (KRaft) — not reported by this cluster")
        self._update_buttons()

    def selected_broker(self) -> Any:
        return selected_item(self.table)

    def _update_buttons(self, *_: Any) -> None:
        caps = self.caps
        supervised = bool(caps and caps.supervised)
        broker = self.selected_broker()
        why = not_supervised(caps) if caps and not supervised else ""
        for action, b in self.buttons.items():
            enabled = supervised and broker is not None and broker.state in _ENABLED[action]
            b.setEnabled(enabled)
            tip = next(t for a, _, t in ACTIONS if a == action)
            if why:
                tip = f"{tip}\n\nUnavailable: {why}"
            elif broker is None:
                tip = f"{tip}\n\nSelect a broker first."
            b.setToolTip(tip)
        self.add_button.setEnabled(supervised)
        self.add_button.setToolTip("Start one more broker process" +
                                   (f"\n\nUnavailable: {why}" if why else ""))

    def _act(self, action: str) -> None:
        broker = self.selected_broker()
        broker_id = None if action == "add" else (broker.id if broker else None)
        if action != "add" and broker_id is None:
            return
        if action in ("kill", "stop") and broker is not None:
            verb = "SIGKILL" if action == "kill" else "stop"
            answer = QMessageBox.question(
                self, f"{action.capitalize()} broker {broker_id}",
                f"{verb.capitalize()} broker {broker_id} ({broker.address})?")
            if answer != QMessageBox.StandardButton.Yes:
                return
        self.do_action(action, broker_id)

    def do_action(self, action: str, broker_id: int | None) -> Any:
        """Run a supervisor action without confirmation (used by the buttons and tests)."""
        return self.session.broker_action(
            action, broker_id,
            on_err=lambda exc: show_error(self, f"Could not {action} broker "
                                          f"{broker_id if broker_id is not None else ''}"
                                          .strip(), exc))
