"""Small building blocks shared by the views: tables, cards, headers, error dialogs."""

from __future__ import annotations

import traceback
from typing import Any

from PySide6.QtCore import QSortFilterProxyModel, Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from gui.models.keyed import ITEM_ROLE, SORT_ROLE


def sorting_proxy(model: Any, parent: Any = None) -> QSortFilterProxyModel:
    proxy = QSortFilterProxyModel(parent)
    proxy.setSourceModel(model)
    proxy.setSortRole(SORT_ROLE)
    proxy.setDynamicSortFilter(True)
    proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
    return proxy


def make_table(proxy: Any, name: str, stretch_last: bool = True) -> QTableView:
    """A sortable, row-selecting table view over ``proxy``."""
    view = QTableView()
    view.setObjectName(name)
    view.setModel(proxy)
    view.setSortingEnabled(True)
    view.setAlternatingRowColors(True)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    view.setShowGrid(False)
    view.setWordWrap(False)
    view.verticalHeader().setVisible(False)
    view.verticalHeader().setDefaultSectionSize(26)
    header = view.horizontalHeader()
    header.setStretchLastSection(stretch_last)
    header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    header.setDefaultSectionSize(110)
    header.setHighlightSections(False)
    view.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
    view.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
    view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    return view


def selected_item(view: QTableView) -> Any:
    """The snapshot item of the selected row, or None."""
    sel = view.selectionModel()
    if sel is None:
        return None
    rows = sel.selectedRows()
    if not rows:
        return None
    return rows[0].data(ITEM_ROLE)


def select_key(view: QTableView, column0_text: str) -> bool:
    """Select the row whose first column shows ``column0_text``; True if found."""
    model = view.model()
    for row in range(model.rowCount()):
        if model.index(row, 0).data() == column0_text:
            view.selectRow(row)
            return True
    return False


class Card(QFrame):
    """A summary tile: a big value and a small caption."""

    def __init__(self, caption: str, value: str = "\u2013") -> None:
        super().__init__()
        self.setObjectName("Card")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(14, 10, 14, 10)
        layout.setSpacing(2)
        self.value = QLabel(value)
        self.value.setObjectName("CardValue")
        self.caption = QLabel(caption)
        self.caption.setObjectName("CardLabel")
        layout.addWidget(self.value)
        layout.addWidget(self.caption)

    def set(self, value: str, state: str = "") -> None:
        self.value.setText(value)
        if self.value.property("state") != state:
            self.value.setProperty("state", state)
            self.value.style().unpolish(self.value)
            self.value.style().polish(self.value)


def page_header(title: str, subtitle: str = "") -> tuple[QWidget, QLabel]:
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 4)
    layout.setSpacing(0)
    t = QLabel(title)
    t.setObjectName("PageTitle")
    s = QLabel(subtitle)
    s.setObjectName("PageSubtitle")
    layout.addWidget(t)
    layout.addWidget(s)
    return box, s


def section(title: str) -> QLabel:
    label = QLabel(title)
    label.setObjectName("SectionTitle")
    return label


def button(text: str, *, primary: bool = False, danger: bool = False,
           tooltip: str = "") -> QPushButton:
    b = QPushButton(text)
    if primary:
        b.setProperty("primary", True)
    if danger:
        b.setProperty("danger", True)
    if tooltip:
        b.setToolTip(tooltip)
    return b


def hbox(*widgets: Any, stretch_at: int | None = None, margins: int = 0) -> QHBoxLayout:
    layout = QHBoxLayout()
    layout.setContentsMargins(margins, margins, margins, margins)
    layout.setSpacing(6)
    for i, w in enumerate(widgets):
        if stretch_at == i:
            layout.addStretch(1)
        if isinstance(w, QWidget):
            layout.addWidget(w)
        elif w is None:
            layout.addStretch(1)
        else:
            layout.addLayout(w)
    if stretch_at is not None and stretch_at >= len(widgets):
        layout.addStretch(1)
    return layout


def describe_error(exc: BaseException) -> str:
    """A one-paragraph, human message for an exception (no traceback)."""
    message = str(exc).strip()
    name = type(exc).__name__
    if not message:
        return name
    code = getattr(exc, "code", None)
    if code is not None and hasattr(code, "name"):
        return f"{message}\n\n(Kafka error {code.name.upper()})"
    return message


def show_error(parent: QWidget | None, title: str, exc: BaseException) -> QMessageBox:
    """A clear, non-blocking error dialog; the traceback only under "Show Details"."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle(title)
    box.setText(f"<b>{title}</b>")
    box.setInformativeText(describe_error(exc))
    details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).strip()
    if details and exc.__traceback__ is not None:
        box.setDetailedText(details)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()
    return box
