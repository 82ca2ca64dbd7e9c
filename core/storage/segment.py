"""One log segment: ``<base offset>.log`` plus its offset and time indexes (Kafka's LogSegment).

The .log file is a plain concatenation of record batches. It is opened once (append + read) and
shared with every FetchSlice handed out, so a slice stays readable (and sendfile-able) even if
the segment is deleted meanwhile: the file object is only closed when the last holder drops it.
"""

from __future__ import annotations

import bisect
import os
import struct
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from crc32c import crc32c

from core.records.batch import HEADER_SIZE, LOG_OVERHEAD, MIN_BATCH_LENGTH, BatchHeader
from core.storage.offset_index import OffsetIndex
from core.storage.time_index import TimeIndex

__all__ = ["LogSegment", "segment_file_name"]

_HEADER = struct.Struct(">qiibIhiqqqhii")
_CHUNK = 1 << 20
_make_header = BatchHeader._make
INT32_MAX = 2**31 - 1
NO_ROLL_LIMIT = -(2**64)  # below any int64 timestamp


class _Scratch(threading.local):
    """A 4 KiB buffer per thread for reading batch headers on the fetch path."""

    def __init__(self) -> None:
        self.buf = bytearray(4096)


_scratch = _Scratch()


def segment_file_name(base_offset: int, suffix: str = ".log") -> str:
    """Kafka's 20-digit zero-padded file name."""
    return f"{base_offset:020d}{suffix}"


class LogSegment:
    """A .log file with its .index and .timeindex."""

    def __init__(
        self,
        directory: Path,
        base_offset: int,
        *,
        index_interval_bytes: int,
        max_index_bytes: int,
        log_suffix: str = ".log",
        segment_ms: int = 7 * 24 * 3600 * 1000,
    ) -> None:
        self.directory = directory
        self.base_offset = base_offset
        self.path = directory / segment_file_name(base_offset, log_suffix)
        self.index_interval_bytes = index_interval_bytes
        self.offset_index = OffsetIndex(
            directory / segment_file_name(base_offset, ".index"), base_offset, max_index_bytes
        )
        self.time_index = TimeIndex(
            directory / segment_file_name(base_offset, ".timeindex"), base_offset,
            max_index_bytes,
        )
        self.file = open(self.path, "a+b", buffering=0)  # noqa: SIM115 - lives with the segment
        self.fd = self.file.fileno()
        self.size = os.fstat(self.fd).st_size
        # Every byte at or above this position was written by this process after a CRC32C check
        # of its batch (Log validates every batch it appends, leader or follower); below it the
        # bytes come from disk as found. Truncation lowers it. For the fetch path's sendfile.
        self.opened_size = self.size
        self.next_offset = base_offset
        self.max_timestamp = -1
        self.offset_of_max_timestamp = -1
        self.created_ms = int(time.time() * 1000)
        self.bytes_since_index = 0
        self.flushed_size = self.size
        # What the produce fast path checks before it asks Log._needs_roll: the largest max
        # timestamp that cannot roll the segment by segment.ms (NO_ROLL_LIMIT: always ask) and
        # the largest last offset that still fits the indexes' int32 relative offsets.
        self._segment_ms = segment_ms
        self._rolling: int | None = None  # first batch's max timestamp
        self._index_full = False  # an index reached segment.index.bytes: roll
        self.roll_ts_limit = NO_ROLL_LIMIT
        self.roll_offset_limit = base_offset + INT32_MAX
        self._index_room = 0
        self._update_index_full()

    def __repr__(self) -> str:
        return f"LogSegment({self.path.name}, size={self.size}, next={self.next_offset})"

    # --- roll state ---------------------------------------------------------------------------

    @property
    def rolling_timestamp_ms(self) -> int | None:
        """The max timestamp of the first batch (segment.ms counts from it when >= 0)."""
        return self._rolling

    @rolling_timestamp_ms.setter
    def rolling_timestamp_ms(self, value: int | None) -> None:
        self._rolling = value
        self._update_roll_limit()

    @property
    def index_full(self) -> bool:
        """An index reached segment.index.bytes: the segment must roll."""
        return self._index_full

    @index_full.setter
    def index_full(self, value: bool) -> None:
        self._index_full = value
        self._update_roll_limit()

    @property
    def segment_ms(self) -> int:
        """segment.ms of the topic (kept here for roll_ts_limit)."""
        return self._segment_ms

    @segment_ms.setter
    def segment_ms(self, value: int) -> None:
        self._segment_ms = value
        self._update_roll_limit()

    def _update_roll_limit(self) -> None:
        rolling = self._rolling
        if rolling is None or rolling < 0 or self._index_full:
            self.roll_ts_limit = NO_ROLL_LIMIT  # wall clock or a full index: the Log decides
        else:
            self.roll_ts_limit = rolling + self._segment_ms

    # --- writing ------------------------------------------------------------------------------

    def append(
        self,
        buffers: Sequence[bytes | bytearray | memoryview],
        size: int,
        batches: Sequence[tuple[int, int, int]],
    ) -> None:
        """Append ``buffers`` (``size`` bytes) holding batches of (last_offset, max_ts, size)."""
        written = os.writev(self.fd, buffers) if len(buffers) > 1 else os.write(self.fd, buffers[0])
        if written != size:
            os.ftruncate(self.fd, self.size)
            raise OSError(28, f"short write to {self.path} ({written} of {size} bytes)")
        position = self.size
        for last_offset, max_ts, batch_size in batches:
            if max_ts > self.max_timestamp:
                self.max_timestamp = max_ts
                self.offset_of_max_timestamp = last_offset
            if self.rolling_timestamp_ms is None:
                self.rolling_timestamp_ms = max_ts
            if self.bytes_since_index > self.index_interval_bytes:
                self.offset_index.append(last_offset, position)
                self.time_index.maybe_append(self.max_timestamp, self.offset_of_max_timestamp)
                self.bytes_since_index = 0
                self._update_index_full()
            self.bytes_since_index += batch_size
            position += batch_size
        self.size = position
        self.next_offset = batches[-1][0] + 1

    def append_batch(self, data: bytes | bytearray | memoryview, size: int, last_offset: int,
                     max_ts: int) -> None:
        """Append one batch given as its final bytes (``size`` long) with one ``os.write``.

        The produce fast path: ``data`` already carries the assigned base offset and epoch.
        The bookkeeping is ``_account_one``'s, inlined: it runs for every produced batch.
        """
        position = self.size
        written = os.write(self.fd, data)
        if written != size:
            os.ftruncate(self.fd, position)
            raise OSError(28, f"short write to {self.path} ({written} of {size} bytes)")
        if max_ts > self.max_timestamp:
            self.max_timestamp = max_ts
            self.offset_of_max_timestamp = last_offset
        if self._rolling is None:
            self.rolling_timestamp_ms = max_ts
        if self.bytes_since_index > self.index_interval_bytes:
            # _add_index_entry, inlined
            index = self.offset_index
            index._keys.append(last_offset)
            index._values.append(position)
            timestamps = self.time_index._keys
            max_ts = self.max_timestamp
            if max_ts > (timestamps[-1] if timestamps else -1):
                timestamps.append(max_ts)
                self.time_index._values.append(self.offset_of_max_timestamp)
            self._index_room -= 1
            if self._index_room <= 0:
                self._update_index_full()
            self.bytes_since_index = size
        else:
            self.bytes_since_index += size
        self.size = position + size
        self.next_offset = last_offset + 1

    def append_one(
        self, prefix: bytes, rest: memoryview, size: int, last_offset: int, max_ts: int
    ) -> None:
        """Append one batch given as its rewritten 16-byte prefix and the rest (zero copy)."""
        position = self.size
        written = os.writev(self.fd, (prefix, rest))
        if written != size:
            os.ftruncate(self.fd, position)
            raise OSError(28, f"short write to {self.path} ({written} of {size} bytes)")
        self._account_one(position, size, last_offset, max_ts)

    def _account_one(self, position: int, size: int, last_offset: int, max_ts: int) -> None:
        """Bookkeeping for one batch written at ``position``: max timestamp, rolling
        timestamp, sparse index entries, size and next offset."""
        if max_ts > self.max_timestamp:
            self.max_timestamp = max_ts
            self.offset_of_max_timestamp = last_offset
        if self.rolling_timestamp_ms is None:
            self.rolling_timestamp_ms = max_ts
        if self.bytes_since_index > self.index_interval_bytes:
            self._add_index_entry(last_offset, position)
            self.bytes_since_index = size
        else:
            self.bytes_since_index += size
        self.size = position + size
        self.next_offset = last_offset + 1

    def _add_index_entry(self, last_offset: int, position: int) -> None:
        """Sparse index entries for a batch appended at ``position`` (Kafka's LogSegment:
        its last offset -> its position; the max timestamp so far if it grew)."""
        # Offsets, positions and timestamps only grow on the append path: no checks needed.
        index = self.offset_index
        index._keys.append(last_offset)  # the offset index: offset -> position
        index._values.append(position)
        time_index = self.time_index
        timestamps = time_index._keys  # the time index: timestamp -> offset
        max_ts = self.max_timestamp
        if max_ts > (timestamps[-1] if timestamps else -1):
            timestamps.append(max_ts)
            time_index._values.append(self.offset_of_max_timestamp)
        self._index_room -= 1
        if self._index_room <= 0:
            self._update_index_full()

    def _index_batch(self, position: int, header: BatchHeader) -> None:
        """Index bookkeeping for a batch found while scanning (recovery, rebuild)."""
        last_offset = header.base_offset + header.last_offset_delta
        if header.max_timestamp > self.max_timestamp:
            self.max_timestamp = header.max_timestamp
            self.offset_of_max_timestamp = last_offset
        if self.rolling_timestamp_ms is None:
            self.rolling_timestamp_ms = header.max_timestamp
        if self.bytes_since_index > self.index_interval_bytes:
            self.offset_index.append(last_offset, position)
            self.time_index.maybe_append(self.max_timestamp, self.offset_of_max_timestamp)
            self.bytes_since_index = 0
            self._update_index_full()
        self.bytes_since_index += header.batch_length + LOG_OVERHEAD
        self.next_offset = last_offset + 1

    def flush(self, *, fsync: bool = True) -> None:
        """Write pending index entries; fsync the log and indexes."""
        self.offset_index.flush(fsync=fsync)
        self.time_index.flush(fsync=fsync)
        if fsync and self.flushed_size != self.size:
            os.fsync(self.fd)
        self.flushed_size = self.size

    # --- reading ------------------------------------------------------------------------------

    def batches(
        self,
        start: int = 0,
        end: int | None = None,
        *,
        verify: bool = False,
        chunk: int = _CHUNK,
    ) -> Iterator[tuple[int, BatchHeader]]:
        """Yield (position, header) of batches from ``start``; stop at the first invalid one.

        With ``verify`` each batch's CRC32C is checked too (recovery). ``end`` defaults to the
        segment's size.
        """
        limit = self.size if end is None else end
        fd = self.fd
        pos = start
        buf = b""
        view = memoryview(buf)
        buf_start = pos
        unpack = _HEADER.unpack_from
        make = BatchHeader._make
        while pos < limit:
            rel = pos - buf_start
            if len(buf) - rel < HEADER_SIZE:
                buf = os.pread(fd, max(chunk, HEADER_SIZE), pos)
                view = memoryview(buf)
                buf_start, rel = pos, 0
                if len(buf) < HEADER_SIZE:
                    return
            fields = unpack(buf, rel)
            length = fields[1]
            if fields[3] != 2 or length < MIN_BATCH_LENGTH:
                return
            size = length + LOG_OVERHEAD
            if pos + size > limit:
                return
            if verify:
                if len(buf) - rel < size:
                    buf = os.pread(fd, max(chunk, size), pos)
                    view = memoryview(buf)
                    buf_start, rel = pos, 0
                    if len(buf) < size:
                        return
                if crc32c(view[rel + 21:rel + size]) != fields[4]:
                    return
            yield pos, make(fields)
            pos += size

    def _scan(self, pos: int, limit: int, offset: int) -> tuple[int, tuple[int, ...]] | None:
        """(position, header fields) of the first batch from ``pos`` (ending at or before
        ``limit``) whose last offset is >= ``offset``; None if there is none or a batch is
        invalid. Reads 4 KiB chunks into this thread's scratch buffer (no allocation)."""
        fd = self.fd
        buf = _scratch.buf
        unpack = _HEADER.unpack_from
        buf_start = pos
        have = 0
        while pos < limit:
            rel = pos - buf_start
            if have - rel < HEADER_SIZE:
                have = os.preadv(fd, (buf,), pos)
                buf_start, rel = pos, 0
                if have < HEADER_SIZE:
                    return None
            fields = unpack(buf, rel)
            size = fields[1] + LOG_OVERHEAD
            if fields[3] != 2 or size < HEADER_SIZE or pos + size > limit:
                return None
            if fields[0] + fields[6] >= offset:
                return pos, fields
            pos += size
        return None

    def translate(self, offset: int) -> tuple[int, BatchHeader] | None:
        """Position and header of the first batch whose last offset is >= ``offset``."""
        _, position = self.offset_index.lookup(offset)
        found = self._scan(position, self.size, offset)
        if found is None:
            return None
        return found[0], _make_header(found[1])

    def slice_end(
        self, start: int, max_bytes: int, end_limit: int, min_one: bool, limit_next: int
    ) -> tuple[int, int]:
        """End position of whole batches from ``start``, at most ``max_bytes`` (and before
        ``end_limit``, where the next offset is ``limit_next``); with ``min_one`` at least the
        first batch even if it is larger. Returns (end position, next offset after the slice);
        the next offset is -1 for an empty slice."""
        wanted = start + max_bytes
        if wanted >= end_limit:
            return end_limit, limit_next
        positions = self.offset_index._values
        index = bisect.bisect_right(positions, wanted) - 1
        # An index entry is a batch start at or before ``wanted``: walk headers from there.
        pos = positions[index] if index >= 0 and positions[index] > start else start
        end = pos
        next_offset = -1
        from_index = pos > start
        fd = self.fd
        buf = _scratch.buf
        unpack = _HEADER.unpack_from
        buf_start = pos
        have = 0
        while pos < end_limit:
            rel = pos - buf_start
            if have - rel < HEADER_SIZE:
                have = os.preadv(fd, (buf,), pos)
                buf_start, rel = pos, 0
                if have < HEADER_SIZE:
                    break
            fields = unpack(buf, rel)
            if from_index:
                # The batches before the index entry end right before this one's base offset.
                next_offset = fields[0]
                from_index = False
            size = fields[1] + LOG_OVERHEAD
            if fields[3] != 2 or size < HEADER_SIZE or pos + size > end_limit:
                break
            batch_end = pos + size
            if batch_end > wanted:
                if end == start and min_one:
                    return batch_end, fields[0] + fields[6] + 1
                break
            end = batch_end
            next_offset = fields[0] + fields[6] + 1
            pos = batch_end
        return end, next_offset

    def read_at(self, position: int, size: int) -> bytes:
        return os.pread(self.fd, size, position)

    # --- recovery and truncation ----------------------------------------------------------

    def reset_indexes(self) -> None:
        self.offset_index.clear()
        self.time_index.clear()
        self.max_timestamp = -1
        self.offset_of_max_timestamp = -1
        self.rolling_timestamp_ms = None
        self.bytes_since_index = 0
        self.next_offset = self.base_offset
        self._update_index_full()

    def recover(self) -> tuple[list[BatchHeader], int]:
        """Scan the whole file verifying every batch; rebuild the indexes; cut a bad tail.

        Returns the headers of the valid batches and the number of bytes truncated.
        """
        self.size = os.fstat(self.fd).st_size
        self.reset_indexes()
        headers: list[BatchHeader] = []
        valid_end = 0
        for pos, header in self.batches(0, verify=True):
            self._index_batch(pos, header)
            headers.append(header)
            valid_end = pos + header.batch_length + LOG_OVERHEAD
        truncated = self.size - valid_end
        if truncated:
            os.ftruncate(self.fd, valid_end)
            self.size = valid_end
            self.opened_size = min(self.opened_size, valid_end)
        self.flushed_size = min(self.flushed_size, self.size)
        self.offset_index.flush()
        self.time_index.flush()
        return headers, truncated

    def load_without_scan(self) -> bool:
        """Open a segment that was flushed: load indexes and the last batch's metadata.

        Returns False when the indexes look inconsistent (caller then recovers the segment).
        """
        if not self.offset_index.load(self.size):
            return False
        _, position = self.offset_index.lookup(2**62)
        last: tuple[int, BatchHeader] | None = None
        for pos, header in self.batches(position):
            last = (pos, header)
        if self.size and (last is None or last[0] + last[1].size != self.size):
            return False
        if last is not None:
            self.next_offset = last[1].next_offset
        if not self.time_index.load(self.next_offset):
            return False
        ts, offset = self.time_index.last_entry
        self.max_timestamp, self.offset_of_max_timestamp = ts, (offset if ts >= 0 else -1)
        # Batches after the last time index entry may carry a larger timestamp.
        for _pos, header in self.batches(position):
            if header.max_timestamp > self.max_timestamp:
                self.max_timestamp = header.max_timestamp
                self.offset_of_max_timestamp = header.last_offset
        first = next(self.batches(0, chunk=4096), None)
        self.rolling_timestamp_ms = first[1].max_timestamp if first else None
        self.bytes_since_index = self.size - position if len(self.offset_index) else self.size
        self._update_index_full()
        return True

    def truncate_to(self, offset: int) -> int:
        """Remove batches whose last offset is >= ``offset``; return bytes removed."""
        found = self.translate(offset)
        if found is None:
            return 0
        position, _ = found
        removed = self.size - position
        os.ftruncate(self.fd, position)
        self.size = position
        self.opened_size = min(self.opened_size, position)
        self.flushed_size = min(self.flushed_size, position)
        self.offset_index.truncate_to_position(position)
        self.time_index.truncate_to_offset(offset)
        # Recompute tail metadata from the (short) part after the last index entry.
        self.next_offset = self.base_offset
        self.max_timestamp, self.offset_of_max_timestamp = -1, -1
        ts, ts_offset = self.time_index.last_entry
        if ts >= 0:
            self.max_timestamp, self.offset_of_max_timestamp = ts, ts_offset
        _, index_pos = self.offset_index.lookup(2**62)
        self.bytes_since_index = 0
        for pos, header in self.batches(index_pos):
            self.next_offset = header.next_offset
            if header.max_timestamp > self.max_timestamp:
                self.max_timestamp = header.max_timestamp
                self.offset_of_max_timestamp = header.last_offset
            self.bytes_since_index = pos + header.size - index_pos
        if position == 0:
            self.rolling_timestamp_ms = None
        self._update_index_full()
        return removed

    # --- lifecycle ----------------------------------------------------------------------------

    def _update_index_full(self) -> None:
        offset_index, time_index = self.offset_index, self.time_index
        self.index_full = offset_index.is_full or time_index.is_full
        # Entries _add_index_entry may add (at most one per index each) before it must
        # check again whether an index is full.
        self._index_room = min(offset_index.max_entries - len(offset_index),
                               time_index.max_entries - len(time_index))

    @property
    def largest_timestamp(self) -> int:
        """For retention: the max timestamp, or the file's mtime when there is none."""
        if self.max_timestamp >= 0:
            return self.max_timestamp
        return int(os.fstat(self.fd).st_mtime * 1000)

    def close(self) -> None:
        try:
            self.flush(fsync=True)
        finally:
            self.file.close()

    def delete(self) -> None:
        """Unlink the files. The fd stays open for slices still holding the file object."""
        for path in (self.path, self.offset_index.path, self.time_index.path):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
