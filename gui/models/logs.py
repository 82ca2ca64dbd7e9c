"""Broker log lines: an append-only, bounded table and a level/broker/text filter."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
)
from PySide6.QtGui import QBrush, QColor

from gui.models import fmt

MAX_LINES = 20_000
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_RANK = {name: i for i, name in enumerate(LEVELS)}
_COLORS = {"DEBUG": fmt.MUTED, "WARNING": fmt.WARN, "ERROR": fmt.BAD, "CRITICAL": fmt.BAD}


class LogModel(QAbstractTableModel):
    """Rows are (broker id, level, text); the oldest lines are dropped past MAX_LINES."""

    HEADERS = ("Broker", "Level", "Line")

    def __init__(self, parent: Any = None, max_lines: int = MAX_LINES) -> None:
        super().__init__(parent)
        self.lines: list[tuple[int, str, str]] = []
        self.max_lines = max_lines
        self._brushes = {k: QBrush(QColor(v)) for k, v in _COLORS.items()}

    def append(self, lines: list[tuple[int, str, str]]) -> None:
        if not lines:
            return
        lines = lines[-self.max_lines:]
        overflow = len(self.lines) + len(lines) - self.max_lines
        if overflow > 0:
            self.beginRemoveRows(QModelIndex(), 0, overflow - 1)
            del self.lines[:overflow]
            self.endRemoveRows()
        first = len(self.lines)
        self.beginInsertRows(QModelIndex(), first, first + len(lines) - 1)
        self.lines.extend(lines)
        self.endInsertRows()

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.lines)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else 3

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation != Qt.Orientation.Horizontal:
            return None
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            return self.HEADERS[section]
        if role == Qt.ItemDataRole.TextAlignmentRole:  # over the left-aligned cells
            return int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex,
             role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        broker, level, text = self.lines[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return (str(broker), level, text)[index.column()]
        if role == Qt.ItemDataRole.ForegroundRole:
            return self._brushes.get(level)
        return None


class LogFilterProxy(QSortFilterProxyModel):
    """Minimum level, one broker or all, and a case-insensitive substring."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.min_level = "DEBUG"
        self.broker: int | None = None
        self.needle = ""

    def configure(self, min_level: str | None = None, broker: int | str | None = "keep",
                  needle: str | None = None) -> None:
        if min_level is not None:
            self.min_level = min_level
        if broker != "keep":
            self.broker = broker  # type: ignore[assignment]
        if needle is not None:
            self.needle = needle.lower()
        self.invalidateFilter()

    def filterAcceptsRow(self, source_row: int,
                         source_parent: QModelIndex | QPersistentModelIndex) -> bool:
        broker, level, text = self.sourceModel().lines[source_row]
        if self.broker is not None and broker != self.broker:
            return False
        if _RANK.get(level, 1) < _RANK[self.min_level]:
            return False
        return not self.needle or self.needle in text.lower()
