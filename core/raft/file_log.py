"""A file-backed RaftLog: one append-only file of length-prefixed, CRC32C-checked entries.

Record layout (big-endian):

    length  u32   bytes after this field (crc + body)
    crc     u32   CRC32C of body
    body:   offset i64, epoch i32, flags u8 (bit 0: control, bit 1: base), data bytes

Appends are written in one write and fsynced before append() returns (Raft needs a follower's
acknowledged offsets to be durable). On open the file is scanned; the first record that is
short, fails its CRC or breaks the offset sequence marks a torn tail, and the file is cut
there. The metadata log is small, so entries are also kept in memory for reads.

Once a snapshot covers a prefix (KIP-630), the file is rewritten atomically (temp file, fsync,
rename, fsync of the directory) to start with a *base* record: offset = the log start offset,
epoch = the snapshot's epoch, no data. A file without one starts at offset 0.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from pathlib import Path

import crc32c

from core.raft.log import EpochCache, LogEntry, _epoch_at, _epoch_before_cut

_PREFIX = struct.Struct(">II")
_BODY = struct.Struct(">qiB")
_CONTROL = 0x01
_BASE = 0x02


def _record(offset: int, epoch: int, flags: int, data: bytes) -> bytes:
    body = _BODY.pack(offset, epoch, flags) + data
    return _PREFIX.pack(4 + len(body), crc32c.crc32c(body)) + body


class FileLog:
    """RaftLog over `path` (created if missing); `fsync=False` only for tests that don't care."""

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.path = Path(path)
        self._fsync = fsync
        self._entries: list[LogEntry] = []
        self._positions: list[int] = []  # file position of each entry's record
        self._start = 0
        self._epochs = EpochCache()
        self.recovered_truncated_bytes = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a+b")  # noqa: SIM115 - owned for the log's lifetime
        self._recover()

    def _recover(self) -> None:
        self._file.seek(0)
        buffer = self._file.read()
        pos = 0
        first = True
        while pos + _PREFIX.size <= len(buffer):
            length, crc = _PREFIX.unpack_from(buffer, pos)
            end = pos + 4 + length
            if length < 4 + _BODY.size or end > len(buffer):
                break
            body = buffer[pos + _PREFIX.size:end]
            if crc32c.crc32c(body) != crc:
                break
            offset, epoch, flags = _BODY.unpack_from(body, 0)
            if flags & _BASE:
                if not first:
                    break
                self._start = offset
                self._epochs.reset(offset, epoch)
                first = False
                pos = end
                continue
            first = False
            if offset != self.end_offset() or epoch < self._epochs.last_epoch():
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

    def start_offset(self) -> int:
        return self._start

    def end_offset(self) -> int:
        return self._start + len(self._entries)

    def last_epoch(self) -> int:
        return self._epochs.last_epoch()

    def append(self, entries: Sequence[LogEntry]) -> int:
        base = self.end_offset()
        self._file.seek(0, os.SEEK_END)
        pos = self._file.tell()
        chunks: list[bytes] = []
        positions: list[int] = []
        last_epoch = self._epochs.last_epoch()
        for i, entry in enumerate(entries):
            if entry.epoch < last_epoch:
                raise ValueError(f"epoch {entry.epoch} after epoch {last_epoch}")
            last_epoch = entry.epoch
            record = _record(base + i, entry.epoch, _CONTROL if entry.control else 0, entry.data)
            chunks.append(record)
            positions.append(pos)
            pos += len(record)
        self._file.write(b"".join(chunks))
        self._sync()
        for i, entry in enumerate(entries):
            self._epochs.assign(entry.epoch, base + i)
        self._entries.extend(entries)
        self._positions.extend(positions)
        return base

    def read(self, start: int, max_entries: int) -> list[LogEntry]:
        if start < self._start:
            raise ValueError(f"read at {start} below the log start offset {self._start}")
        index = start - self._start
        return self._entries[index:index + max_entries]

    def epoch_at(self, offset: int) -> int | None:
        return _epoch_at(self._entries, self._start, self._epochs, offset)

    def truncate(self, end_offset: int) -> None:
        if end_offset >= self.end_offset():
            return
        index = max(end_offset - self._start, 0)
        self._file.truncate(self._positions[index])
        self._sync()
        del self._entries[index:]
        del self._positions[index:]
        self._epochs.truncate(max(end_offset, self._start))

    def end_offset_for_epoch(self, epoch: int) -> tuple[int, int]:
        return self._epochs.end_offset_for_epoch(epoch, self.end_offset())

    def delete_before(self, offset: int) -> None:
        epoch = _epoch_before_cut(self, self._start, offset)
        if epoch is None:
            return
        index = offset - self._start
        self._file.flush()
        self._file.seek(self._positions[index] if index < len(self._positions) else 0)
        tail = self._file.read() if index < len(self._positions) else b""
        head = _record(offset, epoch, _BASE, b"")
        self._rewrite(head + tail)
        shift = len(head) - (self._positions[index] if index < len(self._positions) else 0)
        self._positions = [p + shift for p in self._positions[index:]]
        del self._entries[:index]
        self._start = offset
        self._epochs.truncate_from_start(offset, epoch)

    def truncate_fully_and_start_at(self, offset: int, epoch: int) -> None:
        self._rewrite(_record(offset, epoch, _BASE, b""))
        self._entries.clear()
        self._positions.clear()
        self._start = offset
        self._epochs.reset(offset, epoch)

    def _rewrite(self, content: bytes) -> None:
        """Replace the file's content atomically and durably, and reopen it."""
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(content)
            f.flush()
            if self._fsync:
                os.fsync(f.fileno())
        self._file.close()
        os.replace(tmp, self.path)
        if self._fsync:
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        self._file = open(self.path, "a+b")  # noqa: SIM115 - owned for the log's lifetime
