"""The commit log of one partition (Kafka's UnifiedLog + LocalLog).

A partition is a directory ``<topic>-<partition>`` of segments. ``Log`` appends validated batches
(leader: assigns offsets; follower: keeps them), serves reads as file slices, answers offset by
timestamp and OffsetForLeaderEpoch, truncates, applies retention, DeleteRecords and compaction,
and recovers on open. All work on the produce and fetch paths is per batch, on headers only.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import logging
import os
import re
import shutil
import struct
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from crc32c import crc32c as _crc32c

from core.common.config import TOPIC_CONFIGS
from core.common.errors import (
    InvalidRecordError,
    KafkaError,
    KafkaStorageError,
    OffsetOutOfRangeError,
    RecordBatchTooLargeError,
    RecordValidationError,
)
from core.common.types import EARLIEST_TIMESTAMP, LATEST_TIMESTAMP, MAX_TIMESTAMP, TopicPartition
from core.records.batch import (
    ATTR_LOG_APPEND_TIME,
    assign_offsets,
    iter_records,
    keyless_records,
    validate_batches,
)
from core.storage.leader_epoch_cache import LeaderEpochCache
from core.storage.producer_state import ProducerStateManager
from core.storage.segment import LogSegment, segment_file_name
from core.storage.staging import STAGING_BYTES, staging
from core.storage.transaction_index import ABORT, AbortedTxn, TransactionIndex, control_type

__all__ = [
    "AppendResult",
    "FetchSlice",
    "Log",
    "UnexpectedAppendOffsetError",
    "default_topic_config",
    "parse_topic_partition",
]

log = logging.getLogger(__name__)

INT32_MAX = 2**31 - 1
CLEAN_SHUTDOWN_FILE = ".clean-shutdown"
_PREFIX = struct.Struct(">qii")  # baseOffset, batchLength, partitionLeaderEpoch
# The header fields the fast path needs (base offset, leader epoch, first timestamp skipped):
# batchLength, magic, crc, attributes, lastOffsetDelta, maxTimestamp, producerId,
# producerEpoch, baseSequence, recordsCount.
_HEADER_UNPACK = struct.Struct(">8xi4xbIhi8xqqhii").unpack_from
_DIR_RE = re.compile(r"^(.+)-(\d+)$")
_LOG_RE = re.compile(r"^(\d{20})\.log$")

_flusher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="log-flusher")

T = TypeVar("T")


def default_topic_config() -> dict[str, Any]:
    """Every topic config at Kafka's default value."""
    return {name: d.parse(d.default) for name, d in TOPIC_CONFIGS.items() if d.default is not None}


_DEFAULTS = default_topic_config()


def parse_topic_partition(name: str) -> TopicPartition | None:
    """``my-topic-3`` -> TopicPartition("my-topic", 3); None if the name is not a partition."""
    match = _DIR_RE.match(name)
    if not match or name.startswith("."):
        return None
    return TopicPartition(match.group(1), int(match.group(2)))


class UnexpectedAppendOffsetError(KafkaError):
    """A follower append whose first offset is below the log end offset."""


class AppendResult(NamedTuple):
    """What an append did (offsets of the batches written, or of the original on duplicate)."""

    first_offset: int
    last_offset: int
    log_append_time_ms: int
    log_start_offset: int
    max_timestamp: int
    duplicate: bool = False


class FetchSlice:
    """A byte range of a segment file holding whole batches: read it or sendfile it.

    ``first_offset`` is the base offset of its first batch and ``next_offset`` the offset to
    fetch next (after its last batch); both -1 for an empty slice.
    """

    __slots__ = ("file", "first_offset", "next_offset", "position", "size")

    def __init__(self, file: Any, position: int, size: int, first_offset: int = -1,
                 next_offset: int = -1) -> None:
        self.file = file
        self.position = position
        self.size = size
        self.first_offset = first_offset
        self.next_offset = next_offset

    def read_bytes(self) -> bytes:
        """The bytes of the slice (os.pread)."""
        if self.size <= 0 or self.file is None:
            return b""
        return os.pread(self.file.fileno(), self.size, self.position)

    def fileno(self) -> int:
        return self.file.fileno()

    def __repr__(self) -> str:
        return f"FetchSlice(position={self.position}, size={self.size})"


_EMPTY = FetchSlice(None, 0, 0)
_tuple_new = tuple.__new__


def _io_guard(method: Callable[..., T]) -> Callable[..., T]:
    """Turn OSError into KafkaStorageError and take the partition offline."""

    @functools.wraps(method)
    def wrapper(self: Log, *args: Any, **kwargs: Any) -> T:
        if self.offline_reason is not None or self._closed:
            raise KafkaStorageError(
                f"partition {self.tp} is {'offline' if self.offline_reason else 'closed'}: "
                f"{self.offline_reason or 'log closed'}"
            )
        try:
            return method(self, *args, **kwargs)
        except OSError as exc:
            self._go_offline(exc)
            raise KafkaStorageError(f"partition {self.tp} is offline: {exc}") from exc

    return wrapper


class Log:
    """The log of one partition: segments, indexes, epoch cache, producer state."""

    def __init__(
        self,
        directory: Path,
        config: dict[str, Any],
        *,
        recovery_point: int | None = None,
        log_start_offset: int | None = None,
        high_watermark: int | None = None,
        clean_shutdown: bool | None = None,
    ) -> None:
        self.dir = Path(directory)
        tp = parse_topic_partition(self.dir.name)
        if tp is None:
            raise ValueError(f"not a partition directory name: {self.dir.name}")
        self.tp = tp
        self.offline_reason: str | None = None
        self._closed = False
        self._fast_max = -1
        self._lock = threading.RLock()
        self._segments: list[LogSegment] = []
        self._bases: list[int] = []
        self._leo = 0
        self.log_start_offset = 0
        self._hw = 0
        self.recovery_point = 0
        self._unflushed_messages = 0
        self._last_flush_ms = int(time.time() * 1000)
        self._pending_flushes: list[Future[None]] = []
        self.cleaner_checkpoint = 0  # first offset not yet compacted
        self.config: dict[str, Any] = {}
        self._apply_config(config)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.epoch_cache = LeaderEpochCache(self.dir)
        self.producer_state = ProducerStateManager(self.dir)
        self.txn_index = TransactionIndex(self.dir)
        try:
            self._load(recovery_point, log_start_offset, high_watermark, clean_shutdown)
        except OSError as exc:
            self._go_offline(exc)

    # --- configuration ----------------------------------------------------------------------

    def _apply_config(self, config: dict[str, Any]) -> None:
        merged = dict(_DEFAULTS)
        merged.update(config)
        self.config = merged
        self._segment_bytes = int(merged["segment.bytes"])
        self._segment_ms = int(merged["segment.ms"])
        self._index_interval = int(merged["index.interval.bytes"])
        self._index_bytes = int(merged["segment.index.bytes"])
        self._max_message_bytes = int(merged["max.message.bytes"])
        self._log_append_time = merged["message.timestamp.type"] == "LogAppendTime"
        self._flush_messages = int(merged["flush.messages"])
        self._flush_ms = int(merged["flush.ms"])
        policy = merged["cleanup.policy"]
        policies = [policy] if isinstance(policy, str) else list(policy)
        self._delete_policy = "delete" in policies
        self._compact_policy = "compact" in policies
        self._update_fast_path()

    def _update_fast_path(self) -> None:
        """Largest payload the append fast path takes (-1: fast path off). Compacted topics
        take the general path, which checks every record has a key."""
        usable = (not self._log_append_time and not self._compact_policy
                  and self.offline_reason is None and not self._closed)
        self._fast_max = min(self._max_message_bytes, self._segment_bytes) if usable else -1

    def update_config(self, config: dict[str, Any]) -> None:
        """Apply a new topic configuration (takes effect for the next appends and maintenance)."""
        with self._lock:
            self._apply_config(config)
            for segment in self._segments:
                segment.index_interval_bytes = self._index_interval
                segment.segment_ms = self._segment_ms

    # --- loading and recovery ---------------------------------------------------------------

    def _new_segment(self, base_offset: int) -> LogSegment:
        return LogSegment(self.dir, base_offset, index_interval_bytes=self._index_interval,
                          max_index_bytes=self._index_bytes, segment_ms=self._segment_ms)

    def _load(
        self,
        recovery_point: int | None,
        log_start_offset: int | None,
        high_watermark: int | None,
        clean_shutdown: bool | None,
    ) -> None:
        marker = self.dir / CLEAN_SHUTDOWN_FILE
        if clean_shutdown is None:
            clean_shutdown = marker.exists()
        marker.unlink(missing_ok=True)
        self._cleanup_files()
        bases = sorted(
            int(m.group(1)) for m in map(_LOG_RE.match, os.listdir(self.dir)) if m
        )
        if not bases:
            bases = [max(log_start_offset or 0, 0)]
        segments = [self._new_segment(base) for base in bases]
        if clean_shutdown:
            recover_from = len(segments)
        elif recovery_point is None:
            recover_from = len(segments) - 1
        else:
            recover_from = max(0, bisect.bisect_right(bases, recovery_point) - 1)
        recovered = []
        index = 0
        while index < len(segments):
            segment = segments[index]
            if index < recover_from and segment.load_without_scan():
                index += 1
                continue
            headers, truncated = segment.recover()
            recovered.extend(headers)
            if truncated:
                log.warning("%s: truncated %d invalid bytes at the end of %s", self.tp,
                            truncated, segment.path.name)
            if truncated and index < len(segments) - 1:
                for later in segments[index + 1:]:
                    log.warning("%s: deleting %s after a corrupt segment", self.tp,
                                later.path.name)
                    later.delete()
                    later.file.close()
                del segments[index + 1:]
            index += 1
        self._segments = segments
        self._bases = [s.base_offset for s in segments]
        last = segments[-1]
        self._leo = last.next_offset if last.size else last.base_offset
        start = max(log_start_offset or 0, segments[0].base_offset)
        self.log_start_offset = min(start, self._leo)
        self._hw = min(max(high_watermark if high_watermark is not None else 0,
                           self.log_start_offset), self._leo)
        self.recovery_point = self._leo
        self.cleaner_checkpoint = self.log_start_offset
        # Leader epochs: the checkpoint, corrected by what the recovered batches say.
        self.epoch_cache.truncate_from_end(self._leo)
        for header in recovered:
            epoch = header.partition_leader_epoch
            if epoch >= 0 and epoch != self.epoch_cache.latest_epoch:
                self.epoch_cache.assign(epoch, header.base_offset)
        self.epoch_cache.truncate_from_start(self.log_start_offset)
        self.txn_index.load(self._bases)
        self.txn_index.truncate_to(self._leo)
        self._rebuild_producer_state()

    def _cleanup_files(self) -> None:
        """Finish or undo interrupted compaction swaps and drop temporary files."""
        for name in os.listdir(self.dir):
            path = self.dir / name
            if name.endswith((".cleaned", ".deleted", ".tmp")):
                path.unlink(missing_ok=True)
            elif name.endswith(".swap"):
                final = self.dir / name[: -len(".swap")]
                os.replace(path, final)
                if final.suffix == ".log":
                    stem = final.name[: -len(".log")]
                    (self.dir / f"{stem}.index").unlink(missing_ok=True)
                    (self.dir / f"{stem}.timeindex").unlink(missing_ok=True)
        for name in os.listdir(self.dir):
            if name.endswith((".index", ".timeindex")):
                stem = name.split(".", 1)[0]
                if not (self.dir / f"{stem}.log").exists():
                    (self.dir / name).unlink(missing_ok=True)

    def _rebuild_producer_state(self) -> None:
        """Load the newest snapshot <= LEO and replay batch headers after it."""
        state = self.producer_state
        state.delete_snapshots_after(self._leo)
        if not state.load_latest_snapshot(self._leo):
            state.clear(self.log_start_offset)
        start = max(state.map_end_offset, self.log_start_offset)
        for segment in self._segments:
            if segment.next_offset <= start or not segment.size:
                continue
            found = segment.translate(start)
            if found is None:
                continue
            for pos, header in segment.batches(found[0]):
                if header.base_offset >= start:
                    if header.attributes & 0x20 and header.producer_id >= 0:
                        self._on_marker(header, segment.read_at(pos, header.size),
                                        segment.base_offset)
                    state.update(header)
        state.map_end_offset = self._leo
        state.on_log_start_offset_incremented(self.log_start_offset)

    def _go_offline(self, exc: BaseException) -> None:
        if self.offline_reason is None:
            log.error("partition %s goes OFFLINE (storage error in %s): %s", self.tp, self.dir,
                      exc)
        self.offline_reason = str(exc)
        self._fast_max = -1

    # --- properties ---------------------------------------------------------------------------

    @property
    def is_offline(self) -> bool:
        return self.offline_reason is not None

    @property
    def log_end_offset(self) -> int:
        return self._leo

    @property
    def high_watermark(self) -> int:
        return self._hw

    @high_watermark.setter
    def high_watermark(self, value: int) -> None:
        self._hw = max(min(value, self._leo), self.log_start_offset)

    @property
    def last_stable_offset(self) -> int:
        """The high watermark, or the first offset of the oldest open transaction below it."""
        first_unstable = self.producer_state.first_unstable_offset
        if first_unstable is None:
            return self._hw
        return min(first_unstable, self._hw)

    @property
    def size_bytes(self) -> int:
        return sum(segment.size for segment in self._segments)

    @property
    def latest_epoch(self) -> int:
        return self.epoch_cache.latest_epoch

    @property
    def segments(self) -> list[LogSegment]:
        return list(self._segments)

    @property
    def active_segment(self) -> LogSegment:
        return self._segments[-1]

    # --- appending ----------------------------------------------------------------------------

    def append_as_leader(
        self, records: bytes | bytearray | memoryview, *, leader_epoch: int,
        origin: str = "client",
    ) -> AppendResult:
        """Validate, assign offsets and append a produce payload as the partition leader.

        ``origin`` is "client" (default: control batches refused, producer checks done) or
        "coordinator" (transaction markers and internal topics may write control batches).
        Raises the Kafka errors of validation, InvalidProducerEpochError and
        OutOfOrderSequenceError; a duplicate of one of the producer's last 5 batches returns
        the original offsets with ``duplicate=True`` and writes nothing.
        """
        # Fast path: the usual produce payload, one valid CreateTime data batch, checked and
        # written with no header objects. Anything else (or anything invalid) goes through the
        # general path, which raises the Kafka errors.
        total = len(records)
        if 61 <= total <= self._fast_max and origin == "client":
            (length, magic, crc, attributes, delta, max_ts, pid, producer_epoch, first_seq,
             count) = _HEADER_UNPACK(records, 0)
            if (length + 12 == total and magic == 2 and delta >= 0 and count == delta + 1
                    and not attributes & 0x20):
                staged = total <= STAGING_BYTES
                if staged:
                    # Copy into the cache-hot staging buffer: CRC, prefix rewrite and the
                    # kernel's copy then read hot bytes, and one os.write takes it all.
                    data = staging.view[:total]
                    data[:] = records
                else:
                    data = memoryview(records)
                if _crc32c(data[21:]) == crc:
                    with self._lock:
                        if total > self._fast_max:  # went offline or closed meanwhile
                            return self._append_leader(records, leader_epoch, origin)
                        if pid >= 0:
                            last_seq = first_seq + delta if first_seq >= 0 else -1
                            if last_seq > INT32_MAX:
                                last_seq -= INT32_MAX + 1
                            dup = self.producer_state.check_one(pid, producer_epoch, first_seq,
                                                                last_seq)
                            if dup is not None:
                                return AppendResult(dup.first_offset, dup.last_offset, -1,
                                                    self.log_start_offset, dup.timestamp, True)
                        first = self._leo
                        last = first + delta
                        segment = self._segments[-1]
                        position = segment.size
                        if position and (
                                position + total > self._segment_bytes
                                or max_ts > segment.roll_ts_limit
                                or last > segment.roll_offset_limit
                        ) and self._needs_roll(segment, total, max_ts, last):
                            segment = self._roll(first)
                        try:
                            if staged:
                                _PREFIX.pack_into(data, 0, first, length, leader_epoch)
                                segment.append_batch(data, total, last, max_ts)
                            else:
                                segment.append_one(_PREFIX.pack(first, length, leader_epoch),
                                                   data[16:], total, last, max_ts)
                        except OSError as exc:
                            self._go_offline(exc)
                            raise KafkaStorageError(
                                f"partition {self.tp} is offline: {exc}") from exc
                        self._leo = last + 1
                        if leader_epoch != self.epoch_cache.latest_epoch:
                            self.epoch_cache.assign(leader_epoch, first)
                        if pid >= 0:
                            self.producer_state.record(pid, producer_epoch, first_seq, last_seq,
                                                       first, last, max_ts,
                                                       bool(attributes & 0x10))
                        self._unflushed_messages += count
                        if self._unflushed_messages >= self._flush_messages:
                            self._flush_locked()
                        return _tuple_new(AppendResult,
                                          (first, last, -1, self.log_start_offset, max_ts, False))
        return self._append_leader(records, leader_epoch, origin)

    def _needs_roll(self, segment: LogSegment, size: int, max_ts: int, last: int) -> bool:
        """Kafka's shouldRoll: size, segment.ms (by record timestamps), full indexes, offsets."""
        rolling = segment.rolling_timestamp_ms
        waited = (max_ts - rolling if rolling is not None and rolling >= 0
                  else int(time.time() * 1000) - segment.created_ms)
        return (segment.size + size > self._segment_bytes or waited > self._segment_ms
                or segment.index_full or last - segment.base_offset > INT32_MAX)

    @_io_guard
    def _append_leader(
        self, records: bytes | bytearray | memoryview, leader_epoch: int, origin: str
    ) -> AppendResult:
        headers = validate_batches(records, max_batch_bytes=self._max_message_bytes)
        total = len(records)
        if total > self._segment_bytes:
            raise RecordBatchTooLargeError(
                f"{total} bytes of records exceed segment.bytes {self._segment_bytes}"
            )
        has_producer = False
        for header in headers:
            count = header.records_count
            if count == 0 or count != header.last_offset_delta + 1:
                raise InvalidRecordError(
                    f"record count {count} does not match last offset delta "
                    f"{header.last_offset_delta}"
                )
            if header.attributes & 0x20 and origin == "client":
                raise InvalidRecordError("clients may not write control batches")
            if header.producer_id >= 0:
                has_producer = True
        if self._compact_policy:
            self._check_keys(records, headers)
        with self._lock:
            if self.offline_reason is not None:
                raise KafkaStorageError(f"partition {self.tp} is offline")
            state = self.producer_state
            if has_producer and origin != "client":
                state.check_epochs(headers)
            elif has_producer:
                for header in headers:
                    if header.producer_id >= 0:
                        dup = state.find_duplicate(header)
                        if dup is not None:
                            return AppendResult(dup.first_offset, dup.last_offset, -1,
                                                self.log_start_offset, dup.timestamp, True)
                state.check(headers)
            first = self._leo
            append_time = -1
            if self._log_append_time:
                append_time = int(time.time() * 1000)
                buf = bytearray(records)
                assigned = assign_offsets(buf, first, leader_epoch=leader_epoch,
                                          log_append_time_ms=append_time, headers=headers)
                buffers: list[Any] = [buf]
                metas = [(h.base_offset + h.last_offset_delta, h.max_timestamp,
                          h.batch_length + 12) for h in assigned.headers]
                assigned_headers = assigned.headers
                max_ts = assigned.max_timestamp
            else:
                view = memoryview(records)
                buffers = []
                metas = []
                pos = 0
                offset = first
                max_ts = -1
                pack = _PREFIX.pack
                for header in headers:
                    size = header.batch_length + 12
                    buffers.append(pack(offset, header.batch_length, leader_epoch))
                    buffers.append(view[pos + 16:pos + size])
                    offset += header.last_offset_delta
                    metas.append((offset, header.max_timestamp, size))
                    if header.max_timestamp > max_ts:
                        max_ts = header.max_timestamp
                    offset += 1
                    pos += size
                assigned_headers = None
            last = metas[-1][0]
            self._maybe_roll(total, max_ts, last, first)
            self._segments[-1].append(buffers, total, metas)
            self._leo = last + 1
            if leader_epoch != self.epoch_cache.latest_epoch:
                self.epoch_cache.assign(leader_epoch, first)
            if has_producer:
                if assigned_headers is None:
                    assigned_headers = []
                    offset = first
                    for header in headers:
                        assigned_headers.append(header._replace(
                            base_offset=offset, partition_leader_epoch=leader_epoch))
                        offset += header.last_offset_delta + 1
                pos = 0
                for header in assigned_headers:
                    if header.attributes & 0x20:
                        self._on_marker(header, memoryview(records)[pos:pos + header.size],
                                        self._segments[-1].base_offset)
                    state.update(header)
                    pos += header.size
            state.map_end_offset = self._leo
            self._after_append(last - first + 1)
            return AppendResult(first, last, append_time, self.log_start_offset, max_ts)

    def _check_keys(self, records: bytes | bytearray | memoryview,
                    headers: list[Any]) -> None:
        """Compacted topic: refuse the payload if a record of a data batch has no key, as
        Kafka's LogValidator.validateKey (RecordValidationError, INVALID_RECORD, naming the
        index of each keyless record in the first batch holding one). Control batches (markers)
        are not checked: their records always have a key."""
        view = memoryview(records)
        pos = 0
        for header in headers:
            size = header.batch_length + 12
            if not header.attributes & 0x20:
                keyless = keyless_records(view[pos:pos + size])
                if keyless:
                    message = ("Compacted topic cannot accept message without key in topic "
                               f"partition {self.tp}")
                    raise RecordValidationError([(index, message) for index in keyless],
                                                log_start_offset=self.log_start_offset)
            pos += size

    @_io_guard
    def append_as_follower(self, records: bytes | bytearray | memoryview) -> AppendResult:
        """Append batches replicated from the leader, keeping their offsets and epochs."""
        if not len(records):
            return AppendResult(-1, -1, -1, self.log_start_offset, -1)
        headers = validate_batches(records)
        with self._lock:
            if self.offline_reason is not None:
                raise KafkaStorageError(f"partition {self.tp} is offline")
            first = headers[0].base_offset
            if first < self._leo:
                raise UnexpectedAppendOffsetError(
                    f"{self.tp}: follower append at {first} below log end offset {self._leo}"
                )
            expected = first
            max_ts = -1
            for header in headers:
                if header.base_offset < expected:
                    raise InvalidRecordError("batch offsets are not increasing")
                expected = header.base_offset + header.last_offset_delta + 1
                max_ts = max(max_ts, header.max_timestamp)
            metas = [(h.base_offset + h.last_offset_delta, h.max_timestamp,
                      h.batch_length + 12) for h in headers]
            last = metas[-1][0]
            self._maybe_roll(len(records), max_ts, last, first)
            self._segments[-1].append([records], len(records), metas)
            self._leo = last + 1
            cache = self.epoch_cache
            for header in headers:
                epoch = header.partition_leader_epoch
                if epoch >= 0 and epoch != cache.latest_epoch:
                    cache.assign(epoch, header.base_offset)
            if any(h.attributes & 0x20 for h in headers):
                pos = 0
                for header in headers:
                    if header.attributes & 0x20 and header.producer_id >= 0:
                        self._on_marker(header, memoryview(records)[pos:pos + header.size],
                                        self._segments[-1].base_offset)
                    self.producer_state.update(header)
                    pos += header.size
            else:
                self.producer_state.update_all(headers)
            self.producer_state.map_end_offset = self._leo
            self._after_append(last - first + 1)
            append_time = headers[-1].max_timestamp if (
                headers[-1].attributes & ATTR_LOG_APPEND_TIME) else -1
            return AppendResult(first, last, append_time, self.log_start_offset, max_ts)

    def _on_marker(self, header: Any, batch: Any, segment_base: int) -> None:
        """Before a transaction marker is applied to the producer state: index an abort."""
        entry = self.producer_state.producers.get(header.producer_id)
        first = entry.current_txn_first_offset if entry is not None else None
        if first is None or control_type(batch) != ABORT:
            return
        last = header.base_offset + header.last_offset_delta
        others = [e.current_txn_first_offset for e in self.producer_state.producers.values()
                  if e is not entry and e.current_txn_first_offset is not None]
        lso = min(others) if others else last + 1
        self.txn_index.append(segment_base, AbortedTxn(header.producer_id, first, last, lso))

    def aborted_transactions(self, start_offset: int,
                             end_offset: int) -> list[tuple[int, int]]:
        """read_committed fetches: (producer id, first offset) of every aborted transaction
        whose records may lie in [start_offset, end_offset)."""
        with self._lock:
            return [(e.producer_id, e.first_offset)
                    for e in self.txn_index.collect(start_offset, end_offset)]

    def _after_append(self, messages: int) -> None:
        self._unflushed_messages += messages
        if self._unflushed_messages >= self._flush_messages:
            self._flush_locked()

    def _maybe_roll(self, size: int, max_ts: int, last_offset: int, first_offset: int) -> None:
        segment = self._segments[-1]
        if not segment.size:
            if segment.base_offset != first_offset and first_offset > self._leo:
                # Empty active segment but the follower's data starts further on: re-base it.
                self._roll(first_offset, replace_empty=True)
            return
        if self._needs_roll(segment, size, max_ts, last_offset):
            self._roll(first_offset)

    def _roll(self, new_base: int, *, replace_empty: bool = False) -> LogSegment:
        old = self._segments[-1]
        if replace_empty:
            old.delete()
            old.file.close()
            self._segments.pop()
            self._bases.pop()
        else:
            old.flush(fsync=False)
        segment = self._new_segment(new_base)
        self._segments.append(segment)
        self._bases.append(new_base)
        if not replace_empty:
            self.producer_state.map_end_offset = self._leo
            self.producer_state.take_snapshot()
            self._pending_flushes = [f for f in self._pending_flushes if not f.done()]
            self._pending_flushes.append(_flusher.submit(self._flush_segment, old, new_base))
        return segment

    def roll(self) -> LogSegment:
        """Start a new active segment at the log end offset (if the active one has data)."""
        with self._lock:
            if self._segments[-1].size:
                return self._roll(self._leo)
            return self._segments[-1]

    def _flush_segment(self, segment: LogSegment, up_to: int) -> None:
        """Background fsync of a rolled segment; moves the recovery point forward."""
        try:
            segment.flush(fsync=True)
        except (OSError, ValueError):
            return  # deleted or closed meanwhile
        # No log lock here: truncation waits for this task while holding it.
        if up_to <= self._leo:
            self.recovery_point = max(self.recovery_point, up_to)

    def _wait_flushes(self) -> None:
        for future in self._pending_flushes:
            with contextlib.suppress(Exception):
                future.result()
        self._pending_flushes = []

    # --- reading ------------------------------------------------------------------------------

    @_io_guard
    def read(
        self, offset: int, max_bytes: int, *, max_offset: int | None = None,
        min_one_batch: bool = True,
    ) -> FetchSlice:
        """Whole batches from the one holding ``offset``, at most ``max_bytes`` (at least one
        batch with ``min_one_batch``), only batches ending below ``max_offset`` (exclusive).

        Raises OffsetOutOfRangeError unless log_start_offset <= offset <= log_end_offset.
        """
        with self._lock:
            if offset < self.log_start_offset or offset > self._leo:
                raise OffsetOutOfRangeError(
                    f"offset {offset} is out of range [{self.log_start_offset}, {self._leo}] "
                    f"for {self.tp}"
                )
            if offset == self._leo or (max_offset is not None and offset >= max_offset):
                return _EMPTY
            index = bisect.bisect_right(self._bases, offset) - 1
            for segment in self._segments[max(index, 0):]:
                if max_offset is not None and segment.base_offset >= max_offset:
                    break
                found = segment.translate(offset)
                if found is None:
                    continue
                position, header = found
                end_limit = segment.size
                limit_next = segment.next_offset
                if max_offset is not None and max_offset < segment.next_offset:
                    bound = segment.translate(max_offset)
                    if bound is not None:
                        end_limit, limit_next = bound[0], bound[1].base_offset
                if end_limit <= position:
                    return _EMPTY
                end, next_offset = segment.slice_end(position, max_bytes, end_limit,
                                                     min_one_batch, limit_next)
                if end <= position:
                    return _EMPTY
                return FetchSlice(segment.file, position, end - position, header.base_offset,
                                  next_offset)
            return _EMPTY

    @_io_guard
    def offset_for_timestamp(self, timestamp: int) -> tuple[int, int, int] | None:
        """ListOffsets: (offset, timestamp, leader epoch) of the first record with a timestamp
        >= ``timestamp``; -1 latest, -2 earliest, -3 the record with the max timestamp."""
        with self._lock:
            cache = self.epoch_cache
            if timestamp == LATEST_TIMESTAMP:
                return self._leo, -1, cache.latest_epoch
            if timestamp == EARLIEST_TIMESTAMP:
                return (self.log_start_offset, -1,
                        cache.epoch_for_offset(self.log_start_offset))
            if timestamp == MAX_TIMESTAMP:
                return self._max_timestamp_record()
            if timestamp < 0:
                return None
            for segment in self._segments:
                if segment.max_timestamp < timestamp or segment.next_offset <= \
                        self.log_start_offset:
                    continue
                _, from_offset = segment.time_index.lookup(timestamp)
                from_offset = max(from_offset, self.log_start_offset, segment.base_offset)
                found = segment.translate(from_offset)
                if found is None:
                    continue
                for pos, header in segment.batches(found[0]):
                    if header.max_timestamp < timestamp:
                        continue
                    batch = segment.read_at(pos, header.size)
                    for record in iter_records(batch):
                        if record.timestamp >= timestamp and \
                                record.offset >= self.log_start_offset:
                            return (record.offset, record.timestamp,
                                    cache.epoch_for_offset(record.offset))
            return None

    def _max_timestamp_record(self) -> tuple[int, int, int] | None:
        best: LogSegment | None = None
        for segment in self._segments:
            if segment.size and segment.max_timestamp >= 0 and (
                    best is None or segment.max_timestamp > best.max_timestamp):
                best = segment
        if best is None:
            return None
        found = best.translate(best.offset_of_max_timestamp)
        if found is None:
            return None
        pos, header = found
        for record in iter_records(best.read_at(pos, header.size)):
            if record.timestamp == best.max_timestamp:
                return (record.offset, record.timestamp,
                        self.epoch_cache.epoch_for_offset(record.offset))
        return (header.last_offset, best.max_timestamp,
                self.epoch_cache.epoch_for_offset(header.last_offset))

    def end_offset_for_epoch(self, epoch: int) -> tuple[int, int]:
        """OffsetForLeaderEpoch: (largest epoch <= ``epoch``, its end offset), or (-1, -1)."""
        with self._lock:
            return self.epoch_cache.end_offset_for(epoch, self._leo)

    # --- truncation, deletion, retention ----------------------------------------------------

    @_io_guard
    def truncate_to(self, offset: int) -> None:
        """Remove every batch whose last offset is >= ``offset`` (follower truncation)."""
        with self._lock:
            if offset >= self._leo:
                return
            self._wait_flushes()
            if offset <= self._segments[0].base_offset:
                self._truncate_fully(offset)
                return
            while len(self._segments) > 1 and self._segments[-1].base_offset >= offset:
                segment = self._segments.pop()
                self._bases.pop()
                segment.delete()
            segment = self._segments[-1]
            segment.truncate_to(offset)
            self._leo = segment.next_offset if segment.size else segment.base_offset
            self._after_truncation()

    def _after_truncation(self) -> None:
        self.log_start_offset = min(self.log_start_offset, self._leo)
        self._hw = min(self._hw, self._leo)
        self.recovery_point = min(self.recovery_point, self._leo)
        self.cleaner_checkpoint = min(self.cleaner_checkpoint, self._leo)
        self.epoch_cache.truncate_from_end(self._leo)
        self.txn_index.truncate_to(self._leo)
        self._rebuild_producer_state()

    @_io_guard
    def truncate_fully_and_start_at(self, offset: int) -> None:
        """Delete everything and start an empty log at ``offset``."""
        with self._lock:
            self._wait_flushes()
            self._truncate_fully(offset)

    def _truncate_fully(self, offset: int) -> None:
        for segment in self._segments:
            segment.delete()
        self._segments = []
        self._bases = []
        self._segments.append(self._new_segment(offset))
        self._bases.append(offset)
        self._leo = self.log_start_offset = self._hw = self.recovery_point = offset
        self.cleaner_checkpoint = offset
        self.epoch_cache.clear()
        self.txn_index.clear()
        self.producer_state.delete_all_snapshots()
        self.producer_state.clear(offset)

    @_io_guard
    def delete_records_before(self, offset: int) -> int:
        """DeleteRecords: move the log start offset to ``offset`` (<= high watermark); delete
        the segments entirely below it; return the new log start offset (low watermark)."""
        with self._lock:
            if offset < 0 or offset > self._hw:
                raise OffsetOutOfRangeError(
                    f"cannot delete records of {self.tp} before {offset}: high watermark is "
                    f"{self._hw}"
                )
            if offset > self.log_start_offset:
                self._increment_log_start(offset)
                self._delete_segments_below_start()
            return self.log_start_offset

    def _increment_log_start(self, offset: int) -> None:
        self.log_start_offset = offset
        self.cleaner_checkpoint = max(self.cleaner_checkpoint, offset)
        self.epoch_cache.truncate_from_start(offset)
        self.producer_state.on_log_start_offset_incremented(offset)

    def _delete_segment(self, segment: LogSegment, reason: str) -> None:
        log.info("%s: deleting segment %s (%s)", self.tp, segment.path.name, reason)
        self._segments.remove(segment)
        self._bases.remove(segment.base_offset)
        segment.delete()
        self.txn_index.delete_segment(segment.base_offset)

    def _delete_segments_below_start(self) -> int:
        deleted = 0
        while len(self._segments) > 1 and self._segments[1].base_offset <= self.log_start_offset:
            self._delete_segment(self._segments[0], "below the log start offset")
            deleted += 1
        return deleted

    @_io_guard
    def enforce_retention(self, now_ms: int) -> int:
        """Delete whole old segments by retention.ms / retention.bytes (cleanup.policy delete)
        and segments below the log start offset; never the active segment, never a segment
        holding offsets at or above the high watermark. Returns the number deleted."""
        with self._lock:
            deleted = self._delete_segments_below_start()
            if not self._delete_policy:
                return deleted
            retention_ms = int(self.config["retention.ms"])
            retention_bytes = int(self.config["retention.bytes"])
            excess = self.size_bytes - retention_bytes if retention_bytes >= 0 else 0
            while len(self._segments) > 1:
                segment, following = self._segments[0], self._segments[1]
                if following.base_offset > self._hw:
                    break
                if retention_ms >= 0 and now_ms - segment.largest_timestamp > retention_ms:
                    reason = f"retention.ms {retention_ms}"
                elif retention_bytes >= 0 and excess - segment.size >= 0:
                    reason = f"retention.bytes {retention_bytes}"
                else:
                    break
                excess -= segment.size
                self._delete_segment(segment, reason)
                deleted += 1
                if self._segments[0].base_offset > self.log_start_offset:
                    self._increment_log_start(self._segments[0].base_offset)
            return deleted

    @_io_guard
    def compact(self, now_ms: int, *, force: bool = False) -> int:
        """Compact the non-active segments (cleanup.policy compact); return bytes removed."""
        from core.storage.cleaner import clean_log

        with self._lock:
            if not self._compact_policy and not force:
                return 0
            return clean_log(self, now_ms, force=force)

    def _replace_segment(self, old: LogSegment, new: LogSegment) -> None:
        """Swap a compacted segment in (cleaner's last step)."""
        index = self._segments.index(old)
        self._segments[index] = new

    # --- flushing and lifecycle ---------------------------------------------------------------

    @_io_guard
    def flush(self) -> None:
        """fsync everything written so far; the recovery point becomes the log end offset."""
        with self._lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        for segment in self._segments:
            if segment.next_offset > self.recovery_point or segment is self._segments[-1]:
                segment.flush(fsync=True)
        self.recovery_point = self._leo
        self._unflushed_messages = 0
        self._last_flush_ms = int(time.time() * 1000)

    def maybe_flush(self, now_ms: int) -> bool:
        """flush.ms: flush when that long has passed since the last flush."""
        if self._unflushed_messages and now_ms - self._last_flush_ms >= self._flush_ms:
            self.flush()
            return True
        return False

    def close(self) -> None:
        """Flush, snapshot producer state, close files and mark the shutdown clean."""
        with self._lock:
            self._wait_flushes()
            if self.offline_reason is None:
                try:
                    self._flush_locked()
                    self.producer_state.map_end_offset = self._leo
                    self.producer_state.take_snapshot()
                    (self.dir / CLEAN_SHUTDOWN_FILE).touch()
                except OSError as exc:
                    self._go_offline(exc)
            for segment in self._segments:
                with contextlib.suppress(OSError):
                    segment.file.close()
            self._closed = True
            self._fast_max = -1

    def delete(self) -> None:
        """Close and remove the partition directory."""
        with self._lock:
            self._wait_flushes()
            for segment in self._segments:
                with contextlib.suppress(OSError):
                    segment.file.close()
            self._closed = True
            self._fast_max = -1
            shutil.rmtree(self.dir, ignore_errors=True)

    def __repr__(self) -> str:
        return (f"Log({self.tp}, start={self.log_start_offset}, hw={self._hw}, "
                f"leo={self._leo}, segments={len(self._segments)})")


def segment_names(directory: Path) -> list[str]:
    """The .log files of a partition directory, oldest first (for tools and tests)."""
    return sorted(n for n in os.listdir(directory) if _LOG_RE.match(n))


__all__ += ["segment_file_name", "segment_names"]
