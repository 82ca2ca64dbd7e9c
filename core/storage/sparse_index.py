"""What a segment's offset index and time index share (Kafka's AbstractIndex).

Both are sparse lists of (key, value) entries in which keys and values only grow: the offset
index maps offsets to file positions, the time index timestamps to offsets. They live in memory
as two int64 arrays searched with bisect and go to disk lazily (on flush, roll and close) as
fixed-size big-endian entries in which offsets are stored relative to the segment's base offset.
Recovery rebuilds any segment that was not flushed, so the file never has to be ahead of the log.
"""

from __future__ import annotations

import bisect
import os
import struct
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

__all__ = ["SparseIndex"]


class SparseIndex:
    """Growing (key, value) entries of one segment, persisted as ``ENTRY`` records.

    Subclasses set ``ENTRY`` (the on-disk layout of one entry) and ``RELATIVE_COLUMN`` (0 when
    the key is the offset stored relative to the base offset, 1 when the value is). The produce
    path appends to ``_keys`` / ``_values`` directly (see LogSegment.append_batch).
    """

    ENTRY: ClassVar[struct.Struct]
    RELATIVE_COLUMN: ClassVar[int]

    def __init__(self, path: Path, base_offset: int, max_index_bytes: int) -> None:
        self.path = path
        self.base_offset = base_offset
        self.entry_size = self.ENTRY.size
        self.max_entries = max(1, max_index_bytes // self.entry_size)
        self._keys = array("q")
        self._values = array("q")
        self._persisted = 0  # entries already in the file

    def __len__(self) -> int:
        return len(self._keys)

    @property
    def is_full(self) -> bool:
        return len(self._keys) >= self.max_entries

    def entries(self) -> list[tuple[int, int]]:
        return list(zip(self._keys, self._values, strict=True))

    def _append(self, key: int, value: int) -> None:
        """Add an entry unless it would not grow both columns."""
        if self._keys and (key <= self._keys[-1] or value <= self._values[-1]):
            return
        self._keys.append(key)
        self._values.append(value)

    def _floor(self, key: int) -> int:
        """Index of the entry with the largest key <= ``key`` (-1: none)."""
        return bisect.bisect_right(self._keys, key) - 1

    def _truncate_values_from(self, value: int) -> None:
        """Drop the entries whose value is >= ``value``."""
        index = bisect.bisect_left(self._values, value)
        if index < len(self._keys):
            del self._keys[index:]
            del self._values[index:]
            self._persisted = min(self._persisted, index)
            self._rewrite()

    def clear(self) -> None:
        del self._keys[:]
        del self._values[:]
        self._persisted = 0
        self._rewrite()

    def _encoded(self, start: int, stop: int) -> bytes:
        pack, base = self.ENTRY.pack, self.base_offset
        keys, values = self._keys, self._values
        if self.RELATIVE_COLUMN == 0:
            return b"".join(pack(keys[i] - base, values[i]) for i in range(start, stop))
        return b"".join(pack(keys[i], values[i] - base) for i in range(start, stop))

    def _decoded(self, data: bytes) -> Iterator[tuple[int, int, int]]:
        """(key, value, relative offset) of each entry in ``data``."""
        base = self.base_offset
        if self.RELATIVE_COLUMN == 0:
            for relative, value in self.ENTRY.iter_unpack(data):
                yield base + relative, value, relative
        else:
            for key, relative in self.ENTRY.iter_unpack(data):
                yield key, base + relative, relative

    def _rewrite(self) -> None:
        with open(self.path, "wb") as handle:
            handle.write(self._encoded(0, self._persisted))

    def flush(self, *, fsync: bool = False) -> None:
        """Write the entries not yet on disk to the file (creating it if missing)."""
        if self._persisted < len(self._keys):
            data = self._encoded(self._persisted, len(self._keys))
            with open(self.path, "ab") as handle:
                handle.write(data)
                if fsync:
                    handle.flush()
                    os.fsync(handle.fileno())
            self._persisted = len(self._keys)
        elif not self.path.exists():
            self.path.touch()

    def load(self, value_limit: int) -> bool:
        """Load the file; return False (and stay empty) if it is missing or not sane: a partial
        entry, a negative relative offset, keys or values that do not grow, or a value at or
        above ``value_limit`` (the log's size for positions, its next offset for offsets)."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return False
        if len(data) % self.entry_size:
            return False
        keys = array("q")
        values = array("q")
        last_key = last_value = -1
        for key, value, relative in self._decoded(data):
            if relative < 0 or key <= last_key or value <= last_value or value >= value_limit:
                return False
            keys.append(key)
            values.append(value)
            last_key, last_value = key, value
        self._keys, self._values = keys, values
        self._persisted = len(keys)
        return True

    def delete(self) -> None:
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
