"""Sparse offset index of one segment (Kafka's OffsetIndex).

Entries are (relative offset, position): ``relative offset`` is a batch's last offset minus the
segment's base offset and ``position`` the byte position where that batch starts. An entry is
added after at least index.interval.bytes of log since the previous one. On disk: 8 bytes per
entry, big-endian int32 pairs, as Kafka's .index. In memory: two arrays searched with bisect.
Entries are written to the file lazily (on flush/roll/close); recovery rebuilds any segment
that was not flushed, so the file never has to be ahead of the log.
"""

from __future__ import annotations

import bisect
import os
import struct
from array import array
from pathlib import Path

__all__ = ["OffsetIndex"]

ENTRY_SIZE = 8
_ENTRY = struct.Struct(">ii")


class OffsetIndex:
    """offset -> file position lookups for one segment."""

    entry_size = ENTRY_SIZE

    def __init__(self, path: Path, base_offset: int, max_index_bytes: int) -> None:
        self.path = path
        self.base_offset = base_offset
        self.max_entries = max(1, max_index_bytes // ENTRY_SIZE)
        self._offsets = array("q")  # absolute offsets
        self._positions = array("q")
        self._persisted = 0

    def __len__(self) -> int:
        return len(self._offsets)

    @property
    def is_full(self) -> bool:
        return len(self._offsets) >= self.max_entries

    @property
    def last_offset(self) -> int:
        return self._offsets[-1] if self._offsets else self.base_offset

    def entries(self) -> list[tuple[int, int]]:
        return list(zip(self._offsets, self._positions, strict=True))

    def append(self, offset: int, position: int) -> None:
        """Add an entry; offsets and positions must grow."""
        if self._offsets and (offset <= self._offsets[-1] or position <= self._positions[-1]):
            return
        self._offsets.append(offset)
        self._positions.append(position)

    def lookup(self, offset: int) -> tuple[int, int]:
        """The entry with the largest offset <= ``offset`` (or (base_offset, 0))."""
        index = bisect.bisect_right(self._offsets, offset) - 1
        if index < 0:
            return self.base_offset, 0
        return self._offsets[index], self._positions[index]

    def truncate_to_position(self, position: int) -> None:
        """Drop entries pointing at or after ``position`` (the log was cut there)."""
        index = bisect.bisect_left(self._positions, position)
        if index < len(self._offsets):
            del self._offsets[index:]
            del self._positions[index:]
            self._persisted = min(self._persisted, index)
            self._rewrite()

    def clear(self) -> None:
        del self._offsets[:]
        del self._positions[:]
        self._persisted = 0
        self._rewrite()

    def _rewrite(self) -> None:
        data = b"".join(
            _ENTRY.pack(o - self.base_offset, p)
            for o, p in zip(self._offsets[: self._persisted], self._positions, strict=False)
        )
        with open(self.path, "wb") as handle:
            handle.write(data)

    def flush(self, *, fsync: bool = False) -> None:
        """Write entries not yet on disk to the file."""
        if self._persisted < len(self._offsets):
            base = self.base_offset
            data = b"".join(
                _ENTRY.pack(self._offsets[i] - base, self._positions[i])
                for i in range(self._persisted, len(self._offsets))
            )
            with open(self.path, "ab") as handle:
                handle.write(data)
                if fsync:
                    handle.flush()
                    os.fsync(handle.fileno())
            self._persisted = len(self._offsets)
        elif not self.path.exists():
            self.path.touch()

    def load(self, log_size: int) -> bool:
        """Load the file; return False (and stay empty) if it is missing or not sane."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return False
        if len(data) % ENTRY_SIZE:
            return False
        offsets = array("q")
        positions = array("q")
        last_offset = last_position = -1
        for relative, position in _ENTRY.iter_unpack(data):
            offset = self.base_offset + relative
            if relative < 0 or offset <= last_offset or position <= last_position:
                return False
            if position >= log_size:
                return False
            offsets.append(offset)
            positions.append(position)
            last_offset, last_position = offset, position
        self._offsets, self._positions = offsets, positions
        self._persisted = len(offsets)
        return True

    def delete(self) -> None:
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
