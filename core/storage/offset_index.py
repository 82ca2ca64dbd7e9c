"""Sparse offset index of one segment (Kafka's OffsetIndex).

Entries are (offset, position): a batch's last offset and the byte position where that batch
starts. An entry is added after at least index.interval.bytes of log since the previous one. On
disk: 8 bytes per entry, big-endian int32 (offset - base offset, position), as Kafka's .index.
Keeping, searching and persisting the entries is SparseIndex's.
"""

from __future__ import annotations

import struct

from core.storage.sparse_index import SparseIndex

__all__ = ["OffsetIndex"]


class OffsetIndex(SparseIndex):
    """offset -> file position lookups for one segment (keys: offsets, values: positions)."""

    ENTRY = struct.Struct(">ii")
    RELATIVE_COLUMN = 0

    @property
    def last_offset(self) -> int:
        return self._keys[-1] if self._keys else self.base_offset

    def append(self, offset: int, position: int) -> None:
        """Add an entry; offsets and positions must grow (others are ignored)."""
        self._append(offset, position)

    def lookup(self, offset: int) -> tuple[int, int]:
        """The entry with the largest offset <= ``offset`` (or (base_offset, 0))."""
        index = self._floor(offset)
        if index < 0:
            return self.base_offset, 0
        return self._keys[index], self._values[index]

    def truncate_to_position(self, position: int) -> None:
        """Drop entries pointing at or after ``position`` (the log was cut there)."""
        self._truncate_values_from(position)

    def load(self, log_size: int) -> bool:
        """Load the file; False if missing or not sane (positions must be below ``log_size``)."""
        return super().load(log_size)
