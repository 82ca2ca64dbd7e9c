"""A file-backed RaftLog: one append-only file of length-prefixed, CRC32C-checked entries.

Record layout (big-endian):

    length  u32   bytes after this field (crc + body)
    crc     u32   CRC32C of body
    body:   offset i64, epoch i32, flags u8 (bit 0: control), data bytes

Appends are written in one write and fsynced before append() returns (Raft needs a follower's
acknowledged offsets to be durable). On open the file is scanned; the first record that is
short, fails its CRC or breaks the offset sequence marks a torn tail, and the file is cut
there. The metadata log is small, so entries are also kept in memory for reads.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from pathlib import Path

import crc32c

from core.raft.log import EpochCache, LogEntry

_PREFIX = struct.Struct(">II")
_BODY = struct.Struct(">qiB")
_CONTROL = 0x01


class FileLog:
    """RaftLog over `path` (created if missing); `fsync=False` only for tests that don't care."""

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.path = Path(path)
        self._fsync = fsync
        self._entries: list[LogEntry] = []
        self._positions: list[int] = []  # file position of each entry's record
        self._epochs = EpochCache()
        self.recovered_truncated_bytes = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a+b")  # noqa: SIM115 - owned for the log's lifetime
        self._recover()

    def _recover(self) -> None:
        self._file.seek(0)
        buffer = self._file.read()
        pos = 0
        while pos + _PREFIX.size <= len(buffer):
            length, crc = _PREFIX.unpack_from(buffer, pos)
            end = pos + 4 + length
            if length < 4 + _BODY.size or end > len(buffer):
                break
            body = buffer[pos + _PREFIX.size:end]
            if crc32c.crc32c(body) != crc:
                break
            offset, epoch, flags = _BODY.unpack_from(body, 0)
            if offset != len(self._entries) or epoch < self._epochs.last_epoch():
                break
            entry = LogEntry(epoch, bytes(body[_BODY.size:]), bool(flags & _CONTROL))
            self._epochs.assign(epoch, offset)
            self._entries.append(entry)
            self._positions.append(pos)
            pos = end
        if pos < len(buffer):
            self.recovered_truncated_bytes = len(buffer) - pos
            self._file.truncate(pos)
            self._sync()

    def _sync(self) -> None:
        self._file.flush()
        if self._fsync:
            os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()

    def end_offset(self) -> int:
        return len(self._entries)

    def last_epoch(self) -> int:
        return self._epochs.last_epoch()

    def append(self, entries: Sequence[LogEntry]) -> int:
        base = len(self._entries)
        self._file.seek(0, os.SEEK_END)
        pos = self._file.tell()
        chunks: list[bytes] = []
        positions: list[int] = []
        last_epoch = self._epochs.last_epoch()
        for i, entry in enumerate(entries):
            if entry.epoch < last_epoch:
                raise ValueError(f"epoch {entry.epoch} after epoch {last_epoch}")
            last_epoch = entry.epoch
            body = _BODY.pack(base + i, entry.epoch, _CONTROL if entry.control else 0) + entry.data
            chunks.append(_PREFIX.pack(4 + len(body), crc32c.crc32c(body)))
            chunks.append(body)
            positions.append(pos)
            pos += _PREFIX.size + len(body)
        self._file.write(b"".join(chunks))
        self._sync()
        for i, entry in enumerate(entries):
            self._epochs.assign(entry.epoch, base + i)
        self._entries.extend(entries)
        self._positions.extend(positions)
        return base

    def read(self, start: int, max_entries: int) -> list[LogEntry]:
        return self._entries[start:start + max_entries]

    def epoch_at(self, offset: int) -> int | None:
        if 0 <= offset < len(self._entries):
            return self._entries[offset].epoch
        return None

    def truncate(self, end_offset: int) -> None:
        if end_offset >= len(self._entries):
            return
        end_offset = max(end_offset, 0)
        self._file.truncate(self._positions[end_offset])
        self._sync()
        del self._entries[end_offset:]
        del self._positions[end_offset:]
        self._epochs.truncate(end_offset)

    def end_offset_for_epoch(self, epoch: int) -> tuple[int, int]:
        return self._epochs.end_offset_for_epoch(epoch, len(self._entries))
