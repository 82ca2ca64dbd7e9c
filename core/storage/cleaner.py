"""Log compaction (cleanup.policy=compact), Kafka's LogCleaner reduced to one pass.

1. Build key -> last offset over the cleanable range: every segment but the active one, whose
   records are older than min.compaction.lag.ms, below the first unstable (transactional) offset.
2. Rewrite each cleanable segment that has something to drop into ``<base>.log.cleaned``,
   keeping, per batch, the records that are the last of their key; tombstones (null value) are
   kept until the segment holding them is older than delete.retention.ms, then dropped.
   Records without a key are dropped (Kafka refuses them on compacted topics). A batch keeps its
   base offset, producer fields, timestamps and codec; an idempotent producer's last batch is
   kept even when it becomes empty, so its sequence state survives. Control batches are kept.
3. fsync, rename ``.cleaned`` -> ``.swap`` -> ``.log`` (recovery finishes or discards an
   interrupted swap) and put the new segment in place.

Compaction runs when the dirty part (after ``cleaner_checkpoint``) is at least
min.cleanable.dirty.ratio of the cleanable bytes, when max.compaction.lag.ms has passed, or when
forced. This is the one place that does per-record work.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from core.records.batch import (
    ATTR_CONTROL,
    LOG_OVERHEAD,
    assemble_batch,
    compress,
    encode_record,
    iter_records,
)
from core.storage.checkpoints import fsync_dir
from core.storage.segment import LogSegment

if TYPE_CHECKING:
    from core.storage.log import Log

__all__ = ["clean_log"]


def _cleanable_segments(log: Log, now_ms: int) -> list[LogSegment]:
    segments = log.segments[:-1]  # never the active segment
    min_lag = int(log.config["min.compaction.lag.ms"])
    first_unstable = log.producer_state.first_unstable_offset
    result = []
    for segment in segments:
        if not segment.size:
            continue
        if min_lag > 0 and now_ms - segment.largest_timestamp < min_lag:
            break
        if first_unstable is not None and segment.next_offset > first_unstable:
            break
        result.append(segment)
    return result


def _should_clean(log: Log, segments: list[LogSegment], now_ms: int) -> bool:
    total = sum(s.size for s in segments)
    if not total:
        return False
    dirty = sum(s.size for s in segments if s.next_offset > log.cleaner_checkpoint)
    if dirty / total >= float(log.config["min.cleanable.dirty.ratio"]) and dirty:
        return True
    max_lag = int(log.config["max.compaction.lag.ms"])
    return any(
        s.next_offset > log.cleaner_checkpoint and now_ms - s.largest_timestamp > max_lag
        for s in segments
    )


def _read_segment_batches(segment: LogSegment) -> list[bytes]:
    data = os.pread(segment.fd, segment.size, 0)
    out = []
    for pos, header in segment.batches(0):
        out.append(data[pos:pos + header.batch_length + LOG_OVERHEAD])
    return out


def clean_log(log: Log, now_ms: int, *, force: bool = False) -> int:
    """Compact ``log`` (caller holds its lock). Returns the number of bytes removed."""
    segments = _cleanable_segments(log, now_ms)
    if not segments or (not force and not _should_clean(log, segments, now_ms)):
        return 0
    # Pass 1: key -> last offset (over everything cleanable; later keys win).
    last_offset_of: dict[bytes, int] = {}
    for segment in segments:
        for batch in _read_segment_batches(segment):
            if batch[21 + 1] & ATTR_CONTROL:
                continue
            for record in iter_records(batch):
                if record.key is not None:
                    last_offset_of[record.key] = record.offset
    delete_horizon = now_ms - int(log.config["delete.retention.ms"])
    producers = log.producer_state.producers
    removed = 0
    for segment in segments:
        drop_tombstones = segment.largest_timestamp < delete_horizon
        new_batches: list[bytes] = []
        changed = False
        for batch in _read_segment_batches(segment):
            header_attrs = int.from_bytes(batch[21:23], "big", signed=True)
            if header_attrs & ATTR_CONTROL:
                new_batches.append(batch)
                continue
            records = list(iter_records(batch))
            kept = [
                r for r in records
                if r.key is not None and last_offset_of.get(r.key) == r.offset
                and not (r.value is None and drop_tombstones)
            ]
            if len(kept) == len(records):
                new_batches.append(batch)
                continue
            changed = True
            rebuilt = _rebuild(batch, kept, producers)
            if rebuilt is not None:
                new_batches.append(rebuilt)
        if changed:
            removed += _swap_in(log, segment, new_batches)
    if segments:
        log.cleaner_checkpoint = max(log.cleaner_checkpoint, segments[-1].next_offset)
    return removed


def _rebuild(batch: bytes, kept: list, producers: dict) -> bytes | None:
    """A batch with only ``kept`` records (same base offset, deltas, producer fields)."""
    from core.records.batch import read_header

    header = read_header(batch)
    if not kept:
        entry = producers.get(header.producer_id) if header.producer_id >= 0 else None
        if entry is None or entry.last_offset != header.last_offset:
            return None
    body = bytearray()
    for record in kept:
        timestamp_delta = (record.timestamp - header.base_timestamp
                           if not header.attributes & 0x08 else 0)
        encode_record(body, record.offset - header.base_offset, timestamp_delta, record.key,
                      record.value, record.headers, record.attributes)
    # Keep the codec; an empty records section stays empty.
    section = compress(header.compression, bytes(body)) if kept else b""
    return assemble_batch(
        section,
        base_offset=header.base_offset, partition_leader_epoch=header.partition_leader_epoch,
        attributes=header.attributes, last_offset_delta=header.last_offset_delta,
        base_timestamp=header.base_timestamp, max_timestamp=header.max_timestamp,
        producer_id=header.producer_id, producer_epoch=header.producer_epoch,
        base_sequence=header.base_sequence, records_count=len(kept),
    )


def _swap_in(log: Log, old: LogSegment, batches: list[bytes]) -> int:
    directory = old.directory
    stem = old.path.name[: -len(".log")]
    cleaned = directory / f"{stem}.log.cleaned"
    data = b"".join(batches)
    fd = os.open(cleaned, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    swap = directory / f"{stem}.log.swap"
    os.replace(cleaned, swap)
    fsync_dir(directory)
    old.offset_index.delete()
    old.time_index.delete()
    os.replace(swap, old.path)
    fsync_dir(directory)
    new = LogSegment(directory, old.base_offset, index_interval_bytes=old.index_interval_bytes,
                     max_index_bytes=old.offset_index.max_entries * 8, segment_ms=old.segment_ms)
    new.recover()
    new.flush(fsync=True)
    # Keep the segment's offset range: the next segment still starts where it did.
    new.next_offset = max(new.next_offset, old.next_offset)
    log._replace_segment(old, new)
    removed = old.size - new.size
    # The old file object is not closed here: fetch slices may still hold it (GC closes it).
    return removed

