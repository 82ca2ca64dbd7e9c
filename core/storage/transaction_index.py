"""The aborted-transaction index of a log (Kafka's TransactionIndex, ``.txnindex`` files).

Every ABORT marker appended to a partition adds one entry to the index file of the segment the
marker lands in: the producer id, the first offset of its aborted transaction, the offset of the
marker (last offset) and the last stable offset once that transaction was over. A
read_committed fetch from offset F up to U asks for the entries with last_offset >= F and
first_offset < U; the client drops those producers' records from first_offset until their
abort marker.

File format, as Kafka's (34 bytes per entry, big endian)::

    version int16 (0) | producerId int64 | firstOffset int64 | lastOffset int64 |
    lastStableOffset int64

Entries are also kept in memory, ordered by last offset (markers are appended in offset order),
so lookups never touch the disk. Bytes and offsets only: no network, no records beyond the
control record key (``control_type``).
"""

from __future__ import annotations

import bisect
import logging
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path

from core.records.batch import HEADER_SIZE, iter_records
from core.storage.segment import segment_file_name

__all__ = ["ABORT", "COMMIT", "AbortedTxn", "TransactionIndex", "control_type"]

log = logging.getLogger(__name__)

ABORT, COMMIT = 0, 1
SUFFIX = ".txnindex"
_ENTRY = struct.Struct(">hqqqq")
_FILE_RE = re.compile(r"^(\d{20})\.txnindex$")
_CONTROL_KEY = struct.Struct(">hh")


@dataclass(frozen=True, slots=True)
class AbortedTxn:
    """One aborted transaction: its producer, first offset and marker (last) offset."""

    producer_id: int
    first_offset: int
    last_offset: int
    last_stable_offset: int

    def encode(self) -> bytes:
        return _ENTRY.pack(0, self.producer_id, self.first_offset, self.last_offset,
                           self.last_stable_offset)


def control_type(batch: bytes | bytearray | memoryview) -> int | None:
    """The control record type of a control batch: ABORT (0), COMMIT (1), other, or None."""
    if len(batch) < HEADER_SIZE:
        return None
    try:
        for record in iter_records(batch):
            if record.key is None or len(record.key) < 4:
                return None
            return _CONTROL_KEY.unpack_from(record.key, 0)[1]
    except Exception:  # a corrupt control batch is not a marker we can index
        return None
    return None


class TransactionIndex:
    """The aborted transactions of one partition directory, per segment file."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._entries: list[tuple[int, AbortedTxn]] = []  # (segment base, entry), by last offset
        self._lasts: list[int] = []

    # --- loading ------------------------------------------------------------------------------

    def load(self, segment_bases: list[int]) -> None:
        """Read every ``.txnindex`` file; files of segments that no longer exist are removed."""
        wanted = set(segment_bases)
        entries: list[tuple[int, AbortedTxn]] = []
        for name in os.listdir(self.directory):
            match = _FILE_RE.match(name)
            if not match:
                continue
            base = int(match.group(1))
            path = self.directory / name
            if base not in wanted:
                path.unlink(missing_ok=True)
                continue
            raw = path.read_bytes()
            usable = len(raw) - len(raw) % _ENTRY.size
            if usable != len(raw):
                log.warning("%s: dropping a torn entry at the end", path)
                with open(path, "r+b") as handle:
                    handle.truncate(usable)
            for pos in range(0, usable, _ENTRY.size):
                version, pid, first, last, lso = _ENTRY.unpack_from(raw, pos)
                if version == 0:
                    entries.append((base, AbortedTxn(pid, first, last, lso)))
        entries.sort(key=lambda e: e[1].last_offset)
        self._entries = entries
        self._lasts = [e.last_offset for _, e in entries]

    # --- updates ------------------------------------------------------------------------------

    def contains_marker(self, last_offset: int) -> bool:
        i = bisect.bisect_left(self._lasts, last_offset)
        return i < len(self._lasts) and self._lasts[i] == last_offset

    def append(self, segment_base: int, entry: AbortedTxn) -> None:
        """Record an aborted transaction whose marker is in segment ``segment_base``."""
        if self.contains_marker(entry.last_offset):
            return
        with open(self._path(segment_base), "ab") as handle:
            handle.write(entry.encode())
        i = bisect.bisect_right(self._lasts, entry.last_offset)
        self._entries.insert(i, (segment_base, entry))
        self._lasts.insert(i, entry.last_offset)

    def truncate_to(self, offset: int) -> None:
        """Forget the entries whose marker is at or after ``offset`` (log truncation)."""
        i = bisect.bisect_left(self._lasts, offset)
        if i == len(self._entries):
            return
        touched = {base for base, _ in self._entries[i:]}
        del self._entries[i:]
        del self._lasts[i:]
        for base in touched:
            self._rewrite(base)

    def delete_segment(self, segment_base: int) -> None:
        """The segment was deleted (retention, DeleteRecords): drop its entries and file."""
        if any(base == segment_base for base, _ in self._entries):
            kept = [(b, e) for b, e in self._entries if b != segment_base]
            self._entries = kept
            self._lasts = [e.last_offset for _, e in kept]
        self._path(segment_base).unlink(missing_ok=True)

    def clear(self) -> None:
        """Remove every entry and file."""
        for base in {b for b, _ in self._entries}:
            self._path(base).unlink(missing_ok=True)
        for name in os.listdir(self.directory):
            if _FILE_RE.match(name):
                (self.directory / name).unlink(missing_ok=True)
        self._entries = []
        self._lasts = []

    # --- reads --------------------------------------------------------------------------------

    def collect(self, start_offset: int, end_offset: int) -> list[AbortedTxn]:
        """Aborted transactions overlapping [start_offset, end_offset): marker at or after the
        start and first offset before the end."""
        i = bisect.bisect_left(self._lasts, start_offset)
        return [e for _, e in self._entries[i:] if e.first_offset < end_offset]

    @property
    def entries(self) -> list[AbortedTxn]:
        return [e for _, e in self._entries]

    # --- files --------------------------------------------------------------------------------

    def _path(self, segment_base: int) -> Path:
        return self.directory / segment_file_name(segment_base, SUFFIX)

    def _rewrite(self, segment_base: int) -> None:
        data = b"".join(e.encode() for b, e in self._entries if b == segment_base)
        path = self._path(segment_base)
        if not data:
            path.unlink(missing_ok=True)
            return
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
