"""Browsed records: a bounded table and the key/value renderings (text, pretty JSON, hex)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QSortFilterProxyModel

from gui.models.keyed import ITEM_ROLE, SORT_ROLE, Column, KeyedTableModel

MAX_ROWS = 5000


def as_text(data: bytes | None) -> str:
    if data is None:
        return "null"
    return data.decode("utf-8", "replace")


def as_hex(data: bytes | None, width: int = 16) -> str:
    if data is None:
        return "null"
    lines = []
    for i in range(0, len(data), width):
        chunk = data[i:i + width]
        hexes = " ".join(f"{b:02x}" for b in chunk)
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{i:08x}  {hexes:<{width * 3}} {text}")
    return "\n".join(lines) or "(empty)"


def as_json(data: bytes | None) -> str | None:
    """Pretty JSON, or None when the bytes are not JSON."""
    if data is None:
        return None
    try:
        return json.dumps(json.loads(data), indent=2, ensure_ascii=False, sort_keys=False)
    except (ValueError, UnicodeDecodeError):
        return None


def render(data: bytes | None, mode: str) -> str:
    """``mode`` is auto | json | text | hex; auto picks JSON, then text, then hex."""
    if mode == "hex":
        return as_hex(data)
    if mode in ("json", "auto"):
        pretty = as_json(data)
        if pretty is not None:
            return pretty
        if mode == "json":
            return "(not JSON)\n" + as_text(data)
    if data is not None and mode == "auto":
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return as_hex(data)
    return as_text(data)


def one_line(data: bytes | None, limit: int = 200) -> str:
    if data is None:
        return "null"
    text = data[:limit * 2].decode("utf-8", "replace").replace("\n", " ")
    return text if len(text) <= limit else text[:limit] + "…"


def ts_text(ms: int) -> str:
    if ms < 0:
        return "\u2013"
    return datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


class MessagesModel(KeyedTableModel):
    """Records read from a topic, oldest first; bounded to MAX_ROWS (oldest dropped)."""

    columns = (
        Column("Partition", lambda r: r.partition, numeric=True),
        Column("Offset", lambda r: r.offset, numeric=True),
        Column("Timestamp", lambda r: r.timestamp_ms, fmt=ts_text),
        Column("Key", lambda r: one_line(r.key, 60)),
        Column("Value", lambda r: one_line(r.value)),
        Column("Headers", lambda r: len(r.headers), numeric=True,
               fmt=lambda n: str(n) if n else ""),
    )

    def key_of(self, item: Any) -> Any:
        return item.key_id

    def append(self, records: list[Any]) -> None:
        """Add records (live tail); keeps at most MAX_ROWS."""
        if not records:
            return
        items = self.items() + list(records)
        self.set_items(items[-MAX_ROWS:])


class MessageFilterProxy(QSortFilterProxyModel):
    """Keeps records whose key, value or headers contain the filter text."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.setSortRole(SORT_ROLE)
        self.setDynamicSortFilter(True)
        self._needle = b""

    def set_needle(self, text: str) -> None:
        self._needle = text.encode("utf-8").lower()
        self.invalidateFilter()

    def filterAcceptsRow(self, source_row: int,
                         source_parent: QModelIndex | QPersistentModelIndex) -> bool:
        if not self._needle:
            return True
        model = self.sourceModel()
        r = model.data(model.index(source_row, 0, source_parent), ITEM_ROLE)
        if r is None:
            return False
        needle = self._needle
        if r.key and needle in r.key.lower():
            return True
        if r.value and needle in r.value.lower():
            return True
        return any(needle in k.encode().lower() or (v and needle in v.lower())
                   for k, v in r.headers)

