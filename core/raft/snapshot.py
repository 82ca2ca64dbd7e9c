"""Raft snapshots (KIP-630): the state machine's state at a committed offset, and their storage.

A snapshot is identified, as in Kafka, by `SnapshotId(end_offset, epoch)`: it replaces every
log entry below end_offset, and epoch is the epoch of entry end_offset - 1. Its content is the
state machine's records in Kafka's record format: RecordBatch v2 batches (each CRC32C-checked),
a control batch with a SnapshotHeader first and a control batch with a SnapshotFooter last, so
that a truncated or damaged snapshot never passes for a whole one. Files are named as Kafka
names them, `<endOffset:020d>-<epoch:010d>.checkpoint`, written atomically (a `.part` file,
fsync, rename, fsync of the directory); only the newest `retain` snapshots are kept.

`SnapshotStore` is what the sans-IO RaftNode needs; `MemorySnapshotStore` serves the
simulation, `FileSnapshotStore` the broker.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import NamedTuple, Protocol

from core.common.errors import CorruptRecordError, InvalidRecordError
from core.raft.log import LogEntry
from core.raft.wire import decode_entries, encode_entries
from core.records.batch import validate_batches

log = logging.getLogger(__name__)

SUFFIX = ".checkpoint"
PART_SUFFIX = ".checkpoint.part"
RECORDS_PER_BATCH = 1000
_NAME = re.compile(r"^(\d{20})-(\d{10})\.checkpoint$")
_HEADER = json.dumps({"type": "snapshot_header", "version": 0}).encode()


class SnapshotId(NamedTuple):
    """Kafka's OffsetAndEpoch for a snapshot: it covers the log below end_offset."""

    end_offset: int
    epoch: int


class SnapshotCorruptError(ValueError):
    """A snapshot's bytes are not a whole, CRC-valid snapshot."""


def file_name(snapshot_id: SnapshotId) -> str:
    """Kafka's file name for a snapshot: `<endOffset>-<epoch>.checkpoint`, zero-padded."""
    return f"{snapshot_id.end_offset:020d}-{snapshot_id.epoch:010d}{SUFFIX}"


def encode_snapshot(snapshot_id: SnapshotId, records: Sequence[bytes]) -> bytes:
    """The snapshot's bytes: header, the records in batches of RECORDS_PER_BATCH, footer."""
    epoch = snapshot_id.epoch
    footer = json.dumps({"type": "snapshot_footer", "records": len(records),
                         "end_offset": snapshot_id.end_offset, "epoch": epoch}).encode()
    out = [encode_entries((LogEntry(epoch, _HEADER, control=True),), 0)]
    position = 1
    for start in range(0, len(records), RECORDS_PER_BATCH):
        chunk = tuple(LogEntry(epoch, bytes(r)) for r in records[start:start + RECORDS_PER_BATCH])
        out.append(encode_entries(chunk, position))
        position += len(chunk)
    out.append(encode_entries((LogEntry(epoch, footer, control=True),), position))
    return b"".join(out)


def decode_snapshot(data: bytes, snapshot_id: SnapshotId | None = None) -> list[bytes]:
    """The records of a snapshot; SnapshotCorruptError unless it is whole and CRC-valid (and,
    if snapshot_id is given, the footer names that snapshot)."""
    try:
        validate_batches(data)
    except (CorruptRecordError, InvalidRecordError) as exc:
        raise SnapshotCorruptError(str(exc)) from None
    entries = decode_entries(data)
    if len(entries) < 2 or not entries[0].control or not entries[-1].control:
        raise SnapshotCorruptError("snapshot lacks its header or footer")
    try:
        header = json.loads(entries[0].data)
        footer = json.loads(entries[-1].data)
    except ValueError:
        raise SnapshotCorruptError("undecodable snapshot header or footer") from None
    records = [e.data for e in entries[1:-1]]
    if header.get("type") != "snapshot_header" or footer.get("type") != "snapshot_footer" \
            or footer.get("records") != len(records) or any(e.control for e in entries[1:-1]):
        raise SnapshotCorruptError("snapshot header/footer do not match its records")
    if snapshot_id is not None and (footer.get("end_offset"), footer.get("epoch")) != (
            snapshot_id.end_offset, snapshot_id.epoch):
        raise SnapshotCorruptError(f"snapshot footer names another snapshot than {snapshot_id}")
    return records


class SnapshotDownload(Protocol):
    """A snapshot being fetched from the leader, chunk by chunk (FetchSnapshot)."""

    snapshot_id: SnapshotId

    @property
    def size(self) -> int:
        """Bytes received so far (the position of the next chunk)."""
        ...

    def append(self, chunk: bytes) -> None: ...

    def complete(self) -> bool:
        """Validate and make the snapshot durable and visible; False (and discarded) if the
        bytes are not a valid snapshot."""
        ...

    def abort(self) -> None: ...


class SnapshotStore(Protocol):
    """Durable snapshots of one Raft log."""

    def latest(self) -> SnapshotId | None:
        """The newest valid snapshot, None when there is none."""
        ...

    def size(self, snapshot_id: SnapshotId) -> int | None:
        """The snapshot's size in bytes, None when it does not exist (any more)."""
        ...

    def read_chunk(self, snapshot_id: SnapshotId, position: int, max_bytes: int) -> bytes:
        """Up to max_bytes from position (KeyError if the snapshot does not exist)."""
        ...

    def read_records(self, snapshot_id: SnapshotId) -> list[bytes]:
        """The snapshot's records (KeyError if missing, SnapshotCorruptError if damaged)."""
        ...

    def write(self, snapshot_id: SnapshotId, records: Sequence[bytes],
              keep: Collection[SnapshotId] = ()) -> None:
        """Write a snapshot atomically and durably, then drop snapshots beyond retention
        (except those in `keep`: snapshots followers are downloading)."""
        ...

    def begin_download(self, snapshot_id: SnapshotId) -> SnapshotDownload: ...


class MemorySnapshotStore:
    """Snapshots in memory (simulation, unit tests); the newest `retain` are kept."""

    def __init__(self, retain: int = 2) -> None:
        self.retain = retain
        self.snapshots: dict[SnapshotId, bytes] = {}

    def latest(self) -> SnapshotId | None:
        return max(self.snapshots, default=None)

    def size(self, snapshot_id: SnapshotId) -> int | None:
        data = self.snapshots.get(snapshot_id)
        return None if data is None else len(data)

    def read_chunk(self, snapshot_id: SnapshotId, position: int, max_bytes: int) -> bytes:
        return self.snapshots[snapshot_id][position:position + max_bytes]

    def read_records(self, snapshot_id: SnapshotId) -> list[bytes]:
        return decode_snapshot(self.snapshots[snapshot_id], snapshot_id)

    def write(self, snapshot_id: SnapshotId, records: Sequence[bytes],
              keep: Collection[SnapshotId] = ()) -> None:
        self._add(snapshot_id, encode_snapshot(snapshot_id, records), keep)

    def _add(self, snapshot_id: SnapshotId, data: bytes,
             keep: Collection[SnapshotId] = ()) -> None:
        self.snapshots[snapshot_id] = data
        for old in sorted(self.snapshots)[:-self.retain]:
            if old not in keep:
                del self.snapshots[old]

    def begin_download(self, snapshot_id: SnapshotId) -> _Download:
        return _Download(snapshot_id, self._add)


class _Download:
    """Chunks of a snapshot being fetched, held in memory (metadata snapshots are small);
    complete() validates them and hands the bytes to the store's ``install``."""

    def __init__(self, snapshot_id: SnapshotId,
                 install: Callable[[SnapshotId, bytes], None]) -> None:
        self.snapshot_id = snapshot_id
        self._install = install
        self._chunks = bytearray()

    @property
    def size(self) -> int:
        return len(self._chunks)

    def append(self, chunk: bytes) -> None:
        self._chunks += chunk

    def complete(self) -> bool:
        data = bytes(self._chunks)
        try:
            decode_snapshot(data, self.snapshot_id)
        except SnapshotCorruptError as exc:
            log.error("fetched snapshot %s is not valid: %s", self.snapshot_id, exc)
            return False
        self._install(self.snapshot_id, data)
        return True

    def abort(self) -> None:
        self._chunks.clear()


class FileSnapshotStore:
    """`<endOffset>-<epoch>.checkpoint` files in `directory`.

    On open every snapshot is validated, newest first; a damaged one is logged and renamed to
    `.corrupt` (kept for inspection, never loaded), leftover `.part` files are removed.
    """

    def __init__(self, directory: str | os.PathLike[str], *, retain: int = 3,
                 fsync: bool = True) -> None:
        self.directory = Path(directory)
        self.retain = retain
        self._fsync = fsync
        self.directory.mkdir(parents=True, exist_ok=True)
        self._ids: list[SnapshotId] = []
        self.corrupt: list[Path] = []
        self._open()

    def _open(self) -> None:
        for path in self.directory.iterdir():
            if path.name.endswith(PART_SUFFIX):
                path.unlink(missing_ok=True)
                continue
            match = _NAME.match(path.name)
            if match is None:
                continue
            snapshot_id = SnapshotId(int(match.group(1)), int(match.group(2)))
            try:
                decode_snapshot(path.read_bytes(), snapshot_id)
            except (SnapshotCorruptError, OSError) as exc:
                log.error("skipping corrupt metadata snapshot %s: %s", path, exc)
                self.corrupt.append(path)
                os.replace(path, path.with_name(path.name + ".corrupt"))
                continue
            self._ids.append(snapshot_id)
        self._ids.sort()

    def path(self, snapshot_id: SnapshotId) -> Path:
        return self.directory / file_name(snapshot_id)

    def ids(self) -> list[SnapshotId]:
        """Every valid snapshot, oldest first."""
        return list(self._ids)

    def latest(self) -> SnapshotId | None:
        return self._ids[-1] if self._ids else None

    def size(self, snapshot_id: SnapshotId) -> int | None:
        if snapshot_id not in self._ids:
            return None
        try:
            return self.path(snapshot_id).stat().st_size
        except FileNotFoundError:
            return None

    def read_chunk(self, snapshot_id: SnapshotId, position: int, max_bytes: int) -> bytes:
        if snapshot_id not in self._ids:
            raise KeyError(snapshot_id)
        with open(self.path(snapshot_id), "rb") as f:
            f.seek(position)
            return f.read(max_bytes)

    def read_records(self, snapshot_id: SnapshotId) -> list[bytes]:
        if snapshot_id not in self._ids:
            raise KeyError(snapshot_id)
        return decode_snapshot(self.path(snapshot_id).read_bytes(), snapshot_id)

    def write(self, snapshot_id: SnapshotId, records: Sequence[bytes],
              keep: Collection[SnapshotId] = ()) -> None:
        self._freeze(snapshot_id, encode_snapshot(snapshot_id, records), keep)

    def _freeze(self, snapshot_id: SnapshotId, data: bytes,
                keep: Collection[SnapshotId] = ()) -> None:
        final = self.path(snapshot_id)
        part = final.with_name(final.name.removesuffix(SUFFIX) + PART_SUFFIX)
        with open(part, "wb") as f:
            f.write(data)
            f.flush()
            if self._fsync:
                os.fsync(f.fileno())
        os.replace(part, final)
        self._sync_dir()
        if snapshot_id not in self._ids:
            self._ids.append(snapshot_id)
            self._ids.sort()
        for old in self._ids[:-self.retain]:
            if old not in keep:
                self.path(old).unlink(missing_ok=True)
                self._ids.remove(old)

    def _sync_dir(self) -> None:
        if not self._fsync:
            return
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def begin_download(self, snapshot_id: SnapshotId) -> _Download:
        """Collect a fetched snapshot; once complete and valid it is written as
        `<name>.checkpoint.part`, fsynced and renamed."""
        return _Download(snapshot_id, self._freeze)
