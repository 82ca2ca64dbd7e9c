"""The main window: sidebar navigation, pages, menus and shortcuts, status bar."""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import QByteArray, QSettings, QSize, Qt, QTimer
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QProgressBar,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from gui.bridge.backend import Capabilities
from gui.charts.live import ChartsView
from gui.views.browse_view import BrowseView
from gui.views.cluster_view import ClusterView
from gui.views.common import show_error
from gui.views.groups_view import GroupsView
from gui.views.logs_view import LogsView
from gui.views.pages import discover as discover_pages
from gui.views.produce_view import ProduceView
from gui.views.topics_view import TopicsView

PAGES = ("Cluster", "Topics", "Consumer groups", "Produce", "Browse", "Charts", "Logs")
ICONS = ("◉", "☰", "⚇", "➤", "⌕", "∿", "≡")
#: settings group of the tables' header states; v2: fitted columns, the arrow drawn by
#: TableHeader (states saved by older versions kept stale widths, so they are not read)
HEADERS_KEY = "headers.v2"


def page_shortcut(index: int) -> str:
    """The shortcut of the page at ``index``: Ctrl+1 to Ctrl+9, then Alt+1 to Alt+9.

    (Not Ctrl+Shift+digit: with Shift a keyboard sends the digit's symbol, "!" for 1.)"""
    if index < 9:
        return f"Ctrl+{index + 1}"
    if index < 18:
        return f"Alt+{index - 8}"
    return ""


def _ints(values: list[int]) -> str:
    return ",".join(str(v) for v in values)


def _parse_ints(value: Any) -> list[int]:
    if isinstance(value, list | tuple):  # QSettings may hand back a list
        value = ",".join(str(v) for v in value)
    return [int(v) for v in str(value or "").split(",") if v.strip().isdigit()]


class MainWindow(QMainWindow):
    """Owns the views; feeds them snapshots from the Session; remembers its layout."""

    def __init__(self, session: Any, theme: Any = None, settings: QSettings | None = None) -> None:
        super().__init__()
        self.session = session
        self.theme = theme
        self.settings = settings or QSettings()
        self.caps: Capabilities | None = None
        self.leave_running = False
        self.setWindowTitle("kaflab console")
        self.resize(1360, 860)
        self.setMinimumSize(QSize(960, 600))

        self.cluster_view = ClusterView(session)
        self.topics_view = TopicsView(session)
        self.groups_view = GroupsView(session)
        self.produce_view = ProduceView(session)
        self.browse_view = BrowseView(session)
        self.charts_view = ChartsView()
        self.logs_view = LogsView()
        self.pages = (self.cluster_view, self.topics_view, self.groups_view, self.produce_view,
                      self.browse_view, self.charts_view, self.logs_view)
        extra = discover_pages()
        self.page_titles = PAGES + tuple(spec.title for spec in extra)
        self.page_icons = ICONS + tuple(spec.icon for spec in extra)
        self.pages = self.pages + tuple(spec.factory(session) for spec in extra)

        central = QWidget()
        root = QHBoxLayout(central)
        root.setContentsMargins(0, 0, 0, 0)
        root.setSpacing(0)
        sidebar = QFrame()
        sidebar.setObjectName("Sidebar")
        sidebar.setFixedWidth(200)
        side = QVBoxLayout(sidebar)
        side.setContentsMargins(0, 0, 0, 8)
        side.setSpacing(0)
        brand = QLabel("kaflab")
        brand.setObjectName("Brand")
        self.brand_sub = QLabel("console")
        self.brand_sub.setObjectName("BrandSub")
        self.nav = QListWidget()
        self.nav.setObjectName("Nav")
        for i, (icon, name) in enumerate(zip(self.page_icons, self.page_titles, strict=True)):
            item = QListWidgetItem(f"{icon}   {name}")
            shortcut = page_shortcut(i)
            item.setToolTip(f"{name} ({shortcut})" if shortcut else name)
            self.nav.addItem(item)
        side.addWidget(brand)
        side.addWidget(self.brand_sub)
        side.addWidget(self.nav, 1)
        root.addWidget(sidebar)

        body = QWidget()
        body_layout = QVBoxLayout(body)
        body_layout.setContentsMargins(0, 0, 0, 0)
        body_layout.setSpacing(0)
        self.banner = QFrame()
        self.banner.setObjectName("Banner")
        banner_layout = QHBoxLayout(self.banner)
        banner_layout.setContentsMargins(12, 8, 12, 8)
        self.banner_text = QLabel("")
        self.banner_text.setWordWrap(True)
        self.banner_progress = QProgressBar()
        self.banner_progress.setRange(0, 100)
        self.banner_progress.setFixedWidth(220)
        banner_layout.addWidget(self.banner_text, 1)
        banner_layout.addWidget(self.banner_progress)
        self.banner.setVisible(False)
        banner_holder = QWidget()
        bh = QVBoxLayout(banner_holder)
        bh.setContentsMargins(18, 10, 18, 0)
        bh.addWidget(self.banner)
        banner_holder.setVisible(False)
        self._banner_holder = banner_holder
        self.stack = QStackedWidget()
        for page in self.pages:
            self.stack.addWidget(page)
        body_layout.addWidget(banner_holder)
        body_layout.addWidget(self.stack, 1)
        root.addWidget(body, 1)
        self.setCentralWidget(central)
        self.nav.currentRowChanged.connect(self.stack.setCurrentIndex)

        self._build_status_bar()
        self._build_menus()
        self._wire_session()
        self.topics_view.produce_requested.connect(self.show_produce)
        self.topics_view.browse_requested.connect(self.show_browse)
        if theme is not None:
            theme.changed.connect(lambda _n: self.charts_view.apply_theme(theme.tokens))
            self.charts_view.apply_theme(theme.tokens)
        self._last_snapshot_at = 0.0
        self._ticker = QTimer(self)
        self._ticker.setInterval(1000)
        self._ticker.timeout.connect(self._update_age)
        self._ticker.start()
        self.restore_layout()

    # -- chrome ------------------------------------------------------------------------------

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.conn_dot = QLabel("●")
        self.conn_dot.setObjectName("ConnDot")
        self.conn_dot.setStyleSheet("color: #8a8f98;")
        self.bootstrap_label = QLabel("Connecting…")
        self.bootstrap_label.setObjectName("bootstrap_label")
        self.bootstrap_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.copy_button = QToolButton()
        self.copy_button.setObjectName("copy_bootstrap")
        self.copy_button.setText("Copy")
        self.copy_button.setToolTip("Copy the bootstrap servers to the clipboard")
        self.copy_button.clicked.connect(self.copy_bootstrap)
        self.copy_button.setEnabled(False)
        self.mode_label = QLabel("")
        self.busy_label = QLabel("")
        self.poll_label = QLabel("")
        self.poll_label.setObjectName("poll_label")
        bar.addWidget(self.conn_dot)
        bar.addWidget(self.bootstrap_label)
        bar.addWidget(self.copy_button)
        bar.addWidget(self.mode_label)
        bar.addPermanentWidget(self.busy_label)
        bar.addPermanentWidget(self.poll_label)

    def _action(self, menu: Any, text: str, shortcut: Any, slot: Any,
                name: str | None = None) -> QAction:
        action = QAction(text, self)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(slot)
        if name:
            action.setObjectName(name)
        menu.addAction(action)
        self.addAction(action)
        return action

    def _build_menus(self) -> None:
        menubar = self.menuBar()
        file_menu = menubar.addMenu("&File")
        self._action(file_menu, "&Refresh", "F5", self.session.refresh, "refresh")
        file_menu.addSeparator()
        self.leave_running_action = QAction("Leave the local cluster running on exit", self)
        self.leave_running_action.setCheckable(True)
        self.leave_running_action.toggled.connect(lambda on: setattr(self, "leave_running", on))
        file_menu.addAction(self.leave_running_action)
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", "Ctrl+Q", self.close, "quit")

        view = menubar.addMenu("&View")
        for i, name in enumerate(self.page_titles):
            self._action(view, name, page_shortcut(i), lambda _=False, i=i: self.show_page(i))
        view.addSeparator()
        self._action(view, "&Filter", "Ctrl+F", self.focus_filter, "filter")
        self._action(view, "Toggle &dark theme", "Ctrl+T", self.toggle_theme, "theme")

        topics = menubar.addMenu("&Topics")
        self._action(topics, "&New topic…", "Ctrl+N", self.new_topic, "new_topic")
        self._action(topics, "&Produce…", "Ctrl+P", lambda: self.show_produce(None), "produce")
        self._action(topics, "&Browse messages…", "Ctrl+B", lambda: self.show_browse(None),
                     "browse")
        # Ctrl+Enter sends only from the Produce page (elsewhere it is the page's own key,
        # e.g. Run on the Query page); the menu item shows the page, then sends
        send = QAction("Send (in Produce)", self)
        send.setShortcut(QKeySequence("Ctrl+Return"))
        send.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        send.setObjectName("produce_send_action")
        send.triggered.connect(self.send_produce)
        topics.addAction(send)
        self.produce_view.addAction(send)

        help_menu = menubar.addMenu("&Help")
        self._action(help_menu, "Keyboard shortcuts", "F1", self.show_shortcuts)

    def _wire_session(self) -> None:
        s = self.session
        s.progress.connect(self.on_progress)
        s.opened.connect(self.on_opened)
        s.open_failed.connect(self.on_open_failed)
        s.snapshot.connect(self.on_snapshot)
        s.poll_error.connect(self.on_poll_error)
        s.busy.connect(self.on_busy)

    # -- session events ----------------------------------------------------------------------

    def on_progress(self, message: str, fraction: float) -> None:
        if self.caps is not None:  # a late progress report after the session opened
            return
        self._banner_holder.setVisible(True)
        self.banner.setVisible(True)
        self.banner_text.setText(message)
        self.banner_progress.setValue(int(fraction * 100))
        self.bootstrap_label.setText(message)

    def on_opened(self, caps: Capabilities) -> None:
        self.caps = caps
        self.banner.setVisible(False)
        self._banner_holder.setVisible(False)
        self.bootstrap_label.setText(caps.bootstrap)
        self.bootstrap_label.setToolTip("Bootstrap servers for any Kafka client")
        self.copy_button.setEnabled(True)
        if caps.supervised:
            self.mode_label.setText("· local cluster" + (" (started by the console)"
                                                         if caps.owns_cluster else ""))
            self.brand_sub.setText("local cluster")
        else:
            self.mode_label.setText("· attached (protocol only)")
            self.brand_sub.setText("attached")
        self.leave_running_action.setEnabled(caps.owns_cluster)
        self.cluster_view.set_capabilities(caps)
        for page in self.pages[len(PAGES):]:
            if hasattr(page, "set_capabilities"):
                page.set_capabilities(caps)
        self.logs_view.set_source(
            f"Following {caps.data_dir}/broker-*/broker.log" if caps.logs_available else None)
        self.setWindowTitle(f"kaflab console — {caps.bootstrap}")

    def on_open_failed(self, exc: BaseException) -> None:
        self.banner_text.setText(f"Could not open the cluster: {exc}")
        self.banner_progress.setVisible(False)
        self.conn_dot.setStyleSheet("color: #d64545;")
        self.bootstrap_label.setText("Not connected")
        show_error(self, "Could not open the cluster", exc)

    def on_snapshot(self, snap: Any) -> None:
        self._last_snapshot_at = time.monotonic()
        self.conn_dot.setStyleSheet("color: #2e9d57;" if snap.ok else "color: #d08a00;")
        self.conn_dot.setToolTip("Connected" if snap.ok else "\n".join(snap.errors))
        for page in self.pages:
            page.on_snapshot(snap)
        self.poll_label.setText(f"polled in {snap.poll_duration_s * 1000:.0f} ms")

    def on_poll_error(self, message: str) -> None:
        self.conn_dot.setStyleSheet("color: #d64545;")
        self.conn_dot.setToolTip(message)
        self.poll_label.setText(f"poll failed: {message[:80]}")

    def on_busy(self, label: str, running: bool) -> None:
        self.busy_label.setText(f"{label}…" if running else "")

    def _update_age(self) -> None:
        if self._last_snapshot_at and time.monotonic() - self._last_snapshot_at > 10:
            self.conn_dot.setStyleSheet("color: #d08a00;")
            self.conn_dot.setToolTip("No fresh snapshot for more than 10 s")

    # -- commands ----------------------------------------------------------------------------

    def show_page(self, index: int) -> None:
        self.nav.setCurrentRow(index)

    def copy_bootstrap(self) -> None:
        if self.caps is not None:
            QGuiApplication.clipboard().setText(self.caps.bootstrap)
            self.statusBar().showMessage("Bootstrap servers copied", 2000)

    def new_topic(self) -> None:
        self.show_page(1)
        self.topics_view.create_topic()

    def show_produce(self, topic: str | None) -> None:
        if topic:
            self.produce_view.set_topic(topic)
        self.show_page(3)

    def send_produce(self) -> None:
        self.show_page(self.pages.index(self.produce_view))
        self.produce_view.send()

    def show_browse(self, topic: str | None) -> None:
        if topic:
            self.browse_view.set_topic(topic)
        self.show_page(4)
        if topic:
            self.browse_view.read()

    def focus_filter(self) -> None:
        page = self.stack.currentWidget()
        target = getattr(page, "filter", None)
        if target is not None and hasattr(target, "setFocus"):
            target.setFocus()
            target.selectAll()
        else:  # not silent: say why nothing happened
            title = self.page_titles[self.stack.currentIndex()]
            self.statusBar().showMessage(f"The {title} page has no filter (Ctrl+F)", 3000)

    def toggle_theme(self) -> None:
        if self.theme is not None:
            self.theme.toggle()

    def show_shortcuts(self) -> None:
        from PySide6.QtWidgets import QMessageBox

        QMessageBox.information(self, "Keyboard shortcuts", self.shortcuts_text())

    def shortcuts_text(self) -> str:
        """The help's list of shortcuts: the pages' keys come from the View menu's actions."""
        pages = "\n".join(f"{page_shortcut(i)}\t{name}" for i, name in
                          enumerate(self.page_titles) if page_shortcut(i))
        return (
            "F5\tRefresh now\nCtrl+N\tNew topic\nCtrl+P\tProduce\n"
            "Ctrl+B\tBrowse messages\nCtrl+F\tFilter the current table\n"
            "Ctrl+Enter\tSend (Produce page), Run (Query page)\nCtrl+T\tToggle dark theme\n"
            "Ctrl+Q\tQuit\n"
            "\nTopics / Consumer groups table:\n"
            "Enter\tBrowse the selected topic's messages\n"
            "Delete\tDelete the selected topic or (empty) group…\n"
            "\nPages:\n" + pages + "\n"
            "\nCluster page, selected broker:\n"
            "Ctrl+Shift+L\tAdd network latency…\nCtrl+Shift+D\tDrop connections\n"
            "Ctrl+Shift+I\tCut off from other brokers\nCtrl+Shift+H\tBlackhole\n"
            "Ctrl+Shift+C\tClear network fault\nCtrl+Shift+R\tReplication throttle…")

    # -- layout persistence -------------------------------------------------------------------

    def _splitters(self) -> dict[str, Any]:
        return {"cluster": self.cluster_view.splitter, "topics": self.topics_view.splitter,
                "groups": self.groups_view.splitter, "browse": self.browse_view.splitter}

    def _tables(self) -> dict[str, Any]:
        return {"topics": self.topics_view.table, "brokers": self.cluster_view.table,
                "groups": self.groups_view.table,
                "partitions": self.topics_view.partitions_table}

    def save_layout(self) -> None:
        s = self.settings
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState())
        s.setValue("window/page", self.nav.currentRow())
        for name, splitter in self._splitters().items():
            s.setValue(f"splitters/{name}", splitter.saveState())
        for name, table in self._tables().items():
            header = table.horizontalHeader()
            s.setValue(f"{HEADERS_KEY}/{name}", header.saveState())
            s.setValue(f"{HEADERS_KEY}/{name}.sized", _ints(header.manual_sections()))
            s.setValue(f"{HEADERS_KEY}/{name}.chosen", _ints(header.chosen_sections()))
        if self.theme is not None:
            s.setValue("theme", self.theme.name)
        s.sync()

    def restore_layout(self) -> None:
        s = self.settings
        geometry = s.value("window/geometry")
        if isinstance(geometry, QByteArray | bytes):
            self.restoreGeometry(geometry)
        state = s.value("window/state")
        if isinstance(state, QByteArray | bytes):
            self.restoreState(state)
        for name, splitter in self._splitters().items():
            value = s.value(f"splitters/{name}")
            if isinstance(value, QByteArray | bytes):
                splitter.restoreState(value)
        for name, table in self._tables().items():  # older "headers/" states are ignored
            header = table.horizontalHeader()
            value = s.value(f"{HEADERS_KEY}/{name}")
            if isinstance(value, QByteArray | bytes):
                header.restoreState(value)
                header.set_manual_sections(_parse_ints(s.value(f"{HEADERS_KEY}/{name}.sized")))
                header.set_chosen_sections(_parse_ints(s.value(f"{HEADERS_KEY}/{name}.chosen")))
        try:
            page = int(s.value("window/page", 0))
        except (TypeError, ValueError):
            page = 0
        self.show_page(page if 0 <= page < len(self.pages) else 0)

    def closeEvent(self, event: Any) -> None:
        self.save_layout()
        super().closeEvent(event)
