"""Topics page: filterable topic table, actions, and the selected topic's partitions."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QLineEdit,
    QMessageBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from gui.models.topics import PartitionsModel, TopicFilterProxy, TopicsModel
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
from gui.views.dialogs import AddPartitionsDialog, CreateTopicDialog, TopicConfigDialog

NO_TOPICS = "No topics yet. Create one with New topic… (Ctrl+N)."
WAITING = "Waiting for the cluster's first snapshot…"


class TopicsView(QWidget):
    """Topics with create / delete / add partitions / configs, and a partitions panel."""

    #: the user asked to produce to / browse a topic
    produce_requested = Signal(str)
    browse_requested = Signal(str)

    def __init__(self, session: Any) -> None:
        super().__init__()
        self.session = session
        self.snapshot: Any = None
        self._pending_select: str | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(18, 14, 18, 14)
        layout.setSpacing(10)
        header, self.subtitle = page_header("Topics", "")
        layout.addWidget(header)

        self.filter = QLineEdit()
        self.filter.setObjectName("topic_filter")
        self.filter.setPlaceholderText("Filter topics…   (Ctrl+F)")
        self.filter.setClearButtonEnabled(True)
        self.filter.setMinimumWidth(280)
        self.hide_internal = QCheckBox("Hide internal")
        self.hide_internal.setChecked(True)
        self.hide_internal.setToolTip("Hide Kafka's own topics (__consumer_offsets, "
                                      "__transaction_state)")
        self.create_button = button("New topic…", primary=True, tooltip="Create a topic (Ctrl+N)")
        self.delete_button = button("Delete", danger=True,
                                    tooltip="Delete the selected topic (Delete)")
        self.partitions_button = button("Add partitions…",
                                        tooltip="Add partitions to the selected topic")
        self.configs_button = button("Configs…", tooltip="View and edit the topic's configs")
        self.produce_button = button("Produce…", tooltip="Produce to the selected topic")
        self.browse_button = button("Browse…", tooltip="Browse messages of the selected topic "
                                                      "(Enter or double-click)")
        layout.addLayout(hbox(self.filter, self.hide_internal, None, self.produce_button,
                              self.browse_button, self.configs_button, self.partitions_button,
                              self.delete_button, self.create_button))

        self.model = TopicsModel(self)
        self.proxy = TopicFilterProxy(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.set_hide_internal(True)
        self.table = make_table(self.proxy, "TopicsTable", stretch=0,  # names can be long
                                empty=WAITING)
        self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.filter.textChanged.connect(self.proxy.setFilterFixedString)
        self.hide_internal.toggled.connect(self.proxy.set_hide_internal)
        self.filter.textChanged.connect(self._update_empty)
        self.hide_internal.toggled.connect(self._update_empty)
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)
        self.table.doubleClicked.connect(lambda _i: self._browse())
        table_key(self.table, QKeySequence.StandardKey.Delete, self._delete)
        table_key(self.table, Qt.Key.Key_Return, self._browse)
        table_key(self.table, Qt.Key.Key_Enter, self._browse)

        self.partitions = PartitionsModel(self)
        self.partitions_proxy = sorting_proxy(self.partitions, self)
        self.partitions_table = make_table(self.partitions_proxy, "PartitionsTable",
                                           stretch="all",
                                           empty="Select a topic above to see its partitions.")
        self.partitions_table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.partitions_title = section("Partitions")
        self.elect_button = button("Elect preferred leaders",
                                   tooltip="Move leadership back to each partition's first "
                                           "replica (preferred leader election)")
        self.elect_button.setObjectName("elect_preferred")

        top = QWidget()
        tl = QVBoxLayout(top)
        tl.setContentsMargins(0, 0, 0, 0)
        tl.addWidget(self.table)
        bottom = QWidget()
        bl = QVBoxLayout(bottom)
        bl.setContentsMargins(0, 0, 0, 0)
        bl.addLayout(hbox(self.partitions_title, None, self.elect_button))
        bl.addWidget(self.partitions_table)
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.setObjectName("TopicsSplit")
        self.splitter.addWidget(top)
        self.splitter.addWidget(bottom)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 1)
        layout.addWidget(self.splitter, 1)

        self.create_button.clicked.connect(self.create_topic)
        self.delete_button.clicked.connect(self._delete)
        self.partitions_button.clicked.connect(self._add_partitions)
        self.configs_button.clicked.connect(self._configs)
        self.elect_button.clicked.connect(self._elect)
        self.produce_button.clicked.connect(
            lambda: self.current_topic() and self.produce_requested.emit(self.current_topic()))
        self.browse_button.clicked.connect(self._browse)
        self._selection_changed()

    # -- snapshot --------------------------------------------------------------------------

    def on_snapshot(self, snap: Any) -> None:
        self.snapshot = snap
        self.model.set_items(snap.topics)
        self._update_empty()
        if self._pending_select and self.select_topic(self._pending_select):
            self._pending_select = None
        self._refresh_partitions()

    def _update_empty(self, *_: Any) -> None:
        """What the topic table says when it shows no row: none yet, or the filter's doing;
        the subtitle counts the topics and says how many the filter hides."""
        if self.snapshot is not None:
            topics = self.snapshot.topics
            parts = sum(len(t.partitions) for t in topics)
            text = f"{len(topics):,} topics · {parts:,} partitions"
            hidden = self.model.rowCount() - self.proxy.rowCount()
            if hidden > 0:
                text += f" · {self.proxy.rowCount():,} shown"
            self.subtitle.setText(text)
        needle = self.filter.text().strip()
        if self.snapshot is None:
            text = WAITING  # not "no topics": we do not know yet
        elif self.model.rowCount() == 0:
            text = NO_TOPICS
        elif needle:
            text = f"No topic matches \u201c{needle}\u201d."
        elif self.hide_internal.isChecked():
            text = ("Only internal topics so far (untick Hide internal to see them). "
                    "Create one with New topic… (Ctrl+N).")
        else:
            text = NO_TOPICS
        self.table.empty_hint.set_text(text)

    def current_topic(self) -> str | None:
        item = selected_item(self.table)
        return item.name if item is not None else None

    def select_topic(self, name: str) -> bool:
        row = self.model.row_of(name)
        if row is None:
            return False
        index = self.proxy.mapFromSource(self.model.index(row, 0))
        if not index.isValid():
            self.filter.clear()
            if name.startswith("__"):
                self.hide_internal.setChecked(False)
            index = self.proxy.mapFromSource(self.model.index(row, 0))
        self.table.selectRow(index.row())
        self.table.scrollTo(index)
        return True

    def _selection_changed(self, *_: Any) -> None:
        has = self.current_topic() is not None
        for b in (self.delete_button, self.partitions_button, self.configs_button,
                  self.elect_button, self.produce_button, self.browse_button):
            b.setEnabled(has)
        self._refresh_partitions()

    def _refresh_partitions(self) -> None:
        name = self.current_topic()
        topic = self.model.item(name) if name else None
        if topic is None:
            self.partitions.set_topic(None)
            self.partitions_title.setText("Partitions — select a topic")
            return
        if self.partitions.items() and self.partitions.items()[0].topic != name:
            self.partitions.clear()
        self.partitions.set_topic(topic)
        urp = sum(1 for p in topic.partitions if len(p.isr) < len(p.replicas))
        offline = sum(1 for p in topic.partitions if p.leader < 0)
        extra = []
        if urp:
            extra.append(f"{urp} under-replicated")
        if offline:
            extra.append(f"{offline} offline")
        self.partitions_title.setText(
            f"Partitions of {name}" + (f" — {', '.join(extra)}" if extra else ""))

    # -- actions ---------------------------------------------------------------------------

    def create_dialog(self) -> CreateTopicDialog:
        brokers = len(self.snapshot.brokers) if self.snapshot else 3
        online = (sum(1 for b in self.snapshot.brokers if b.state in ("online", "running"))
                  if self.snapshot else brokers)
        existing = {t.name for t in self.snapshot.topics} if self.snapshot else set()
        return CreateTopicDialog(self, brokers=max(1, brokers), existing=existing,
                                 online=online)

    def create_topic(self) -> None:
        dialog = self.create_dialog()
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return
        self.submit_create(dialog)

    def submit_create(self, dialog: CreateTopicDialog) -> Any:
        name, partitions, rf, configs = dialog.values()
        return self.session.create_topic(
            name, partitions, rf, configs,
            on_ok=lambda _r: self._after_create(name),
            on_err=lambda exc: show_error(self, f"Could not create topic {name}", exc))

    def _after_create(self, name: str) -> None:
        self._pending_select = name

    def _delete(self) -> None:
        name = self.current_topic()
        if not name:
            return
        answer = QMessageBox.warning(
            self, "Delete topic",
            f"Delete topic <b>{name}</b> and all its records?<br>This cannot be undone.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel)
        if answer == QMessageBox.StandardButton.Yes:
            self.session.delete_topic(
                name, on_err=lambda exc: show_error(self, f"Could not delete {name}", exc))

    def _add_partitions(self) -> None:
        name = self.current_topic()
        topic = self.model.item(name) if name else None
        if topic is None:
            return
        dialog = AddPartitionsDialog(self, name, len(topic.partitions))
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.session.create_partitions(
                name, dialog.total.value(),
                on_err=lambda exc: show_error(self, f"Could not add partitions to {name}",
                                              exc))

    def _configs(self) -> None:
        name = self.current_topic()
        if not name:
            return

        def show(entries: Any) -> None:
            dialog = TopicConfigDialog(self, name, entries)
            if dialog.exec() != QDialog.DialogCode.Accepted:
                return
            set_, delete, _ = dialog.changes()
            if set_ or delete:
                self.session.alter_topic_configs(
                    name, set_, delete,
                    on_err=lambda exc: show_error(self, f"Could not update configs of {name}",
                                                  exc))

        self.session.describe_topic_configs(
            name, on_ok=show,
            on_err=lambda exc: show_error(self, f"Could not read configs of {name}", exc))

    def _elect(self) -> None:
        name = self.current_topic()
        if not name:
            return
        self.session.elect_preferred_leaders(
            name, None,
            on_ok=lambda msg: self.window().statusBar().showMessage(str(msg or "Election done"),
                                                                    5000)
            if hasattr(self.window(), "statusBar") else None,
            on_err=lambda exc: show_error(self, f"Preferred leader election failed for {name}",
                                          exc))

    def _browse(self) -> None:
        name = self.current_topic()
        if name:
            self.browse_requested.emit(name)
