"""The metadata log seen by the controller and the brokers.

`MetadataLog` is what the controller appends to and what every broker follows. In a cluster it
is the Raft quorum (core.raft); `LocalMetadataLog` is the single-voter case: a file of
length-prefixed, CRC-checked entries that commit as soon as they are durable.

Committed entries reach batch listeners as one list per commit (an append, a start-up replay,
a snapshot's records), so a listener folds a whole batch into one new image
(MetadataImage.apply_batch), linear in the entries.

LocalMetadataLog snapshots (KIP-630, as the quorum does, core.raft.snapshot files): once
metadata.log.max.record.bytes.between.snapshots bytes of entries were appended since the last
snapshot, the image the listeners built (`image`) is written as metadata records into
`metadata-snapshots/<endOffset>-<epoch>.checkpoint` (epoch 0: a single voter has no
elections), and once that file is durable the log file is rewritten to start at the
snapshot's end offset (a first entry `\\x00log-start` + offset marks it). A start loads the
newest valid snapshot and replays only the entries after it. A log that starts after a
snapshot that is gone (lost or corrupt) cannot be rebuilt: the broker refuses to start
(LostLogError), it does not silently come up with an empty cluster.
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import crc32c

from core.metadata.image import MetadataImage, image_records
from core.raft.node import LostLogError
from core.raft.snapshot import FileSnapshotStore, SnapshotId

log = logging.getLogger(__name__)

Listener = Callable[[int, bytes], None]
#: committed entries as (offset, entry) pairs, in offset order, never empty
BatchListener = Callable[[Sequence[tuple[int, bytes]]], None]
_ENTRY = struct.Struct(">iI")  # length, crc32c
_START = b"\x00log-start"  # records are JSON: an entry starting with NUL is never one
_START_BODY = struct.Struct(">q")
#: Kafka's metadata.log.max.record.bytes.between.snapshots default (20 MiB)
SNAPSHOT_BYTES_DEFAULT = 20 * 1024 * 1024
SNAPSHOT_EPOCH = 0
REPLAY_BATCH = 65536  # entries per listener call at start-up (bounds the list, not the cost)


class MetadataLog(Protocol):
    """Appends entries (committed in order) and tells listeners about committed entries."""

    def add_listener(self, listener: Listener) -> None: ...

    def add_batch_listener(self, listener: BatchListener) -> None:
        """Like add_listener, one call per batch of committed entries."""
        ...

    async def append(self, entries: list[bytes]) -> int:
        """Append entries; return the offset of the last once committed. Raises
        NotControllerError when this node cannot append (not the leader)."""
        ...

    def is_leader(self) -> bool:
        """This node leads the quorum: requests for the controller are sent here."""
        ...

    def leader_ready(self) -> bool:
        """This node leads and its listeners were handed every entry committed before its
        leadership began (in Raft: its epoch-start entry is committed and delivered), so an
        image built by them holds everything earlier controllers committed. The controller
        acts only then (QuorumController.LEADER_READY_TIMEOUT_S)."""
        ...

    def leader_id(self) -> int: ...


class Listeners:
    """Per-entry and batch listeners of a metadata log, called in registration order."""

    def __init__(self) -> None:
        self._batch: list[BatchListener] = []

    def add(self, listener: Listener) -> None:
        def each(entries: Sequence[tuple[int, bytes]]) -> None:
            for offset, entry in entries:
                listener(offset, entry)
        self._batch.append(each)

    def add_batch(self, listener: BatchListener) -> None:
        self._batch.append(listener)

    def deliver(self, entries: Sequence[tuple[int, bytes]]) -> None:
        """Hand committed entries to every listener (nothing when there are none)."""
        if entries:
            for listener in self._batch:
                listener(entries)


def _frame(entry: bytes) -> bytes:
    return _ENTRY.pack(len(entry), crc32c.crc32c(entry)) + entry



def write_image_snapshot(image: MetadataImage, end: int, epoch: int,
                         write: Callable[[list[bytes]], SnapshotId],
                         log_start: Callable[[], int]) -> SnapshotId | None:
    """Encode `image` as the records of a snapshot ending at `end` (KIP-630) and hand them to
    `write`, which stores them and cuts the log. None when the disk refuses (e.g. full): the
    log is kept and a later snapshot tries again. Used by the local and the Raft metadata
    logs, which differ only in where the snapshot goes."""
    records = [r.encode() for r in image_records(image, end, epoch)]
    try:
        snapshot_id = write(records)
    except OSError as exc:
        log.error("cannot write a metadata snapshot at %d: %r", end, exc)
        return None
    log.info("metadata snapshot %s written (%d records); log start offset now %d",
             snapshot_id, len(records), log_start())
    return snapshot_id

class LocalMetadataLog:
    """A single-voter metadata log in one file (the `--brokers 1` and unit-test case)."""

    def __init__(self, path: Path, node_id: int, *,
                 snapshot_max_bytes: int = SNAPSHOT_BYTES_DEFAULT,
                 image: Callable[[], MetadataImage] | None = None,
                 snapshot_dir: Path | None = None, fsync: bool = True) -> None:
        self._path = path
        self._node_id = node_id
        self._fsync = fsync
        self._listeners = Listeners()
        self.snapshot_max_bytes = snapshot_max_bytes
        #: the image the listeners built from every delivered entry (what a snapshot holds);
        #: None: no snapshots
        self._image = image
        self.snapshots = FileSnapshotStore(snapshot_dir or path.parent / "metadata-snapshots",
                                           fsync=fsync)
        self._start = 0
        self._entries: list[bytes] = self._recover()
        self._snapshot_to_load = self._check_start()
        self._bytes_since_snapshot = sum(map(len, self._entries))
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
            if pos == 0 and body.startswith(_START):
                (self._start,) = _START_BODY.unpack_from(body, len(_START))
            else:
                entries.append(body)
            pos += _ENTRY.size + size
        if pos != len(data):  # torn tail from a crash: drop it
            with open(self._path, "r+b") as handle:
                handle.truncate(pos)
        return entries

    def _check_start(self) -> SnapshotId | None:
        """The snapshot to start from: the newest valid one; the log must continue it."""
        latest = self.snapshots.latest()
        where = self.snapshots.directory
        if latest is None and self._start == 0:
            return None
        if latest is None or latest.end_offset < self._start:
            have = "no snapshot" if latest is None else \
                f"the newest valid snapshot ends at {latest.end_offset}"
            raise LostLogError(
                f"metadata log {self._path} starts at offset {self._start} but there is "
                f"{have} in {where}: the metadata below it is lost. Restore the .checkpoint "
                "file (a damaged one was renamed .corrupt), or start from an empty data "
                "directory")
        if latest.end_offset > self.end_offset:
            raise LostLogError(
                f"metadata snapshot {latest} in {where} is past the end of the metadata log "
                f"{self._path} ({self.end_offset}): the log lost entries it had")
        return latest

    # MetadataLog ---------------------------------------------------------------------------
    def add_listener(self, listener: Listener) -> None:
        self._listeners.add(listener)

    def add_batch_listener(self, listener: BatchListener) -> None:
        self._listeners.add_batch(listener)

    def replay(self) -> None:
        """Deliver what is on disk to the listeners (at startup): the newest snapshot's
        records (a SnapshotHeader first, all at offset end - 1), then the entries after it."""
        snapshot = self._snapshot_to_load
        self._snapshot_to_load = None
        skip = 0
        if snapshot is not None:
            records = self.snapshots.read_records(snapshot)
            at = snapshot.end_offset - 1
            self._listeners.deliver([(at, r) for r in records])
            skip = snapshot.end_offset - self._start
            log.info("metadata loaded from local snapshot %s (%d records), then %d entries",
                     snapshot, len(records), len(self._entries) - skip)
        for first in range(skip, len(self._entries), REPLAY_BATCH):
            chunk = self._entries[first:first + REPLAY_BATCH]
            base = self._start + first
            self._listeners.deliver([(base + i, e) for i, e in enumerate(chunk)])

    async def append(self, entries: list[bytes]) -> int:
        async with self._lock:
            self._file.write(b"".join(map(_frame, entries)))
            self._file.flush()
            if self._fsync:
                os.fsync(self._file.fileno())
            base = self.end_offset
            self._entries.extend(entries)
            self._listeners.deliver([(base + i, e) for i, e in enumerate(entries)])
            self._bytes_since_snapshot += sum(map(len, entries))
            if self._image is not None and self._bytes_since_snapshot >= self.snapshot_max_bytes:
                self.snapshot_now()
            return self.end_offset - 1

    def is_leader(self) -> bool:
        return True

    def leader_ready(self) -> bool:
        """Always: a single voter commits only what it appends and replays its whole log
        (replay()) before the broker serves."""
        return True

    def leader_id(self) -> int:
        return self._node_id

    @property
    def start_offset(self) -> int:
        """The first offset the log file still holds (the end of the snapshot before it)."""
        return self._start

    @property
    def end_offset(self) -> int:
        return self._start + len(self._entries)

    # snapshots -----------------------------------------------------------------------------
    def snapshot_now(self) -> SnapshotId | None:
        """Write the listeners' image as a snapshot at the log end, then cut the log before
        it. None when there is nothing new, no image, or the image is not at the log end."""
        end = self.end_offset
        latest = self.snapshots.latest()
        if self._image is None or end <= self._start or (
                latest is not None and end <= latest.end_offset):
            return None
        image = self._image()
        if image.offset != end - 1:
            log.error("metadata image at %d, not at the log end %d: no snapshot",
                      image.offset, end - 1)
            return None
        snapshot_id = SnapshotId(end, SNAPSHOT_EPOCH)

        def write(records: list[bytes]) -> SnapshotId:
            self.snapshots.write(snapshot_id, records)
            self._cut_before(end)
            return snapshot_id
        self._bytes_since_snapshot = 0
        return write_image_snapshot(image, end, SNAPSHOT_EPOCH, write, lambda: self._start)

    def _cut_before(self, offset: int) -> None:
        """Rewrite the log file to hold the entries from `offset` on (atomically: a .part
        file, fsync, rename, fsync of the directory). Called once the snapshot at `offset`
        is durable, so a crash at any point leaves a log its newest snapshot reaches."""
        keep = self._entries[offset - self._start:]
        part = self._path.with_name(self._path.name + ".part")
        with open(part, "wb") as f:
            f.write(_frame(_START + _START_BODY.pack(offset)))
            f.write(b"".join(map(_frame, keep)))
            f.flush()
            if self._fsync:
                os.fsync(f.fileno())
        self._file.close()
        os.replace(part, self._path)
        if self._fsync:
            fd = os.open(self._path.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        self._file = open(self._path, "ab")  # noqa: SIM115 - held open for the log's lifetime
        self._entries = keep
        self._start = offset

    def close(self) -> None:
        self._file.close()
