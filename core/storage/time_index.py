"""Sparse time index of one segment (Kafka's TimeIndex).

Entries are (max timestamp so far, offset): appended together with offset index entries when the
segment's max timestamp has grown. On disk: 12 bytes per entry (int64 timestamp, int32 offset -
base offset), as Kafka's .timeindex. Keeping, searching and persisting the entries is
SparseIndex's.
"""

from __future__ import annotations

import struct

from core.storage.sparse_index import SparseIndex

__all__ = ["TimeIndex"]


class TimeIndex(SparseIndex):
    """timestamp -> offset lookups for one segment (keys: timestamps, values: offsets)."""

    ENTRY = struct.Struct(">qi")
    RELATIVE_COLUMN = 1

    @property
    def last_entry(self) -> tuple[int, int]:
        if not self._keys:
            return -1, self.base_offset
        return self._keys[-1], self._values[-1]

    def maybe_append(self, timestamp: int, offset: int) -> None:
        """Add an entry if the timestamp (and offset) grew since the last one."""
        if timestamp >= 0:
            self._append(timestamp, offset)

    def lookup(self, timestamp: int) -> tuple[int, int]:
        """The entry with the largest timestamp <= ``timestamp`` (or (-1, base_offset))."""
        index = self._floor(timestamp)
        if index < 0:
            return -1, self.base_offset
        return self._keys[index], self._values[index]

    def truncate_to_offset(self, offset: int) -> None:
        """Drop entries for offsets >= ``offset``."""
        self._truncate_values_from(offset)

    def load(self, next_offset: int) -> bool:
        """Load the file; False if missing or not sane (offsets must be below ``next_offset``)."""
        return super().load(next_offset)
