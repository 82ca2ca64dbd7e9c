"""Compaction keeps the last record of every key; tombstones expire; active segment untouched."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.records.batch import build_batch

from .helpers import open_log, read_all

COMPACT = {"cleanup.policy": ["compact"], "segment.bytes": 700, "index.interval.bytes": 100,
           "delete.retention.ms": 1000, "min.cleanable.dirty.ratio": 0.0}


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(st.tuples(st.integers(0, 6), st.one_of(st.none(), st.binary(max_size=30)),
                              st.integers(1, 3)), min_size=1, max_size=80),
       codec=st.sampled_from([0, 3, 4]))
def test_compaction_keeps_last_value_of_every_key(tmp_path_factory, ops, codec):
    log = open_log(tmp_path_factory.mktemp("c"), COMPACT)
    latest: dict[bytes, tuple[int, bytes | None]] = {}
    offset = 0
    for key_id, value, repeat in ops:
        key = b"key%d" % key_id
        records = [(key, value, [])] * repeat
        log.append_as_leader(build_batch(records, timestamp_ms=10_000, compression=codec),
                             leader_epoch=0)
        offset += repeat
        latest[key] = (offset - 1, value)
    before = [(r.offset, r.key, r.value) for r in read_all(log)]
    active_base = log.active_segment.base_offset
    active_bytes = log.active_segment.path.read_bytes()
    log.compact(now_ms=10_500)  # tombstones are younger than delete.retention.ms: kept
    after = [(r.offset, r.key, r.value) for r in read_all(log)]
    assert log.active_segment.path.read_bytes() == active_bytes
    # Everything in the active segment stays; below it, exactly the last record of each key
    # within the cleanable range (as Kafka: its offset map stops at the active segment).
    last_below = {k: o for o, k, _v in before if o < active_base}
    expected = [rec for rec in before if rec[0] >= active_base or last_below[rec[1]] == rec[0]]
    assert after == expected
    for key, (_off, value) in latest.items():
        assert [r for r in after if r[1] == key][-1][2] == value
    assert log.log_end_offset == offset
    # Later: tombstones (in cleaned segments) are removed.
    log.compact(now_ms=10**9, force=True)
    final = [(r.offset, r.key, r.value) for r in read_all(log)]
    assert all(v is not None for o, _k, v in final if o < active_base)
    assert all(last_below[k] == o for o, k, _v in final if o < active_base)


def test_compaction_survives_restart_and_keeps_offsets(tmp_path):
    log = open_log(tmp_path, COMPACT)
    for i in range(60):
        log.append_as_leader(build_batch([(b"k%d" % (i % 3), b"v%d" % i, [])],
                                         timestamp_ms=1), leader_epoch=0)
    removed = log.compact(now_ms=5)
    assert removed > 0
    kept = [(r.offset, r.value) for r in read_all(log)]
    log.close()
    reopened = open_log(tmp_path, COMPACT)
    assert [(r.offset, r.value) for r in read_all(reopened)] == kept
    assert reopened.log_end_offset == 60
    assert reopened.append_as_leader(build_batch([(b"x", b"y", [])], timestamp_ms=1),
                                     leader_epoch=0).first_offset == 60
    # Reading from a compacted-away offset returns the next batch.
    first_gap = next(o for o in range(60) if o not in {k[0] for k in kept})
    assert reopened.read(first_gap, 1000).size > 0


def test_delete_policy_log_is_not_compacted(tmp_path):
    log = open_log(tmp_path, {"segment.bytes": 500})
    for _ in range(30):
        log.append_as_leader(build_batch([(b"k", b"v", [])], timestamp_ms=1), leader_epoch=0)
    assert log.compact(now_ms=10) == 0
    assert len(read_all(log)) == 30
