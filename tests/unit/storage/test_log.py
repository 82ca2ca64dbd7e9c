"""Log: append/read, indexes, rolling, recovery, truncation, retention, timestamps."""

from __future__ import annotations

import itertools
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.common.errors import (
    CorruptRecordError,
    InvalidRecordError,
    OffsetOutOfRangeError,
    RecordTooLargeError,
)
from core.common.types import TopicPartition
from core.records.batch import build_batch, iter_records, read_header, validate_batches
from core.storage.log import Log, UnexpectedAppendOffsetError

from .helpers import batch, open_log, read_all

FAST = settings(max_examples=25, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def test_append_read_round_trip(tmp_path):
    log = open_log(tmp_path)
    assert log.tp == TopicPartition("t", 0)
    for i in range(100):
        result = log.append_as_leader(batch(3, ts=1000 + i, size=i), leader_epoch=0)
        assert (result.first_offset, result.last_offset) == (3 * i, 3 * i + 2)
        assert result.log_append_time_ms == -1 and not result.duplicate
    assert log.log_end_offset == 300
    assert len(log.segments) > 3  # rolled at segment.bytes
    records = read_all(log)
    assert [r.offset for r in records] == list(range(300))
    assert [len(r.value) for r in records[::3]] == list(range(100))
    assert log.size_bytes == sum(os.path.getsize(s.path) for s in log.segments)


def test_topic_with_dashes(tmp_path):
    log = Log(tmp_path / "my-topic-x-12", {})
    assert log.tp == TopicPartition("my-topic-x", 12)


@FAST
@given(sizes=st.lists(st.integers(1, 400), min_size=1, max_size=60),
       counts=st.lists(st.integers(1, 5), min_size=60, max_size=60),
       reads=st.lists(st.tuples(st.integers(0, 400), st.integers(0, 3000)), max_size=20))
def test_read_matches_linear_scan(tmp_path_factory, sizes, counts, reads):
    log = open_log(tmp_path_factory.mktemp("l"), {"segment.bytes": 3000,
                                                  "index.interval.bytes": 200})
    batches = []  # (base, last, bytes)
    for size, count in zip(sizes, counts, strict=False):
        result = log.append_as_leader(batch(count, size=size), leader_epoch=0)
        batches.append((result.first_offset, result.last_offset))
    for offset, max_bytes in reads:
        offset %= log.log_end_offset + 1
        piece = log.read(offset, max_bytes)
        data = piece.read_bytes()
        if offset == log.log_end_offset:
            assert data == b""
            continue
        headers = validate_batches(data)  # whole batches only
        # First batch is the one containing offset (linear scan over what we appended).
        expected_first = next(b for b in batches if b[1] >= offset)[0]
        assert headers[0].base_offset == expected_first
        assert len(data) <= max_bytes or len(headers) == 1
        # Contiguous, and stays within one segment.
        for a, b in itertools.pairwise(headers):
            assert b.base_offset == a.next_offset


def test_index_lookup_equals_linear_scan(tmp_path):
    log = open_log(tmp_path, {"segment.bytes": 1 << 20, "index.interval.bytes": 300})
    for i in range(300):
        log.append_as_leader(batch(1 + i % 4, size=i % 97), leader_epoch=0)
    segment = log.active_segment
    linear = list(segment.batches(0))
    assert len(segment.offset_index) > 10
    for target in range(0, log.log_end_offset):
        expected = next((p, h) for p, h in linear if h.last_offset >= target)
        assert segment.translate(target) == expected
    # The index survives a clean restart and is the same.
    entries = segment.offset_index.entries()
    log.close()
    reopened = open_log(tmp_path, {"segment.bytes": 1 << 20, "index.interval.bytes": 300})
    assert reopened.active_segment.offset_index.entries() == entries


def test_read_bounds(tmp_path):
    log = open_log(tmp_path)
    for _ in range(10):
        log.append_as_leader(batch(2), leader_epoch=0)
    with pytest.raises(OffsetOutOfRangeError):
        log.read(21, 100)
    with pytest.raises(OffsetOutOfRangeError):
        log.read(-1, 100)
    assert log.read(20, 100).size == 0
    # max_offset (exclusive), e.g. the high watermark
    data = log.read(0, 10_000, max_offset=7).read_bytes()
    assert validate_batches(data)[-1].last_offset == 5  # the batch 6-7 straddles it
    assert log.read(6, 10_000, max_offset=6).size == 0
    # min_one_batch
    one = log.read(0, 1).read_bytes()
    assert len(validate_batches(one)) == 1
    assert log.read(0, 1, min_one_batch=False).size == 0
    # middle of a batch returns the whole batch
    assert read_header(log.read(3, 1).read_bytes()).base_offset == 2


def test_validation_errors_write_nothing(tmp_path):
    log = open_log(tmp_path, {"max.message.bytes": 200})
    good = batch(1)
    with pytest.raises(RecordTooLargeError):
        log.append_as_leader(batch(1, size=300), leader_epoch=0)
    bad = bytearray(good)
    bad[-1] ^= 1
    with pytest.raises(CorruptRecordError):
        log.append_as_leader(bytes(bad), leader_epoch=0)
    control = build_batch([(b"\0\0\0\0", b"", [])], timestamp_ms=1, is_control=True,
                          producer_id=1, producer_epoch=0)
    with pytest.raises(InvalidRecordError):
        log.append_as_leader(control, leader_epoch=0)
    assert log.log_end_offset == 0 and log.size_bytes == 0
    assert log.append_as_leader(control, leader_epoch=0, origin="coordinator").first_offset == 0


def test_log_append_time(tmp_path):
    log = open_log(tmp_path, {"message.timestamp.type": "LogAppendTime"})
    result = log.append_as_leader(batch(2, ts=5), leader_epoch=0)
    assert result.log_append_time_ms > 1_600_000_000_000
    data = log.read(0, 1000).read_bytes()
    [header] = validate_batches(data)
    assert header.timestamp_type == 1
    assert [r.timestamp for r in iter_records(data)] == [result.log_append_time_ms] * 2


def _crash_copy(log: Log) -> None:
    """Simulate a crash: the log is just abandoned (no close, no clean-shutdown marker)."""
    log._wait_flushes()


def test_recovery_cut_at_every_byte_of_last_batch(tmp_path):
    src = open_log(tmp_path, {"segment.bytes": 1 << 20}, name="src-0")
    for i in range(5):
        src.append_as_leader(batch(2, size=20 + i), leader_epoch=1)
    last = build_batch([(b"k", b"last" * 10, [])] * 3, timestamp_ms=9)
    src.append_as_leader(last, leader_epoch=2)
    src.close()
    data = (tmp_path / "src-0" / "00000000000000000000.log").read_bytes()
    last_start = len(data) - len(last)
    for cut in range(last_start, len(data) + 1):
        directory = tmp_path / f"cut{cut}-0"
        directory.mkdir()
        (directory / "00000000000000000000.log").write_bytes(data[:cut])
        log = Log(directory, {})
        expected_leo = 13 if cut == len(data) else 10
        assert log.log_end_offset == expected_leo
        assert os.path.getsize(directory / "00000000000000000000.log") == (
            len(data) if cut == len(data) else last_start)
        assert [r.offset for r in read_all(log)] == list(range(expected_leo))
        assert log.latest_epoch == (2 if cut == len(data) else 1)
        # It keeps working after recovery.
        assert log.append_as_leader(batch(1), leader_epoch=3).first_offset == expected_leo
        log.close()


def test_corrupt_byte_mid_segment_detected(tmp_path):
    log = open_log(tmp_path, {"segment.bytes": 1 << 20, "index.interval.bytes": 100})
    positions = []
    for _ in range(20):
        positions.append(log.active_segment.size)
        log.append_as_leader(batch(1, size=50), leader_epoch=0)
    _crash_copy(log)
    path = log.active_segment.path
    data = bytearray(path.read_bytes())
    data[positions[10] + 70] ^= 0x55  # inside the records of batch 10
    path.write_bytes(bytes(data))
    recovered = open_log(tmp_path, {"segment.bytes": 1 << 20, "index.interval.bytes": 100})
    assert recovered.log_end_offset == 10
    assert [r.offset for r in read_all(recovered)] == list(range(10))


def test_corrupt_earlier_segment_with_recovery_point(tmp_path):
    log = open_log(tmp_path, {"segment.bytes": 1000})
    for _ in range(30):
        log.append_as_leader(batch(1, size=100), leader_epoch=0)
    segments = log.segments
    assert len(segments) >= 3
    _crash_copy(log)
    first = segments[0].path
    data = bytearray(first.read_bytes())
    data[-5] ^= 0xFF
    first.write_bytes(bytes(data))
    recovered = open_log(tmp_path, {"segment.bytes": 1000}, recovery_point=0)
    assert recovered.log_end_offset == segments[0].next_offset - 1
    assert len(recovered.segments) == 1


def test_missing_or_bad_indexes_rebuilt(tmp_path):
    config = {"segment.bytes": 2000, "index.interval.bytes": 100}
    log = open_log(tmp_path, config)
    for _ in range(50):
        log.append_as_leader(batch(2, size=60), leader_epoch=0)
    expected = [s.offset_index.entries() for s in log.segments]
    log.close()
    segs = sorted((tmp_path / "t-0").glob("*.index"))
    segs[0].unlink()
    segs[1].write_bytes(b"\x00" * 13)  # not a multiple of the entry size
    reopened = open_log(tmp_path, config)
    assert [s.offset_index.entries() for s in reopened.segments] == expected
    assert [r.offset for r in read_all(reopened)] == list(range(100))


def test_follower_append_and_truncate(tmp_path):
    leader = open_log(tmp_path, name="l-0")
    follower = open_log(tmp_path, name="f-0")
    for epoch in (1, 1, 2, 2, 3):
        leader.append_as_leader(batch(2), leader_epoch=epoch)
    follower.append_as_follower(leader.read(0, 1 << 20).read_bytes())
    assert follower.log_end_offset == 10
    assert follower.epoch_cache.entries == [(1, 0), (2, 4), (3, 8)]
    assert follower.end_offset_for_epoch(1) == (1, 4)
    assert follower.end_offset_for_epoch(2) == (2, 8)
    assert follower.end_offset_for_epoch(3) == (3, 10)
    assert follower.end_offset_for_epoch(0) == (0, 0)
    assert follower.end_offset_for_epoch(5) == (-1, -1)
    with pytest.raises(UnexpectedAppendOffsetError):
        follower.append_as_follower(leader.read(8, 1 << 20).read_bytes())
    follower.high_watermark = 9
    follower.truncate_to(6)
    assert follower.log_end_offset == 6 and follower.high_watermark == 6
    assert follower.epoch_cache.entries == [(1, 0), (2, 4)]
    assert follower.latest_epoch == 2
    follower.append_as_follower(leader.read(6, 1 << 20).read_bytes())
    assert [r.value for r in read_all(follower)] == [r.value for r in read_all(leader)]
    follower.truncate_fully_and_start_at(100)
    assert (follower.log_start_offset, follower.log_end_offset) == (100, 100)
    assert follower.latest_epoch == -1
    assert follower.append_as_leader(batch(1), leader_epoch=4).first_offset == 100


def test_truncate_across_segments_then_restart(tmp_path):
    log = open_log(tmp_path, {"segment.bytes": 500})
    for i in range(40):
        log.append_as_leader(batch(1, size=50), leader_epoch=i // 10)
    log.truncate_to(13)
    assert log.log_end_offset == 13
    assert log.end_offset_for_epoch(0) == (0, 10)
    assert log.end_offset_for_epoch(1) == (1, 13)
    log.close()
    log = open_log(tmp_path, {"segment.bytes": 500})
    assert log.log_end_offset == 13 and log.latest_epoch == 1
    assert [r.offset for r in read_all(log)] == list(range(13))


def test_high_watermark_never_above_leo(tmp_path):
    log = open_log(tmp_path)
    log.append_as_leader(batch(3), leader_epoch=0)
    log.high_watermark = 100
    assert log.high_watermark == 3


def test_retention_never_deletes_active_segment(tmp_path):
    log = open_log(tmp_path, {"segment.bytes": 600, "retention.ms": 1000})
    for _ in range(20):
        log.append_as_leader(batch(1, ts=1000, size=100), leader_epoch=0)
    log.high_watermark = log.log_end_offset
    count = len(log.segments)
    deleted = log.enforce_retention(now_ms=10**12)
    assert deleted == count - 1
    assert len(log.segments) == 1 and log.active_segment.size > 0
    assert log.log_start_offset == log.active_segment.base_offset
    assert log.enforce_retention(now_ms=10**13) == 0
    with pytest.raises(OffsetOutOfRangeError):
        log.read(0, 100)


def test_retention_bytes_and_high_watermark(tmp_path):
    log = open_log(tmp_path, {"segment.bytes": 600, "retention.bytes": 1300})
    for _ in range(30):
        log.append_as_leader(batch(1, size=100), leader_epoch=0)
    assert log.enforce_retention(now_ms=0) == 0  # nothing below the high watermark
    log.high_watermark = log.log_end_offset
    log.enforce_retention(now_ms=0)
    assert log.size_bytes - log.segments[0].size < 1300 <= log.size_bytes + 600
    compact = open_log(tmp_path, {"segment.bytes": 600, "retention.bytes": 1,
                                  "cleanup.policy": ["compact"]}, name="c-0")
    for _ in range(30):
        compact.append_as_leader(batch(1, size=100), leader_epoch=0)
    compact.high_watermark = compact.log_end_offset
    assert compact.enforce_retention(now_ms=0) == 0  # no delete policy


def test_delete_records_before(tmp_path):
    log = open_log(tmp_path, {"segment.bytes": 600})
    for _ in range(20):
        log.append_as_leader(batch(1, size=100), leader_epoch=0)
    with pytest.raises(OffsetOutOfRangeError):
        log.delete_records_before(5)  # above the high watermark (0)
    log.high_watermark = 20
    before = len(log.segments)
    assert log.delete_records_before(9) == 9
    assert log.log_start_offset == 9 and len(log.segments) < before
    assert read_all(log)[0].offset == 9
    with pytest.raises(OffsetOutOfRangeError):
        log.read(8, 100)
    assert log.delete_records_before(3) == 9  # never moves back


def test_offset_for_timestamp(tmp_path):
    log = open_log(tmp_path, {"segment.bytes": 800, "index.interval.bytes": 100})
    for i in range(40):
        log.append_as_leader(
            build_batch([(b"k", b"v" * 30, [])] * 2, timestamp_ms=1000 + 10 * i),
            leader_epoch=i // 20)
    assert log.offset_for_timestamp(1000) == (0, 1000, 0)
    assert log.offset_for_timestamp(1005) == (2, 1010, 0)
    assert log.offset_for_timestamp(1200) == (40, 1200, 1)
    assert log.offset_for_timestamp(5000) is None
    assert log.offset_for_timestamp(-1) == (80, -1, 1)
    assert log.offset_for_timestamp(-2) == (0, -1, 0)
    assert log.offset_for_timestamp(-3) == (78, 1390, 1)  # first record with the max
    for ts in range(990, 1400, 7):
        expected = next(((o, t) for o, t in ((2 * i, 1000 + 10 * i) for i in range(40))
                         if t >= ts), None)
        got = log.offset_for_timestamp(ts)
        assert (got[:2] if got else None) == expected


def test_segment_ms_roll(tmp_path):
    log = open_log(tmp_path, {"segment.ms": 100})
    log.append_as_leader(batch(1, ts=1000), leader_epoch=0)
    log.append_as_leader(batch(1, ts=1050), leader_epoch=0)
    assert len(log.segments) == 1
    log.append_as_leader(batch(1, ts=1200), leader_epoch=0)
    assert len(log.segments) == 2 and log.active_segment.base_offset == 2


def test_flush_messages_moves_recovery_point(tmp_path):
    log = open_log(tmp_path, {"flush.messages": 5})
    for _ in range(4):
        log.append_as_leader(batch(1), leader_epoch=0)
    assert log.recovery_point == 0
    log.append_as_leader(batch(1), leader_epoch=0)
    assert log.recovery_point == 5
    log2 = open_log(tmp_path, {"flush.ms": 0}, name="u-0")
    log2.append_as_leader(batch(1), leader_epoch=0)
    assert log2.maybe_flush(now_ms=10**13) and log2.recovery_point == 1


def test_roll_flushes_in_background(tmp_path):
    log = open_log(tmp_path, {"segment.bytes": 500})
    for _ in range(10):
        log.append_as_leader(batch(1, size=100), leader_epoch=0)
    log._wait_flushes()
    assert log.recovery_point == log.active_segment.base_offset > 0


def test_closed_log_refuses(tmp_path):
    from core.common.errors import KafkaStorageError

    log = open_log(tmp_path)
    log.close()
    with pytest.raises(KafkaStorageError):
        log.append_as_leader(batch(1), leader_epoch=0)
    assert not log.is_offline


@FAST
@given(sizes=st.lists(st.integers(1, 300), min_size=1, max_size=40),
       max_bytes=st.integers(0, 2000), hw=st.integers(0, 200))
def test_fetch_slice_next_offset(tmp_path_factory, sizes, max_bytes, hw):
    log = open_log(tmp_path_factory.mktemp("n"), {"segment.bytes": 2500,
                                                  "index.interval.bytes": 150})
    for size in sizes:
        log.append_as_leader(batch(1 + size % 3, size=size), leader_epoch=0)
    log.high_watermark = hw
    offset = 0
    seen = []
    while offset < log.high_watermark:
        piece = log.read(offset, max_bytes, max_offset=log.high_watermark)
        if not piece.size:
            break
        headers = validate_batches(piece.read_bytes())
        assert piece.first_offset == headers[0].base_offset
        assert piece.next_offset == headers[-1].next_offset
        seen.extend(h.base_offset for h in headers)
        offset = piece.next_offset
    expected = [p_h[1].base_offset for s in log.segments for p_h in s.batches()
                if p_h[1].last_offset < log.high_watermark]
    assert seen == expected
