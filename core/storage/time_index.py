"""Sparse time index of one segment (Kafka's TimeIndex).

Entries are (max timestamp so far, offset): appended together with offset index entries when the
segment's max timestamp has grown. On disk: 12 bytes per entry (int64 timestamp, int32 relative
offset), as Kafka's .timeindex; kept in memory and written lazily like the offset index.
"""

from __future__ import annotations

import bisect
import os
import struct
from array import array
from pathlib import Path

__all__ = ["TimeIndex"]

ENTRY_SIZE = 12
_ENTRY = struct.Struct(">qi")


class TimeIndex:
    """timestamp -> offset lookups for one segment."""

    entry_size = ENTRY_SIZE

    def __init__(self, path: Path, base_offset: int, max_index_bytes: int) -> None:
        self.path = path
        self.base_offset = base_offset
        self.max_entries = max(1, max_index_bytes // ENTRY_SIZE)
        self._timestamps = array("q")
        self._offsets = array("q")
        self._persisted = 0

    def __len__(self) -> int:
        return len(self._timestamps)

    @property
    def is_full(self) -> bool:
        return len(self._timestamps) >= self.max_entries

    @property
    def last_entry(self) -> tuple[int, int]:
        if not self._timestamps:
            return -1, self.base_offset
        return self._timestamps[-1], self._offsets[-1]

    def entries(self) -> list[tuple[int, int]]:
        return list(zip(self._timestamps, self._offsets, strict=True))

    def maybe_append(self, timestamp: int, offset: int) -> None:
        """Add an entry if the timestamp (and offset) grew since the last one."""
        if self._timestamps and (
            timestamp <= self._timestamps[-1] or offset <= self._offsets[-1]
        ):
            return
        if timestamp < 0:
            return
        self._timestamps.append(timestamp)
        self._offsets.append(offset)

    def lookup(self, timestamp: int) -> tuple[int, int]:
        """The entry with the largest timestamp <= ``timestamp`` (or (-1, base_offset))."""
        index = bisect.bisect_right(self._timestamps, timestamp) - 1
        if index < 0:
            return -1, self.base_offset
        return self._timestamps[index], self._offsets[index]

    def truncate_to_offset(self, offset: int) -> None:
        """Drop entries for offsets >= ``offset``."""
        index = bisect.bisect_left(self._offsets, offset)
        if index < len(self._offsets):
            del self._timestamps[index:]
            del self._offsets[index:]
            self._persisted = min(self._persisted, index)
            self._rewrite()

    def clear(self) -> None:
        del self._timestamps[:]
        del self._offsets[:]
        self._persisted = 0
        self._rewrite()

    def _rewrite(self) -> None:
        data = b"".join(
            _ENTRY.pack(t, o - self.base_offset)
            for t, o in zip(self._timestamps[: self._persisted], self._offsets, strict=False)
        )
        with open(self.path, "wb") as handle:
            handle.write(data)

    def flush(self, *, fsync: bool = False) -> None:
        if self._persisted < len(self._timestamps):
            base = self.base_offset
            data = b"".join(
                _ENTRY.pack(self._timestamps[i], self._offsets[i] - base)
                for i in range(self._persisted, len(self._timestamps))
            )
            with open(self.path, "ab") as handle:
                handle.write(data)
                if fsync:
                    handle.flush()
                    os.fsync(handle.fileno())
            self._persisted = len(self._timestamps)
        elif not self.path.exists():
            self.path.touch()

    def load(self, next_offset: int) -> bool:
        """Load the file; return False (and stay empty) if it is missing or not sane."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return False
        if len(data) % ENTRY_SIZE:
            return False
        timestamps = array("q")
        offsets = array("q")
        last_ts = last_offset = -1
        for timestamp, relative in _ENTRY.iter_unpack(data):
            offset = self.base_offset + relative
            if relative < 0 or timestamp <= last_ts or offset <= last_offset:
                return False
            if offset >= next_offset:
                return False
            timestamps.append(timestamp)
            offsets.append(offset)
            last_ts, last_offset = timestamp, offset
        self._timestamps, self._offsets = timestamps, offsets
        self._persisted = len(offsets)
        return True

    def delete(self) -> None:
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
