"""Small building blocks shared by the views: tables, cards, headers, error dialogs."""

from __future__ import annotations

import traceback
from typing import Any

from PySide6.QtCore import QEvent, QPointF, QRect, QSortFilterProxyModel, Qt, QTimer
from PySide6.QtGui import QAction, QFont, QFontMetrics, QKeySequence, QPainter, QPalette, QPolygonF
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
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


class TableHeader(QHeaderView):
    """The horizontal header of the console's tables.

    - A section is never narrower than its label plus room for the sort arrow
      (:meth:`minimum_width`), whoever resizes it.
    - The sort arrow is drawn beside the label on its inner side (to the left of a
      right-aligned numeric label, to the right of a left-aligned one), never over the text.
    - With ``fit``, columns follow their contents (the rows on screen, up to ``max_width``)
      until the user drags one; the ``stretch`` column (or, with "all", every column the user
      did not size) takes the width left over, and none gets narrower than its contents
      (the table scrolls instead).
    - ``auto_hide`` columns are hidden while all their cells are empty (the brokers' fault
      columns), unless the user showed or hid them.
    - Right-click: a menu to fit the columns again and to show or hide columns.

    Only geometry is computed here; the look stays in the theme's style sheet.
    """

    #: the sort arrow (a small triangle), its gap to the label, and the room the sorted
    #: section keeps for it beyond its label and padding
    ARROW_W, ARROW_H, ARROW_GAP, ARROW_ROOM = 8, 4, 4, 8
    #: QHeaderView::section in resources/themes/base.qss: font-weight 600, 8 px of padding
    #: left and right, a 1 px right border; plus 2 px so rounding never clips a label
    LABEL_WEIGHT, PADDING, BORDER, SAFETY = QFont.Weight.DemiBold, 8, 1, 2
    #: a fitted column shrinks only when it is this much wider than it needs (no jitter)
    SHRINK_SLACK = 24

    def __init__(self, view: QTableView, *, stretch: int | str | None = "last",
                 fit: bool = True, max_width: int = 360, auto_hide: tuple[int, ...] = (),
                 stretch_floor: int | None = None) -> None:
        super().__init__(Qt.Orientation.Horizontal, view)
        self._view = view
        self._stretch = stretch
        self._stretch_floor = stretch_floor  # a single stretch column may shrink to this
        self._fit = fit
        self._max_width = max_width
        self._auto_hide = tuple(auto_hide)
        self._chosen: set[int] = set()  # columns the user showed or hid (no auto-hiding)
        self._manual: set[int] = set()  # columns the user sized (no fitting, no stretching)
        self._extra: dict[int, int] = {}  # what stretching added to each column
        self._dragging = False
        self._busy = False
        self._settled = False
        self._dirty = True
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self.relayout)
        self.setSectionsClickable(True)
        self.setSectionsMovable(False)
        self.setHighlightSections(False)
        self.setStretchLastSection(False)
        self.setMinimumSectionSize(24)
        self.setDefaultSectionSize(110)
        self.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(
            lambda pos: self.columns_menu().popup(self.mapToGlobal(pos)))
        self.sectionResized.connect(self._section_resized)
        self.sectionHandleDoubleClicked.connect(self._handle_double_clicked)
        self.sortIndicatorChanged.connect(self.schedule)  # the sorted column needs the arrow

    # -- model ----------------------------------------------------------------------------

    def setModel(self, model: Any) -> None:
        old = self.model()
        if old is not None:
            for signal in self._model_signals(old):
                try:
                    signal.disconnect(self.schedule)
                except (RuntimeError, TypeError):
                    pass
        super().setModel(model)
        if model is not None:
            for signal in self._model_signals(model):
                signal.connect(self.schedule)
        self.schedule()

    @staticmethod
    def _model_signals(model: Any) -> tuple[Any, ...]:
        return (model.modelReset, model.layoutChanged, model.rowsInserted, model.rowsRemoved,
                model.dataChanged, model.headerDataChanged, model.columnsInserted,
                model.columnsRemoved)

    def _title(self, logical: int) -> str:
        model = self.model()
        if model is None:
            return ""
        text = model.headerData(logical, Qt.Orientation.Horizontal,
                                Qt.ItemDataRole.DisplayRole)
        return "" if text is None else str(text)

    def _alignment(self, logical: int) -> Qt.AlignmentFlag:
        model = self.model()
        value = model.headerData(logical, Qt.Orientation.Horizontal,
                                 Qt.ItemDataRole.TextAlignmentRole) if model else None
        if value is None:
            return self.defaultAlignment()
        return Qt.AlignmentFlag(int(value))

    # -- geometry -------------------------------------------------------------------------

    def sortable(self) -> bool:
        return self._view.isSortingEnabled()

    def label_font(self) -> QFont:
        font = QFont(self.font())
        font.setWeight(self.LABEL_WEIGHT)
        return font

    def label_width(self, logical: int) -> int:
        """The width of a column's label in the header's (bold) font."""
        return QFontMetrics(self.label_font()).horizontalAdvance(self._title(logical))

    def minimum_width(self, logical: int) -> int:
        """The label with the style sheet's padding and border; the sorted column also keeps
        room for the arrow beside its label."""
        sorted_here = self.sortable() and logical == self.sortIndicatorSection()
        return (self.label_width(logical) + 2 * self.PADDING + self.BORDER + self.SAFETY
                + (self.ARROW_ROOM if sorted_here else 0))

    def fitted_width(self, logical: int) -> int:
        """What the column needs: its label, or its widest cell on screen (capped)."""
        content = max(0, self._view.sizeHintForColumn(logical))
        return max(self.minimum_width(logical), min(content, self._max_width))

    def stretch_section(self) -> int | str | None:
        """The logical column that takes the width left over, "all" (shared by the columns
        the user did not size) or None."""
        if self._stretch is None or self._stretch == "all":
            return self._stretch
        if self._stretch == "last":
            for visual in range(self.count() - 1, -1, -1):
                logical = self.logicalIndex(visual)
                if not self.isSectionHidden(logical):
                    align = self._alignment(logical)
                    return None if align & Qt.AlignmentFlag.AlignRight else logical
            return None
        logical = int(self._stretch)
        return logical if 0 <= logical < self.count() else None

    def visible_sections(self) -> list[int]:
        """Logical indexes of the shown columns, in visual order."""
        return [self.logicalIndex(v) for v in range(self.count())
                if not self.isSectionHidden(self.logicalIndex(v))]

    def schedule(self, *_: Any) -> None:
        """Fit the columns once the event loop is back (coalesces bursts of model signals)."""
        self._dirty = True
        if not self._timer.isActive():
            self._timer.start()

    def relayout(self) -> None:
        """Hide empty auto-hide columns, fit the automatic columns (never below their
        minimum), then give the width left over to the stretch column(s)."""
        if self._busy or self.count() == 0 or self.model() is None:
            return
        if not self.isVisible():  # nothing to measure yet: fit when shown
            self._dirty = True
            return
        self._dirty = False
        self._busy = True
        try:
            if self.isSortIndicatorShown():  # QTableView.setSortingEnabled turns Qt's on
                self.setSortIndicatorShown(False)
            self._auto_hide_empty()
            widths = self._base_widths()
            self._extra = self._share_slack(widths)
            for logical, width in widths.items():
                width += self._extra.get(logical, 0)
                if width != self.sectionSize(logical):
                    self.resizeSection(logical, width)
            self._settled = self._settled or self.model().rowCount() > 0
        finally:
            self._busy = False

    def _base_widths(self) -> dict[int, int]:
        """Each shown, interactive column's width before any stretching."""
        widths: dict[int, int] = {}
        for logical in self.visible_sections():
            if self.sectionResizeMode(logical) != QHeaderView.ResizeMode.Interactive:
                continue
            low = self.minimum_width(logical)
            if logical in self._manual:
                widths[logical] = max(self.sectionSize(logical), low)
                continue
            current = self.sectionSize(logical) - self._extra.get(logical, 0)
            if not self._fit:
                widths[logical] = max(current, low)
                continue
            need = self.fitted_width(logical)
            if self._stretch_floor is not None and logical == self._stretch:
                need = max(low, min(need, self._stretch_floor))
            shrink = current - need > (self.SHRINK_SLACK if self._settled else 0)
            widths[logical] = need if need > current or shrink else current
        return widths

    def _share_slack(self, widths: dict[int, int]) -> dict[int, int]:
        """What each stretch column gets on top of its width so the columns fill the view."""
        fixed = sum(self.sectionSize(i) for i in self.visible_sections() if i not in widths)
        slack = self.viewport().width() - fixed - sum(widths.values())
        stretch = self.stretch_section()
        if stretch == "all":
            takers = [i for i in widths if i not in self._manual]
        elif isinstance(stretch, int) and stretch in widths and stretch not in self._manual:
            takers = [stretch]
        else:
            takers = []
        if slack <= 0 or not takers:
            return {}
        share, rest = divmod(slack, len(takers))
        return {logical: share + (1 if k < rest else 0) for k, logical in enumerate(takers)}

    def _auto_hide_empty(self) -> None:
        model = self.model()
        rows = min(model.rowCount(), 1000)
        for logical in self._auto_hide:
            if logical in self._chosen or not 0 <= logical < self.count():
                continue
            empty = not any(model.index(row, logical).data() for row in range(rows))
            if empty != self.isSectionHidden(logical):
                self.setSectionHidden(logical, empty)

    def _section_resized(self, logical: int, _old: int, new: int) -> None:
        if (self._busy or new == 0 or self.isSectionHidden(logical)  # 0: being hidden
                or self.sectionResizeMode(logical) != QHeaderView.ResizeMode.Interactive):
            return
        if self._dragging:
            self._manual.add(logical)
        low = self.minimum_width(logical)
        if new < low:
            self._busy = True
            try:
                self.resizeSection(logical, low)
            finally:
                self._busy = False
        self.schedule()

    def _handle_double_clicked(self, logical: int) -> None:
        self._manual.discard(logical)
        self.schedule()

    def fit_columns(self) -> None:
        """Forget the user's widths: every column follows its contents again."""
        self._manual.clear()
        self._settled = False
        self.schedule()

    def manual_sections(self) -> list[int]:
        return sorted(self._manual)

    def set_manual_sections(self, sections: Any) -> None:
        self._manual = {int(s) for s in sections if 0 <= int(s) < self.count()}
        self.schedule()

    def set_column_visible(self, logical: int, visible: bool) -> None:
        """Show or hide a column as the user chose (the last shown one stays)."""
        if not visible and len(self.visible_sections()) <= 1:
            return
        self._chosen.add(logical)
        self.setSectionHidden(logical, not visible)
        self.schedule()

    def chosen_sections(self) -> list[int]:
        return sorted(self._chosen)

    def set_chosen_sections(self, sections: Any) -> None:
        self._chosen = {int(s) for s in sections if 0 <= int(s) < self.count()}
        self.schedule()

    def columns_menu(self) -> QMenu:
        """The header's context menu: fit the columns, and one check box per column."""
        menu = QMenu(self)
        menu.setObjectName("columns_menu")
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        fit = menu.addAction("Fit columns to contents")
        fit.triggered.connect(self.fit_columns)
        menu.addSection("Columns")
        shown = self.visible_sections()
        for visual in range(self.count()):
            logical = self.logicalIndex(visual)
            action = menu.addAction(self._title(logical))
            action.setCheckable(True)
            action.setChecked(logical in shown)
            action.setEnabled(logical not in shown or len(shown) > 1)
            action.toggled.connect(lambda on, i=logical: self.set_column_visible(i, on))
        return menu

    def restoreState(self, state: Any) -> bool:
        ok = super().restoreState(state)
        self.setSortIndicatorShown(False)  # we draw the arrow (older states had Qt's)
        self.setStretchLastSection(False)
        self.schedule()
        return ok

    # -- events ---------------------------------------------------------------------------

    def mousePressEvent(self, event: Any) -> None:
        self._dragging = True
        super().mousePressEvent(event)

    def mouseReleaseEvent(self, event: Any) -> None:
        try:
            super().mouseReleaseEvent(event)
        finally:
            self._dragging = False

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self.schedule()

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if self._dirty:
            self.schedule()

    def changeEvent(self, event: Any) -> None:
        super().changeEvent(event)
        if event.type() in (QEvent.Type.StyleChange, QEvent.Type.FontChange):
            self.schedule()

    # -- painting -------------------------------------------------------------------------

    def paintSection(self, painter: QPainter, rect: QRect, logical: int) -> None:
        super().paintSection(painter, rect, logical)
        if (self.isSortIndicatorShown() or not self.sortable()
                or logical != self.sortIndicatorSection() or not rect.isValid()):
            return
        text_w = self.label_width(logical)
        align = self._alignment(logical)
        inner = rect.adjusted(self.PADDING, 0, -self.PADDING - self.BORDER, 0)
        if align & Qt.AlignmentFlag.AlignRight:
            label_left = inner.right() + 1 - text_w
        elif align & Qt.AlignmentFlag.AlignHCenter:
            label_left = inner.left() + (inner.width() - text_w) // 2
        else:
            label_left = inner.left()
        w, h = float(self.ARROW_W), float(self.ARROW_H)
        if align & Qt.AlignmentFlag.AlignRight:  # beside the label, on the inner side
            x = label_left - self.ARROW_GAP - self.ARROW_W
        else:
            x = label_left + text_w + self.ARROW_GAP
        x = max(rect.left() + 2, min(x, rect.right() - 2 - self.ARROW_W))
        y = rect.center().y() - h / 2 + 0.5
        if self.sortIndicatorOrder() == Qt.SortOrder.AscendingOrder:  # Qt's convention
            points = [QPointF(x, y), QPointF(x + w, y), QPointF(x + w / 2, y + h)]
        else:
            points = [QPointF(x, y + h), QPointF(x + w, y + h), QPointF(x + w / 2, y)]
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(self.palette().color(QPalette.ColorRole.PlaceholderText))
        painter.drawPolygon(QPolygonF(points))
        painter.restore()


class EmptyHint(QLabel):
    """A muted sentence over an item view's viewport while the view has no rows.

    "No topics yet: New topic… (Ctrl+N)" instead of a blank box; the view's page changes the
    text (e.g. "No topic matches …" while a filter hides every row). Works for any
    QAbstractItemView (QTableView over a proxy, QTableWidget).
    """

    MARGIN = 24

    def __init__(self, view: QAbstractItemView, text: str = "") -> None:
        super().__init__(text, view.viewport())
        self.setObjectName("Muted")
        self.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
        self.setWordWrap(True)
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self._view = view
        view.viewport().installEventFilter(self)
        model = view.model()
        if model is not None:
            for signal in (model.modelReset, model.layoutChanged, model.rowsInserted,
                           model.rowsRemoved):
                signal.connect(self.refresh)
        self.refresh()

    def set_text(self, text: str) -> None:
        if text != self.text():
            self.setText(text)
        self.refresh()

    def refresh(self, *_: Any) -> None:
        model = self._view.model()
        empty = model is None or model.rowCount() == 0
        rect = self._view.viewport().rect()
        self.setGeometry(rect.adjusted(self.MARGIN, self.MARGIN, -self.MARGIN, 0))
        self.setVisible(empty and bool(self.text()))

    def eventFilter(self, watched: Any, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Resize:
            self.refresh()
        return False


def make_table(proxy: Any, name: str, *, stretch: int | str | None = "last", fit: bool = True,
               max_width: int = 360, hidden: tuple[int, ...] = (),
               auto_hide: tuple[int, ...] = (), stretch_floor: int | None = None,
               empty: str = "") -> QTableView:
    """A sortable, row-selecting table view over ``proxy`` with a :class:`TableHeader`.

    ``stretch``: the column that takes the width left over ("last": the last column when it
    holds text; None: no column; "all": every column); ``stretch_floor``: how narrow a single
    stretch column of long text may get before the table scrolls (default: its contents).
    ``fit``: columns follow their contents. ``hidden``: columns hidden at first,
    ``auto_hide``: columns hidden while empty (the header's context menu shows or hides any
    column). ``empty``: what the table says while it has no rows (``view.empty_hint``).
    """
    view = QTableView()
    view.setObjectName(name)
    header = TableHeader(view, stretch=stretch, fit=fit, max_width=max_width,
                         auto_hide=auto_hide, stretch_floor=stretch_floor)
    view.setHorizontalHeader(header)
    view.setModel(proxy)
    view.setSortingEnabled(True)
    header.setSortIndicatorShown(False)  # TableHeader draws the arrow beside the label
    view.setAlternatingRowColors(True)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    view.setShowGrid(False)
    view.setWordWrap(False)
    view.verticalHeader().setVisible(False)
    view.verticalHeader().setDefaultSectionSize(26)
    for column in hidden:
        header.hideSection(column)
    view.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
    view.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
    view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    view.empty_hint = EmptyHint(view, empty)  # type: ignore[attr-defined]
    return view


def table_key(view: QAbstractItemView, key: Any, slot: Any) -> QAction:
    """A key that acts on the table's selected row while the table has the focus
    (e.g. Delete deletes the selected topic, Enter opens it)."""
    action = QAction(view)
    action.setShortcut(QKeySequence(key))
    action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
    action.triggered.connect(lambda _=False: slot())
    view.addAction(action)
    return action


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
    if code is not None and hasattr(code, "name") and code.name.upper() not in message:
        return f"{message}\n\n(Kafka error {code.name.upper()})"
    return message


#: the width an error dialog's message gets before it wraps
ERROR_TEXT_WIDTH = 440


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
    # Qt sizes the box to its title: a broker's message then wraps every 3 words
    informative = box.findChild(QLabel, "qt_msgbox_informativelabel")
    if informative is not None:
        informative.setMinimumWidth(ERROR_TEXT_WIDTH)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()
    return box
