"""Cluster page: summary cards, the brokers table with supervisor actions, the Raft quorum."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QGridLayout,
    QMenu,
    QMessageBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from gui.bridge import timeline
from gui.bridge.backend import Capabilities, ThrottleSpec, no_network_faults, not_supervised
from gui.bridge.types import fault_label, throttle_label
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
from gui.views.dialogs import LatencyDialog, ThrottleDialog

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
#: Network faults on the selected broker (issue #8): (fault, menu text, shortcut, tooltip)
NETWORK_ACTIONS = (
    ("latency", "Add &latency…", "Ctrl+Shift+L",
     "Every round trip to or from the broker gets slower (the supervisor's proxy)"),
    ("drop", "&Drop connections", "Ctrl+Shift+D",
     "Reset the broker's connections and refuse new ones"),
    ("isolate", "Cut &off from other brokers (isolate)", "Ctrl+Shift+I",
     "Links between this broker and its peers stall both ways; clients still reach it"),
    ("blackhole", "&Blackhole", "Ctrl+Shift+H",
     "Nothing moves to or from the broker: connections stall, like a network partition"),
    ("clear", "&Clear network fault", "Ctrl+Shift+C", "Back to a healthy network"),
)
THROTTLE_SHORTCUT = "Ctrl+Shift+R"
_NETWORK_TIP = ("Network faults on this broker, through the supervisor's proxy\n"
                + ", ".join(f"{s}: {t.replace('&', '').rstrip('…')}"
                            for _, t, s, _ in NETWORK_ACTIONS))


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
        # Columns fit their contents and share what is left. So that the rest fits the
        # default window (faults included), Role, Rack, PID and Offline start hidden and the
        # fault columns show only while a broker has a fault (the header's context menu
        # shows any column).
        self.table = make_table(self.brokers_proxy, "BrokersTable", stretch="all",
                                hidden=BrokersModel.HIDDEN_AT_FIRST,
                                auto_hide=(BrokersModel.NETWORK_COLUMN,
                                           BrokersModel.THROTTLE_COLUMN),
                                empty="Waiting for the cluster's first snapshot…")
        self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.table.selectionModel().selectionChanged.connect(self._update_buttons)
        header = self.table.horizontalHeader()  # the fault columns right after State
        header.moveSection(header.visualIndex(BrokersModel.NETWORK_COLUMN), 3)
        header.moveSection(header.visualIndex(BrokersModel.THROTTLE_COLUMN), 4)

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

        self.network_actions: dict[str, QAction] = {}
        self.network_menu = QMenu("Network", self)
        self.network_menu.setObjectName("broker_network_menu")
        for fault, text, shortcut, tip in NETWORK_ACTIONS:
            if fault == "clear":
                self.network_menu.addSeparator()
            action = QAction(text, self)
            action.setObjectName(f"net_{fault}")
            action.setShortcut(QKeySequence(shortcut))
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            action.setToolTip(tip)
            action.triggered.connect(lambda _=False, f=fault: self._network(f))
            self.network_menu.addAction(action)
            self.addAction(action)
            self.network_actions[fault] = action
        self.network_menu.setToolTipsVisible(True)
        self.network_button = button("Network", tooltip="Network faults on this broker")
        self.network_button.setObjectName("broker_network")
        self.network_button.setMenu(self.network_menu)
        self.throttle_action = QAction("Replication &throttle…", self)
        self.throttle_action.setObjectName("broker_throttle_action")
        self.throttle_action.setShortcut(QKeySequence(THROTTLE_SHORTCUT))
        self.throttle_action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.throttle_action.triggered.connect(self._throttle)
        self.addAction(self.throttle_action)
        self.throttle_button = button("Throttle…")
        self.throttle_button.setObjectName("broker_throttle")
        self.throttle_button.clicked.connect(self._throttle)

        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.addLayout(hbox(section("Brokers"), None,
                                  *self.buttons.values(), self.network_button,
                                  self.throttle_button, self.add_button))
        top_layout.addWidget(self.table)

        self.quorum = QuorumModel(self)
        self.quorum_table = make_table(sorting_proxy(self.quorum, self), "QuorumTable",
                                       stretch="all",
                                       empty="No quorum information yet: DescribeQuorum has "
                                             "not answered (a ZooKeeper-based cluster has "
                                             "no KRaft quorum).")
        self.quorum_table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
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
        self.quorum.set_quorum(snap.quorum, snap.taken_at)
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
        self._update_fault_buttons(broker)

    def _update_fault_buttons(self, broker: Any) -> None:
        caps = self.caps
        net_why = no_network_faults(caps) if caps is not None else "Not connected yet."
        faulted = bool(broker is not None and fault_label(broker))
        for fault, action in self.network_actions.items():
            tip = next(t for f, _, _, t in NETWORK_ACTIONS if f == fault)
            action.setEnabled(not net_why and broker is not None
                              and (fault != "clear" or faulted))
            action.setToolTip(tip)
        self.network_button.setEnabled(not net_why and broker is not None)
        self.network_button.setToolTip(
            _NETWORK_TIP + (f"\n\nUnavailable: {net_why}" if net_why else
               "\n\nSelect a broker first." if broker is None else
               f"\n\nNow: {fault_label(broker) or 'healthy'}"))
        connected = caps is not None
        self.throttle_action.setEnabled(connected and broker is not None)
        self.throttle_button.setEnabled(connected and broker is not None)
        self.throttle_button.setToolTip(
            f"Replication throttle on this broker ({THROTTLE_SHORTCUT}): "
            "leader/follower.replication.throttled.rate"
            + ("\n\nSelect a broker first." if broker is None else
               f"\n\nNow: {throttle_label(broker) or 'none'}"))

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

    # -- faults (issue #8) ----------------------------------------------------------------

    def _network(self, fault: str) -> None:
        broker = self.selected_broker()
        if broker is None or not self.network_actions[fault].isEnabled():
            return
        if fault == "latency":
            dialog = LatencyDialog(self, broker.id, getattr(broker, "network_latency_ms", None))
            if dialog.exec() != QDialog.DialogCode.Accepted:
                return
            self.network_fault(broker.id, "latency", dialog.value())
            return
        self.network_fault(broker.id, fault)

    def network_fault(self, broker_id: int, fault: str, ms: int | None = None) -> Any:
        """Apply (or clear) a network fault without a dialog (the menu and tests use it)."""
        what = f"+{ms} ms latency" if fault == "latency" else fault
        label = (f"Clearing network faults on broker {broker_id}" if fault == "clear"
                 else f"Network fault on broker {broker_id}: {what}")
        title = (f"Could not clear the network fault of broker {broker_id}" if fault == "clear"
                 else f"Could not apply {what} to broker {broker_id}")
        # no timeline note here: the supervisor logs the fault to serve.log, which the
        # timeline follows (a "network-fault" event), whoever applied it
        return self.session.run(
            label, self.session.backend.network_fault(broker_id, fault, ms),
            on_err=lambda exc: show_error(self, title, exc))

    def _throttle(self) -> None:
        broker = self.selected_broker()
        if broker is None or not self.throttle_button.isEnabled():
            return
        dialog = self.throttle_dialog(broker)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return
        if dialog.result_action == "clear":
            self.clear_throttle(broker.id)
        else:
            self.set_throttle(broker.id, dialog.spec())

    def throttle_dialog(self, broker: Any) -> ThrottleDialog:
        """The throttle dialog for ``broker``, filled with its current rates."""
        return ThrottleDialog(self, broker.id, getattr(broker, "leader_throttle_bps", None),
                              getattr(broker, "follower_throttle_bps", None))

    def set_throttle(self, broker_id: int, spec: ThrottleSpec) -> Any:
        """Throttle replication on a broker (no dialog: the dialog and tests use it)."""
        rates = ", ".join(f"{side} {bps / 1e6:g} MB/s" for side, bps in
                          (("leader", spec.leader_bps), ("follower", spec.follower_bps)) if bps)
        return self.session.run(
            f"Throttling replication on broker {broker_id}",
            self.session.backend.set_replication_throttle(broker_id, spec),
            on_ok=lambda _msg: timeline.note(self.session, "replication-throttle",
                                             f"broker {broker_id}: throttle {rates}"),
            on_err=lambda exc: show_error(
                self, f"Could not throttle replication on broker {broker_id}", exc))

    def clear_throttle(self, broker_id: int) -> Any:
        """Remove the replication throttle of a broker."""
        return self.session.run(
            f"Clearing the replication throttle of broker {broker_id}",
            self.session.backend.clear_replication_throttle(broker_id),
            on_ok=lambda _msg: timeline.note(self.session, "replication-throttle",
                                             f"broker {broker_id}: throttle cleared"),
            on_err=lambda exc: show_error(
                self, f"Could not clear the replication throttle of broker {broker_id}", exc))
