"""The offset and time indexes: entries survive flush + load, and a file that is not sane is
refused (recovery then rebuilds the index from the log)."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from core.storage.offset_index import OffsetIndex
from core.storage.time_index import TimeIndex

BASE = 1_000

growing_pairs = st.lists(
    st.tuples(st.integers(1, 1_000), st.integers(1, 1_000)), min_size=1, max_size=40
).map(lambda steps: [(sum(a for a, _ in steps[:i + 1]), sum(b for _, b in steps[:i + 1]))
                     for i in range(len(steps))])


@settings(max_examples=60, deadline=None)
@given(pairs=growing_pairs, flush_at=st.integers(0, 40))
def test_offset_index_round_trip(tmp_path_factory, pairs, flush_at):
    path = tmp_path_factory.mktemp("idx") / "0.index"
    index = OffsetIndex(path, BASE, 1 << 20)
    for i, (delta, position) in enumerate(pairs):
        index.append(BASE + delta, position)
        if i == flush_at:
            index.flush()  # flushing twice appends only the new entries
    index.flush()
    assert path.stat().st_size == 8 * len(pairs)
    loaded = OffsetIndex(path, BASE, 1 << 20)
    assert loaded.load(log_size=pairs[-1][1] + 1)
    assert loaded.entries() == [(BASE + d, p) for d, p in pairs]
    offset, position = pairs[len(pairs) // 2]
    assert loaded.lookup(BASE + offset) == (BASE + offset, position)
    assert loaded.lookup(BASE) == (BASE, 0)
    # a position at or past the log's end means the index is ahead of the log: refused
    assert not OffsetIndex(path, BASE, 1 << 20).load(log_size=pairs[-1][1])


@settings(max_examples=60, deadline=None)
@given(pairs=growing_pairs, cut=st.integers(1, 40))
def test_time_index_round_trip_and_truncation(tmp_path_factory, pairs, cut):
    path = tmp_path_factory.mktemp("idx") / "0.timeindex"
    index = TimeIndex(path, BASE, 1 << 20)
    for timestamp, delta in pairs:
        index.maybe_append(timestamp, BASE + delta)
    index.maybe_append(-1, BASE + pairs[-1][1] + 1)  # no timestamp: never an entry
    index.flush()
    cut = min(cut, len(pairs))
    index.truncate_to_offset(BASE + pairs[cut - 1][1])  # drops entry cut-1 and later
    kept = [(t, BASE + d) for t, d in pairs[:cut - 1]]
    assert index.entries() == kept
    loaded = TimeIndex(path, BASE, 1 << 20)
    assert loaded.load(next_offset=BASE + pairs[-1][1] + 1)
    assert loaded.entries() == kept
    assert loaded.lookup(-5) == (-1, BASE)


def test_files_that_are_not_sane_are_refused(tmp_path):
    path = tmp_path / "0.index"
    entry = struct.Struct(">ii")
    cases = {
        "partial entry": entry.pack(1, 10) + b"\0\0\0",
        "offsets do not grow": entry.pack(2, 10) + entry.pack(2, 20),
        "positions do not grow": entry.pack(1, 20) + entry.pack(2, 20),
        "negative relative offset": entry.pack(-1, 10),
    }
    for name, data in cases.items():
        path.write_bytes(data)
        index = OffsetIndex(path, BASE, 1 << 20)
        assert not index.load(log_size=1 << 20), name
        assert len(index) == 0, name
    assert not OffsetIndex(tmp_path / "missing.index", BASE, 1 << 20).load(log_size=100)


def test_full_index_and_duplicates_ignored(tmp_path):
    index = OffsetIndex(tmp_path / "0.index", BASE, max_index_bytes=16)  # room for 2 entries
    index.append(BASE + 1, 10)
    index.append(BASE + 1, 20)  # offset does not grow: ignored
    assert not index.is_full
    index.append(BASE + 2, 20)
    assert index.is_full and len(index) == 2
    assert index.last_offset == BASE + 2
