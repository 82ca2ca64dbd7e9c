"""The produce fast path (staging buffer, one os.write) and the fetch-path header walks.

``Log.append_as_leader`` takes a fast path for the usual payload (one CreateTime data batch
from a client) and the general path (``Log._append_leader``: header objects, Kafka errors) for
everything else. Both must leave exactly the same log behind: the same bytes, indexes, rolls,
timestamps and producer state. ``LogSegment.translate`` / ``slice_end`` walk batch headers with
a reused scratch buffer; they must agree with a plain walk over ``LogSegment.batches``.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.common.errors import (
    CorruptRecordError,
    InvalidProducerEpochError,
    KafkaError,
    OutOfOrderSequenceError,
)
from core.records.batch import build_batch, iter_records, validate_batches
from core.storage.log import Log
from core.storage.staging import STAGING_BYTES

from .helpers import open_log

FAST = settings(max_examples=int(os.environ.get("KAFLAB_FAST_PATH_EXAMPLES", 30)), deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def _batch(count: int, size: int, ts: int, producer: tuple[int, int, int] | None = None,
           txn: bool = False) -> bytes:
    kwargs: dict[str, Any] = {}
    if producer is not None:
        pid, epoch, seq = producer
        kwargs = dict(producer_id=pid, producer_epoch=epoch, base_sequence=seq,
                      is_transactional=txn)
    return build_batch([(b"k%d" % i, b"v" * size, []) for i in range(count)],
                       timestamp_ms=ts, **kwargs)


def _batch_of_size(size: int, ts: int) -> bytes:
    """One single-record batch of exactly ``size`` bytes."""
    value = size - 80
    for _ in range(5):
        payload = build_batch([(b"k", b"v" * value, [])], timestamp_ms=ts)
        if len(payload) == size:
            return payload
        value += size - len(payload)
    raise AssertionError(f"no batch of {size} bytes")


def _state(log: Log) -> dict[str, Any]:
    """Everything an append changes, file bytes included."""
    segments = []
    for segment in log.segments:
        segments.append((
            segment.path.name, segment.path.read_bytes(), segment.size, segment.next_offset,
            segment.offset_index.entries(), segment.time_index.entries(),
            segment.max_timestamp, segment.offset_of_max_timestamp,
            segment.rolling_timestamp_ms, segment.index_full, segment.bytes_since_index,
        ))
    producers = {pid: (e.epoch, list(e.batches), e.current_txn_first_offset, e.last_timestamp)
                 for pid, e in log.producer_state.producers.items()}
    return dict(segments=segments, leo=log.log_end_offset, producers=producers,
                epochs=log.epoch_cache.entries)


def _append_both(fast: Log, general: Log, payload: bytes, epoch: int = 3) -> None:
    """Append through the fast path and the general path; same outcome, error included."""
    outcomes = []
    for log, append in ((fast, fast.append_as_leader), (general, None)):
        try:
            if append is not None:
                result = append(payload, leader_epoch=epoch)
            else:
                result = log._append_leader(payload, epoch, "client")
            outcomes.append(("ok", tuple(result)))
        except KafkaError as exc:
            outcomes.append(("error", type(exc).__name__))
    assert outcomes[0] == outcomes[1]


CONFIGS = [
    {"segment.bytes": 4000, "index.interval.bytes": 300},
    {"segment.bytes": 1 << 20, "index.interval.bytes": 1, "segment.index.bytes": 40},
    {"segment.bytes": 9000, "index.interval.bytes": 0, "segment.index.bytes": 24},
]


@FAST
@given(config=st.sampled_from(CONFIGS),
       batches=st.lists(st.tuples(st.integers(1, 6), st.integers(0, 700),
                                  st.integers(-5, 5)), min_size=1, max_size=40))
def test_fast_path_leaves_the_same_log_as_the_general_path(tmp_path_factory, config, batches):
    base = tmp_path_factory.mktemp("fast")
    fast, general = Log(base / "f-0", dict(config)), Log(base / "g-0", dict(config))
    ts = 1_000
    for count, size, step in batches:
        ts += step  # timestamps also go backwards: the time index only takes growing ones
        _append_both(fast, general, _batch(count, size, ts))
    assert _state(fast) == _state(general)
    assert len(fast.segments) == len(general.segments)


@FAST
@given(ops=st.lists(st.tuples(st.sampled_from([7, 8]), st.integers(0, 2), st.integers(-2, 3),
                              st.integers(1, 4), st.booleans()), min_size=1, max_size=40))
def test_fast_path_producer_checks_match_the_general_path(tmp_path_factory, ops):
    """Duplicates, sequence gaps, epoch bumps and fenced epochs: same answers, same state."""
    base = tmp_path_factory.mktemp("idem")
    fast, general = open_log(base, name="f-0"), open_log(base, name="g-0")
    next_seq = {7: 0, 8: 0}
    for pid, epoch, seq_shift, count, txn in ops:
        seq = max(0, next_seq[pid] + seq_shift)  # shift 0: in order; <0: duplicate; >0: gap
        _append_both(fast, general, _batch(count, 20, 5_000, (pid, epoch, seq), txn))
        entry = fast.producer_state.producers.get(pid)
        next_seq[pid] = entry.last_seq + 1 if entry is not None and entry.batches else 0
    assert _state(fast) == _state(general)


def test_duplicate_and_sequence_errors_on_the_fast_path(tmp_path):
    log = open_log(tmp_path)
    first = log.append_as_leader(_batch(3, 10, 1, (5, 0, 0)), leader_epoch=0)
    again = log.append_as_leader(_batch(3, 10, 1, (5, 0, 0)), leader_epoch=0)
    assert again.duplicate and (again.first_offset, again.last_offset) == (0, 2)
    assert first.last_offset == 2 and log.log_end_offset == 3
    with pytest.raises(OutOfOrderSequenceError):
        log.append_as_leader(_batch(1, 10, 1, (5, 0, 9)), leader_epoch=0)
    log.append_as_leader(_batch(1, 10, 1, (5, 1, 0)), leader_epoch=0)
    with pytest.raises(InvalidProducerEpochError):
        log.append_as_leader(_batch(1, 10, 1, (5, 0, 3)), leader_epoch=0)
    assert log.log_end_offset == 4


@pytest.mark.parametrize("size", [STAGING_BYTES - 1, STAGING_BYTES, STAGING_BYTES + 1,
                                  3 * STAGING_BYTES])
def test_batches_around_the_staging_size(tmp_path, size):
    """Below the staging size the batch is copied and written with os.write, above it is
    written zero-copy with os.writev: the same log either way, and it survives recovery."""
    config = {"segment.bytes": 1 << 24, "max.message.bytes": 1 << 23,
              "index.interval.bytes": 4096}
    fast, general = Log(tmp_path / "f-0", dict(config)), Log(tmp_path / "g-0", dict(config))
    payloads = [_batch_of_size(size, 100 + i) for i in range(3)]
    for payload in payloads:
        _append_both(fast, general, payload)
    payloads.append(_batch(2, 5, 200))  # a small one after: the staged copy is not reused
    _append_both(fast, general, payloads[-1])
    assert _state(fast) == _state(general)
    fast.close()
    reopened = Log(tmp_path / "f-0", dict(config), clean_shutdown=False, recovery_point=0)
    assert reopened.log_end_offset == 5
    data = reopened.read(0, 1 << 30).read_bytes()
    assert [h.base_offset for h in validate_batches(data)] == [0, 1, 2, 3]


def test_appends_from_threads_do_not_share_a_staging_buffer(tmp_path):
    """Three threads appending to three logs at once, switching threads as often as the
    interpreter allows (os.write releases the GIL while the kernel copies the staged batch):
    every batch lands intact (recovery with CRC checks truncates nothing) and in order."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    config = {"segment.bytes": 1 << 26, "max.message.bytes": 1 << 20}
    logs = [open_log(tmp_path, dict(config), name=f"t-{i}") for i in range(3)]
    errors: list[BaseException] = []
    count = 120

    def value(fill: int, i: int) -> bytes:
        return bytes([fill]) * (STAGING_BYTES // 2 + i * 977)

    def produce(log: Log, fill: int) -> None:
        try:
            for i in range(count):
                log.append_as_leader(build_batch([(b"%d" % i, value(fill, i), [])],
                                                 timestamp_ms=i), leader_epoch=0)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=produce, args=(log, 65 + n))
               for n, log in enumerate(logs)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    finally:
        sys.setswitchinterval(previous)
    assert not errors
    for n, log in enumerate(logs):
        directory = log.dir
        log.close()
        reopened = Log(directory, dict(config), clean_shutdown=False, recovery_point=0)
        assert reopened.log_end_offset == count
        records = [r for b in _batches(reopened) for r in iter_records(b)]
        assert [r.offset for r in records] == list(range(count))
        assert all(r.value == value(65 + n, r.offset) for r in records)


def _batches(log: Log) -> list[bytes]:
    data = log.read(0, 1 << 30).read_bytes()
    out, pos = [], 0
    for header in validate_batches(data):
        out.append(data[pos:pos + header.size])
        pos += header.size
    return out


def test_wall_clock_roll_without_timestamps(tmp_path):
    """Batches without timestamps (-1) roll by segment.ms on the wall clock, as Kafka does
    when there is no rolling timestamp: the fast path must not skip that check."""
    config = {"segment.ms": 1, "segment.bytes": 1 << 20}
    fast, general = Log(tmp_path / "f-0", dict(config)), Log(tmp_path / "g-0", dict(config))
    for _ in range(3):
        _append_both(fast, general, _batch(2, 10, -1))
        time.sleep(0.01)
    assert len(fast.segments) == len(general.segments) == 3


def test_corrupt_batch_is_refused_and_nothing_is_written(tmp_path):
    log = open_log(tmp_path)
    good = bytearray(_batch(2, 30, 10))
    good[-1] ^= 0xFF
    with pytest.raises(CorruptRecordError):
        log.append_as_leader(bytes(good), leader_epoch=0)
    assert log.log_end_offset == 0 and log.active_segment.path.stat().st_size == 0


def _reference_slice_end(segment: Any, start: int, max_bytes: int, end_limit: int,
                         min_one: bool, limit_next: int) -> tuple[int, int]:
    """slice_end by a plain walk over every batch from ``start``."""
    wanted = start + max_bytes
    if wanted >= end_limit:
        return end_limit, limit_next
    end, next_offset = start, -1
    for pos, header in segment.batches(start, end_limit):
        batch_end = pos + header.size
        if batch_end > wanted:
            if end == start and min_one:
                return batch_end, header.next_offset
            break
        end, next_offset = batch_end, header.next_offset
    return end, next_offset


@FAST
@given(sizes=st.lists(st.integers(0, 900), min_size=1, max_size=50),
       interval=st.sampled_from([0, 100, 700, 4096]),
       probes=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 6_000),
                                 st.integers(0, 10_000), st.booleans()), max_size=25))
def test_header_walks_match_a_plain_walk(tmp_path_factory, sizes, interval, probes):
    log = open_log(tmp_path_factory.mktemp("walk"),
                   {"segment.bytes": 1 << 20, "index.interval.bytes": interval})
    for i, size in enumerate(sizes):
        log.append_as_leader(_batch(1 + i % 3, size, i), leader_epoch=0)
    segment = log.active_segment
    linear = list(segment.batches(0))
    for target in range(log.log_end_offset + 1):
        expected = next(((p, h) for p, h in linear if h.last_offset >= target), None)
        assert segment.translate(target) == expected
    for start_pick, max_bytes, limit_pick, min_one in probes:
        start = linear[start_pick % len(linear)][0]
        ends = [p + h.size for p, h in linear if p + h.size > start]
        end_limit = ends[limit_pick % len(ends)]
        limit_next = next(h.next_offset for p, h in linear if p + h.size == end_limit)
        assert segment.slice_end(start, max_bytes, end_limit, min_one, limit_next) == \
            _reference_slice_end(segment, start, max_bytes, end_limit, min_one, limit_next)


def test_header_walk_stops_at_a_torn_batch(tmp_path):
    """A batch cut short on disk (beyond segment.size after a crash) is never walked into."""
    log = open_log(tmp_path, {"segment.bytes": 1 << 20, "index.interval.bytes": 0})
    for i in range(5):
        log.append_as_leader(_batch(2, 100, i), leader_epoch=0)
    segment = log.active_segment
    assert segment.translate(log.log_end_offset) is None
    # A limit in the middle of the last batch (offsets 8-9): the walk never enters it.
    linear = list(segment.batches(0))
    last_pos = linear[-1][0]
    assert segment._scan(0, last_pos + 30, 9) is None
    assert segment._scan(0, last_pos + 30, 7) == (linear[-2][0], tuple(linear[-2][1]))


def test_opened_size_marks_what_this_process_wrote(tmp_path):
    """Bytes at or above LogSegment.opened_size were appended (and CRC-checked) by this
    process: the size found on open, lowered by truncation and by recovery of a torn tail."""
    config = {"segment.bytes": 1 << 20, "index.interval.bytes": 0}
    log = Log(tmp_path / "t-0", dict(config))
    assert log.active_segment.opened_size == 0
    for i in range(4):
        log.append_as_leader(_batch(2, 50, i), leader_epoch=0)
    assert log.active_segment.opened_size == 0
    log.close()
    log = Log(tmp_path / "t-0", dict(config))
    segment = log.active_segment
    found = segment.size
    assert segment.opened_size == found
    log.append_as_leader(_batch(1, 50, 9), leader_epoch=0)
    assert segment.opened_size == found < segment.size
    log.truncate_to(4)
    assert segment.opened_size == segment.size < found
    # A torn tail cut by recovery.
    log.append_as_leader(_batch(1, 50, 10), leader_epoch=0)
    log.flush()
    size = segment.size
    with open(segment.path, "r+b") as handle:
        handle.truncate(size - 5)
    recovered = Log(tmp_path / "t-0", dict(config), clean_shutdown=False, recovery_point=0)
    assert recovered.active_segment.opened_size == recovered.active_segment.size < size


def test_segment_ms_change_applies_to_the_active_segment(tmp_path):
    """The fast path's precomputed time limit follows a segment.ms change (AlterConfigs)."""
    fast, general = Log(tmp_path / "f-0", {}), Log(tmp_path / "g-0", {})
    _append_both(fast, general, _batch(1, 10, 1_000))
    _append_both(fast, general, _batch(1, 10, 60_000))
    assert len(fast.segments) == len(general.segments) == 1
    for log in (fast, general):
        log.update_config({"segment.ms": 10_000})
    _append_both(fast, general, _batch(1, 10, 61_000))
    assert len(fast.segments) == len(general.segments) == 2
    assert _state(fast) == _state(general)
