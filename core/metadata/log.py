"""The metadata log seen by the controller and the brokers.

`MetadataLog` is what the controller appends to and what every broker follows. In a cluster it
is the Raft quorum (core.raft); `LocalMetadataLog` is the single-voter case: a file of
length-prefixed, CRC-checked entries that commit as soon as they are durable.
"""

from __future__ import annotations

import asyncio
import os
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import crc32c

Listener = Callable[[int, bytes], None]
_ENTRY = struct.Struct(">iI")  # length, crc32c


class MetadataLog(Protocol):
    """Appends entries (committed in order) and tells listeners about committed entries."""

    def add_listener(self, listener: Listener) -> None: ...

    async def append(self, entries: list[bytes]) -> int:
        """Append entries; return the offset of the last once committed. Raises
        NotControllerError when this node cannot append (not the leader)."""
        ...

    def is_leader(self) -> bool: ...

    def leader_id(self) -> int: ...


class LocalMetadataLog:
    """A single-voter metadata log in one file (the `--brokers 1` and unit-test case)."""

    def __init__(self, path: Path, node_id: int) -> None:
        self._path = path
        self._node_id = node_id
        self._listeners: list[Listener] = []
        self._entries: list[bytes] = self._recover()
        self._file = open(path, "ab")  # noqa: SIM115 - held open for the log's lifetime
        self._lock = asyncio.Lock()

    def _recover(self) -> list[bytes]:
        entries: list[bytes] = []
        if not self._path.exists():
            return entries
        data = self._path.read_bytes()
        pos = 0
        while pos + _ENTRY.size <= len(data):
            size, crc = _ENTRY.unpack_from(data, pos)
            body = data[pos + _ENTRY.size:pos + _ENTRY.size + size]
            if size < 0 or len(body) < size or crc32c.crc32c(body) != crc:
                break
            entries.append(body)
            pos += _ENTRY.size + size
        if pos != len(data):  # torn tail from a crash: drop it
            with open(self._path, "r+b") as handle:
                handle.truncate(pos)
        return entries

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def replay(self) -> None:
        """Deliver every entry recovered from disk to the listeners (at startup)."""
        for offset, entry in enumerate(self._entries):
            for listener in self._listeners:
                listener(offset, entry)

    async def append(self, entries: list[bytes]) -> int:
        async with self._lock:
            chunk = b"".join(_ENTRY.pack(len(e), crc32c.crc32c(e)) + e for e in entries)
            self._file.write(chunk)
            self._file.flush()
            os.fsync(self._file.fileno())
            for entry in entries:
                self._entries.append(entry)
                offset = len(self._entries) - 1
                for listener in self._listeners:
                    listener(offset, entry)
            return len(self._entries) - 1

    def is_leader(self) -> bool:
        return True

    def leader_id(self) -> int:
        return self._node_id

    @property
    def end_offset(self) -> int:
        return len(self._entries)

    def close(self) -> None:
        self._file.close()
