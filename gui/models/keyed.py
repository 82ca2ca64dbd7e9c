"""A table model over immutable snapshot items, updated by diffing successive snapshots.

Each item has a ``key`` (broker id, topic name, (topic, partition), ...). ``set_items`` keeps the
rows whose key survives in place (so persistent indexes, hence selections and scroll positions,
survive a poll), removes vanished rows in contiguous blocks, appends new ones at the end (a
QSortFilterProxyModel puts them where they belong) and emits one ``dataChanged`` spanning the
changed rows. No I/O here: a model only ever sees plain immutable objects.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor

#: Role carrying the raw value used for sorting (numbers sort as numbers, None first).
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
#: Role carrying the row's item itself.
ITEM_ROLE = Qt.ItemDataRole.UserRole + 2
#: Role carrying the row's key.
KEY_ROLE = Qt.ItemDataRole.UserRole + 3

Index = QModelIndex | QPersistentModelIndex


def _plain(value: Any) -> str:
    if value is None:
        return "\u2013"
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, tuple | list):
        return ", ".join(str(v) for v in value) if value else "\u2013"
    return str(value)


@dataclass(frozen=True)
class Column:
    """One column: title, how to read a value from an item, and how to show it."""

    title: str
    value: Callable[[Any], Any]
    fmt: Callable[[Any], str] = _plain
    numeric: bool = False
    tooltip: str = ""
    #: Optional per-cell colour (foreground) from the item, e.g. lag colours.
    color: Callable[[Any], str | None] | None = None
    #: Optional per-cell tooltip from the item.
    cell_tooltip: Callable[[Any], str | None] | None = None


def sort_value(value: Any) -> Any:
    """A value QSortFilterProxyModel can compare: None sorts before everything."""
    if value is None:
        return float("-inf")
    if isinstance(value, tuple | list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, bool):
        return int(value)
    return value


class KeyedTableModel(QAbstractTableModel):
    """Rows are snapshot items identified by ``key_of(item)``; columns are :class:`Column`."""

    columns: Sequence[Column] = ()

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._items: list[Any] = []
        self._keys: list[Hashable] = []
        self._row_of: dict[Hashable, int] = {}
        self._colors: dict[str, QBrush] = {}

    # -- contract to subclasses ------------------------------------------------------------

    def key_of(self, item: Any) -> Hashable:
        return item.key

    def row_color(self, item: Any) -> str | None:
        """A foreground colour name for the whole row, or None."""
        return None

    def row_tooltip(self, item: Any) -> str | None:
        return None

    # -- updates ---------------------------------------------------------------------------

    def set_items(self, items: Iterable[Any]) -> tuple[int, int, int]:
        """Diff ``items`` against the current rows; returns (added, removed, changed) counts."""
        new_items = list(items)
        key_of = self.key_of
        new_keys = [key_of(it) for it in new_items]
        if new_keys == self._keys:  # the common case: same rows, maybe new values
            return 0, 0, self._update_in_place(new_items)
        new_by_key = dict(zip(new_keys, new_items, strict=True))
        removed_rows = [row for row, k in enumerate(self._keys) if k not in new_by_key]
        self._remove_rows(removed_rows)
        # Update the survivors in place.
        changed_lo, changed_hi, changed = len(self._items), -1, 0
        for row, k in enumerate(self._keys):
            item = new_by_key[k]
            if item != self._items[row]:
                self._items[row] = item
                changed += 1
                changed_lo = min(changed_lo, row)
                changed_hi = max(changed_hi, row)
        if changed:
            self._emit_changed(changed_lo, changed_hi)
        added = [(k, it) for k, it in zip(new_keys, new_items, strict=True)
                 if k not in self._row_of]
        if added:
            first = len(self._items)
            self.beginInsertRows(QModelIndex(), first, first + len(added) - 1)
            for k, it in added:
                self._row_of[k] = len(self._items)
                self._keys.append(k)
                self._items.append(it)
            self.endInsertRows()
        return len(added), len(removed_rows), changed

    def _update_in_place(self, new_items: list[Any]) -> int:
        old = self._items
        lo, hi, changed = len(old), -1, 0
        for row, item in enumerate(new_items):
            if item != old[row]:
                old[row] = item
                changed += 1
                if row < lo:
                    lo = row
                hi = row
        if changed:
            self._emit_changed(lo, hi)
        return changed

    def _emit_changed(self, lo: int, hi: int) -> None:
        self.dataChanged.emit(self.index(lo, 0), self.index(hi, len(self.columns) - 1))

    def _remove_rows(self, rows: list[int]) -> None:
        if not rows:
            return
        # Contiguous blocks, removed from the bottom up so earlier row numbers stay valid.
        blocks: list[tuple[int, int]] = []
        start = prev = rows[0]
        for row in rows[1:]:
            if row == prev + 1:
                prev = row
                continue
            blocks.append((start, prev))
            start = prev = row
        blocks.append((start, prev))
        for first, last in reversed(blocks):
            self.beginRemoveRows(QModelIndex(), first, last)
            del self._items[first:last + 1]
            del self._keys[first:last + 1]
            self.endRemoveRows()
        self._row_of = {k: i for i, k in enumerate(self._keys)}

    def clear(self) -> None:
        self.set_items(())

    # -- lookups ---------------------------------------------------------------------------

    def item_at(self, row: int) -> Any:
        return self._items[row]

    def items(self) -> list[Any]:
        return list(self._items)

    def row_of(self, key: Hashable) -> int | None:
        return self._row_of.get(key)

    def item(self, key: Hashable) -> Any:
        row = self._row_of.get(key)
        return None if row is None else self._items[row]

    # -- Qt model --------------------------------------------------------------------------

    def rowCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._items)

    def columnCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.columns)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(self.columns):
            return None
        column = self.columns[section]
        if role == Qt.ItemDataRole.DisplayRole:
            return column.title
        if role == Qt.ItemDataRole.ToolTipRole:  # the full header text, then what it means
            return f"{column.title}: {column.tooltip}" if column.tooltip else column.title
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int((Qt.AlignmentFlag.AlignRight if column.numeric
                        else Qt.AlignmentFlag.AlignLeft) | Qt.AlignmentFlag.AlignVCenter)
        return None

    def _brush(self, name: str) -> QBrush:
        brush = self._colors.get(name)
        if brush is None:
            brush = self._colors[name] = QBrush(QColor(name))
        return brush

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row, col = index.row(), index.column()
        if row >= len(self._items) or col >= len(self.columns):
            return None
        item = self._items[row]
        column = self.columns[col]
        if role == Qt.ItemDataRole.DisplayRole:
            return column.fmt(column.value(item))
        if role == SORT_ROLE:
            return sort_value(column.value(item))
        if role == Qt.ItemDataRole.ForegroundRole:
            name = column.color(item) if column.color else None
            name = name or self.row_color(item)
            return self._brush(name) if name else None
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int((Qt.AlignmentFlag.AlignRight if column.numeric
                        else Qt.AlignmentFlag.AlignLeft) | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole:
            tip = column.cell_tooltip(item) if column.cell_tooltip else None
            return tip or self.row_tooltip(item)
        if role == ITEM_ROLE:
            return item
        if role == KEY_ROLE:
            return self._keys[row]
        return None
