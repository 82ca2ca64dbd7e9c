"""Consumer groups page: groups, and the selected group's members and offsets with lag.

Reset offsets follows Kafka: only while the group is inactive (Empty/Dead). The exception is a
group whose members are the running scenario's consumers (the console's own): the reset then
stops them, waits for the group to be Empty, resets and restarts them, with progress shown
under the table; a member the console does not own makes it refuse, naming that member.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QLabel,
    QLineEdit,
    QMessageBox,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from gui.bridge.scenarios import controller_for
from gui.models.groups import GroupsModel, MembersModel, OffsetsModel
from gui.views.common import (
    button,
    hbox,
    make_table,
    page_header,
    section,
    selected_item,
    show_error,
    sorting_proxy,
    table_key,
)
from gui.views.dialogs import ResetOffsetsDialog

NO_GROUPS = ("No consumer groups yet. A group appears when a consumer joins it or "
             "commits offsets.")


class GroupsView(QWidget):
    """Groups with state, members, per-partition offsets and lag; reset offsets, delete."""

    def __init__(self, session: Any) -> None:
        super().__init__()
        self.session = session
        layout = QVBoxLayout(self)
        layout.setContentsMargins(18, 14, 18, 14)
        layout.setSpacing(10)
        header, self.subtitle = page_header("Consumer groups", "")
        layout.addWidget(header)
        self.filter = QLineEdit()
        self.filter.setObjectName("group_filter")
        self.filter.setPlaceholderText("Filter groups…   (Ctrl+F)")
        self.filter.setClearButtonEnabled(True)
        self.filter.setMinimumWidth(280)
        self.scenarios = controller_for(session)
        self.reset_button = button("Reset offsets…",
                                   tooltip="Move the group's committed offsets "
                                           "(only while the group is Empty)")
        self.reset_button.setObjectName("group_reset")
        self.delete_button = button("Delete group", danger=True,
                                    tooltip="Delete the group and its committed offsets "
                                            "(Delete; only while the group is Empty)")
        layout.addLayout(hbox(self.filter, None, self.reset_button, self.delete_button))

        self.model = GroupsModel(self)
        self.proxy = sorting_proxy(self.model, self)
        self.proxy.setFilterKeyColumn(0)
        self.table = make_table(self.proxy, "GroupsTable", stretch=0,
                                empty="Waiting for the cluster's first snapshot…")
        self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.filter.textChanged.connect(self.proxy.setFilterFixedString)
        self.filter.textChanged.connect(self._update_empty)
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)
        table_key(self.table, QKeySequence.StandardKey.Delete,
                  lambda: self.delete_button.isEnabled() and self._delete())

        self.offsets = OffsetsModel(self)
        self.offsets_table = make_table(sorting_proxy(self.offsets, self), "OffsetsTable",
                                        empty="Select a group above to see its offsets.")
        self.offsets_table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.members = MembersModel(self)
        self.members_table = make_table(sorting_proxy(self.members, self), "MembersTable",
                                        empty="Select a group above to see its members.")
        self.detail_title = section("Select a group")
        self.tabs = QTabWidget()
        self.tabs.addTab(self.offsets_table, "Offsets && lag")
        self.tabs.addTab(self.members_table, "Members")

        bottom = QWidget()
        bl = QVBoxLayout(bottom)
        bl.setContentsMargins(0, 0, 0, 0)
        bl.addWidget(self.detail_title)
        bl.addWidget(self.tabs)
        self.reset_status = QLabel("")
        self.reset_status.setObjectName("group_reset_status")
        self.reset_status.setWordWrap(True)
        bl.addWidget(self.reset_status)
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.setObjectName("GroupsSplit")
        self.splitter.addWidget(self.table)
        self.splitter.addWidget(bottom)
        layout.addWidget(self.splitter, 1)
        self.snapshot: Any = None
        self.reset_button.clicked.connect(self._reset)
        self.delete_button.clicked.connect(self._delete)
        self.scenarios.owned_changed.connect(self._owned_changed)
        #: the last reset's outcome: {partition: offset} or the exception (tests, status)
        self.last_reset: Any = None
        self._selection_changed()

    def on_snapshot(self, snap: Any) -> None:
        self.snapshot = snap
        self.model.set_items(snap.groups)
        lag = sum(g.total_lag or 0 for g in snap.groups)
        self.subtitle.setText(f"{len(snap.groups):,} groups · total lag {lag:,}")
        self._update_empty()
        self._refresh_detail()

    def _owned_changed(self, _groups: Any) -> None:
        """A scenario started or ended: whether Reset offsets is possible may change."""
        self._refresh_detail()

    def _update_empty(self, *_: Any) -> None:
        if self.snapshot is None:
            return  # still "Waiting for the cluster's first snapshot…"
        needle = self.filter.text().strip()
        self.table.empty_hint.set_text(
            f"No group matches \u201c{needle}\u201d." if needle and self.model.rowCount()
            else NO_GROUPS)

    def current_group(self) -> Any:
        return selected_item(self.table)

    def select_group(self, group_id: str) -> bool:
        row = self.model.row_of(group_id)
        if row is None:
            return False
        index = self.proxy.mapFromSource(self.model.index(row, 0))
        if index.isValid():
            self.table.selectRow(index.row())
        return index.isValid()

    def _selection_changed(self, *_: Any) -> None:
        self.offsets.clear()
        self.members.clear()
        self._refresh_detail()

    def _refresh_detail(self) -> None:
        group = self.current_group()
        if group is None:
            self.detail_title.setText("Select a group")
            self.offsets.clear()
            self.members.clear()
        else:
            group = self.model.item(group.group_id)
            self.offsets.set_group(group)
            self.members.set_items(group.members)
            lag = "\u2013" if group.total_lag is None else f"{group.total_lag:,}"
            self.detail_title.setText(
                f"{group.group_id} — {group.state}, {len(group.members)} member(s), lag {lag}")
        self.offsets_table.empty_hint.set_text(
            "Select a group above to see its offsets." if group is None
            else "The group has no committed offsets.")
        self.members_table.empty_hint.set_text(
            "Select a group above to see its members." if group is None
            else f"No active members (the group is {group.state}).")
        empty = group is not None and group.state in ("Empty", "Dead")
        why = "" if empty else ("Select a group first." if group is None else
                                f"The group is {group.state}: stop its consumers first.")
        self.delete_button.setEnabled(empty)
        self.delete_button.setToolTip("Delete the group and its committed offsets (Delete)"
                                      + (f"\n\n{why}" if why else ""))
        owned = group is not None and not empty and self.scenarios.owns_group(group.group_id)
        tip = "Move the group's committed offsets"
        if owned:
            tip += ("\n\nIts members are the running scenario's consumers: the console stops "
                    "them, waits for the group to be Empty, resets, and restarts them.")
        elif why:
            tip += f"\n\n{why}"
        self.reset_button.setEnabled(empty or owned)
        self.reset_button.setToolTip(tip)

    def _reset(self) -> None:
        group = self.current_group()
        if group is None:
            return
        topics = sorted({o.topic for o in group.offsets})
        if self.snapshot is not None:
            topics += sorted(t.name for t in self.snapshot.topics
                             if not t.internal and t.name not in topics)
        dialog = ResetOffsetsDialog(self, group.group_id, topics)
        if self.scenarios.owns_group(group.group_id):
            for note in dialog.findChildren(QLabel, "Muted"):  # the dialog's Empty-only note
                note.setText("Its members are the running scenario's consumers: the console "
                             "stops them, waits for the group to be Empty, resets the offsets "
                             "and restarts them.")
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return
        topic, parts, to, value = dialog.values()
        self.reset_group_offsets(group.group_id, topic, parts, to, value)

    def reset_group_offsets(self, group_id: str, topic: str, partitions: list[int] | None,
                            to: str, value: int | None) -> Any:
        """Reset (off the Qt thread): through the scenario controller when the running
        scenario owns the group's consumers, else the plain reset (inactive groups only)."""
        self.last_reset = None
        self.reset_status.setText(f"Resetting offsets of {group_id} on {topic} to {to}…")

        def ok(result: dict[int, int]) -> None:
            self.last_reset = result
            moved = ", ".join(f"{p}→{o}" for p, o in sorted(result.items()))
            self.reset_status.setText(f"Offsets of {group_id} on {topic} reset to {to}: {moved}")

        def err(exc: BaseException) -> None:
            self.last_reset = exc
            self.reset_status.setText(f"Offsets of {group_id} not reset: {exc}")
            show_error(self, f"Could not reset offsets of {group_id}", exc)

        if self.scenarios.owns_group(group_id):
            return self.scenarios.reset_offsets(
                group_id, topic, partitions, to, value, on_ok=ok, on_err=err,
                on_progress=lambda text: self.reset_status.setText(f"Reset {group_id}: {text}"))
        return self.session.reset_offsets(group_id, topic, partitions, to, value,
                                          on_ok=ok, on_err=err)

    def _delete(self) -> None:
        group = self.current_group()
        if group is None:
            return
        answer = QMessageBox.warning(
            self, "Delete group", f"Delete consumer group <b>{group.group_id}</b> and its "
            "committed offsets?", QMessageBox.StandardButton.Yes
            | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Cancel)
        if answer == QMessageBox.StandardButton.Yes:
            self.session.delete_group(
                group.group_id,
                on_err=lambda exc: show_error(self, f"Could not delete {group.group_id}", exc))
