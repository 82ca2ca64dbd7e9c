"""Raft snapshots (KIP-630): file format, atomic writes, corruption, log prefix deletion."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.raft.file_log import FileLog
from core.raft.log import LogEntry, MemoryLog
from core.raft.snapshot import (
    FileSnapshotStore,
    MemorySnapshotStore,
    SnapshotCorruptError,
    SnapshotId,
    decode_snapshot,
    encode_snapshot,
    file_name,
)

RECORDS = [f"record-{i}".encode() * (1 + i % 7) for i in range(2500)]


def test_encode_decode_round_trip_in_batches() -> None:
    sid = SnapshotId(120, 4)
    data = encode_snapshot(sid, RECORDS)
    assert decode_snapshot(data, sid) == RECORDS
    assert decode_snapshot(encode_snapshot(sid, []), sid) == []
    with pytest.raises(SnapshotCorruptError):
        decode_snapshot(data, SnapshotId(121, 4))  # the footer names the snapshot


@pytest.mark.parametrize("damage", ["flip", "truncate", "drop_footer", "empty"])
def test_damaged_snapshot_is_refused(damage: str) -> None:
    sid = SnapshotId(10, 1)
    data = bytearray(encode_snapshot(sid, RECORDS[:50]))
    if damage == "flip":
        data[len(data) // 2] ^= 0x40
    elif damage == "truncate":
        del data[-7:]
    elif damage == "drop_footer":
        data = bytearray(encode_snapshot(sid, RECORDS[:50])[:-80])
    else:
        data = bytearray()
    with pytest.raises(SnapshotCorruptError):
        decode_snapshot(bytes(data), sid)


def test_file_store_names_files_as_kafka_and_keeps_a_few(tmp_path: Path) -> None:
    store = FileSnapshotStore(tmp_path, retain=2, fsync=False)
    assert store.latest() is None
    for end in (10, 20, 30):
        store.write(SnapshotId(end, 2), RECORDS[:end])
    assert file_name(SnapshotId(30, 2)) == "00000000000000000030-0000000002.checkpoint"
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [file_name(SnapshotId(20, 2)), file_name(SnapshotId(30, 2))]
    assert store.latest() == SnapshotId(30, 2)
    assert store.read_records(SnapshotId(30, 2)) == RECORDS[:30]
    # a snapshot a follower is downloading survives retention
    store.write(SnapshotId(40, 3), RECORDS[:40], keep={SnapshotId(20, 2)})
    assert store.ids() == [SnapshotId(20, 2), SnapshotId(30, 2), SnapshotId(40, 3)]
    reopened = FileSnapshotStore(tmp_path, retain=2, fsync=False)
    assert reopened.latest() == SnapshotId(40, 3)
    size = reopened.size(SnapshotId(40, 3))
    assert size is not None
    chunks = b"".join(reopened.read_chunk(SnapshotId(40, 3), pos, 100)
                      for pos in range(0, size, 100))
    assert decode_snapshot(chunks, SnapshotId(40, 3)) == RECORDS[:40]


def test_corrupt_newest_snapshot_is_skipped_on_open(tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    store = FileSnapshotStore(tmp_path, fsync=False)
    store.write(SnapshotId(10, 1), RECORDS[:10])
    store.write(SnapshotId(20, 1), RECORDS[:20])
    newest = tmp_path / file_name(SnapshotId(20, 1))
    data = bytearray(newest.read_bytes())
    data[100] ^= 0xFF
    newest.write_bytes(bytes(data))
    (tmp_path / "00000000000000000030-0000000001.checkpoint.part").write_bytes(b"torn")
    with caplog.at_level("ERROR"):
        reopened = FileSnapshotStore(tmp_path, fsync=False)
    assert reopened.latest() == SnapshotId(10, 1)
    assert "corrupt metadata snapshot" in caplog.text
    assert not newest.exists() and newest.with_name(newest.name + ".corrupt").exists()
    assert not list(tmp_path.glob("*.part"))


def test_download_validates_before_it_becomes_visible(tmp_path: Path) -> None:
    for store in (FileSnapshotStore(tmp_path, fsync=False), MemorySnapshotStore()):
        sid = SnapshotId(50, 3)
        data = encode_snapshot(sid, RECORDS[:50])
        bad = store.begin_download(sid)
        bad.append(data[:-1])
        assert not bad.complete() and store.latest() is None
        good = store.begin_download(sid)
        for pos in range(0, len(data), 64):
            good.append(data[pos:pos + 64])
        assert good.size == len(data)
        assert good.complete() and store.latest() == sid
        assert store.read_records(sid) == RECORDS[:50]


@pytest.fixture(params=["memory", "file"])
def make_log(request: pytest.FixtureRequest, tmp_path: Path):
    def make():
        if request.param == "memory":
            return MemoryLog()
        return FileLog(tmp_path / "raft.log", fsync=False)
    return make


def test_delete_before_moves_the_log_start_and_survives_reopen(make_log, tmp_path: Path) -> None:
    log = make_log()
    log.append([LogEntry(1, b"lc", control=True), LogEntry(1, b"a"), LogEntry(1, b"b")])
    log.append([LogEntry(3, b"c"), LogEntry(3, b"d")])
    log.delete_before(4)
    assert (log.start_offset(), log.end_offset(), log.last_epoch()) == (4, 5, 3)
    assert log.epoch_at(3) == 3 and log.epoch_at(2) is None and log.epoch_at(4) == 3
    assert [e.data for e in log.read(4, 10)] == [b"d"]
    with pytest.raises(ValueError):
        log.read(2, 1)
    assert log.end_offset_for_epoch(3) == (3, 5)
    assert log.end_offset_for_epoch(1) == (0, 0)  # older than the snapshot: unknown
    log.append([LogEntry(5, b"e")])
    assert log.end_offset_for_epoch(4) == (3, 5)
    if isinstance(log, FileLog):
        log.close()
        log = FileLog(tmp_path / "raft.log", fsync=False)
        assert (log.start_offset(), log.end_offset(), log.last_epoch()) == (4, 6, 5)
        assert [e.data for e in log.read(4, 10)] == [b"d", b"e"]
    log.truncate(4)
    assert (log.start_offset(), log.end_offset(), log.last_epoch()) == (4, 4, 3)


def test_truncate_fully_and_start_at_snapshot(make_log, tmp_path: Path) -> None:
    log = make_log()
    log.append([LogEntry(1, b"x"), LogEntry(2, b"y")])
    log.truncate_fully_and_start_at(40, 6)
    assert (log.start_offset(), log.end_offset(), log.last_epoch()) == (40, 40, 6)
    assert log.epoch_at(39) == 6 and log.end_offset_for_epoch(6) == (6, 40)
    assert log.end_offset_for_epoch(7) == (6, 40)
    log.append([LogEntry(7, b"z")])
    assert log.append([LogEntry(7, b"w")]) == 41
    assert log.end_offset_for_epoch(6) == (6, 40) and log.end_offset_for_epoch(7) == (7, 42)
    if isinstance(log, FileLog):
        log.close()
        log = FileLog(tmp_path / "raft.log", fsync=False)
        assert (log.start_offset(), log.end_offset(), log.last_epoch()) == (40, 42, 7)
        assert log.end_offset_for_epoch(6) == (6, 40)


def _node(log: MemoryLog, store: MemorySnapshotStore, node_id: int = 1):
    import random

    from core.raft.node import RaftNode
    from core.raft.store import MemoryQuorumStore
    return RaftNode(node_id, [1, 2, 3], log, MemoryQuorumStore(), rng=random.Random(1),
                    snapshots=store)


def _log(epochs: list[int]) -> MemoryLog:
    log = MemoryLog()
    log.append([LogEntry(e, b"x") for e in epochs])
    return log


@pytest.mark.parametrize(("snapshot", "log_kept"), [
    (SnapshotId(6, 1), True),  # the log continues the snapshot: replay only after it
    (SnapshotId(6, 2), False),  # another epoch at 5: our tail diverged, reset to the snapshot
    (SnapshotId(14, 2), False),  # crash after a fetched snapshot froze, before the truncation
])
def test_restart_starts_from_the_latest_snapshot(snapshot: SnapshotId, log_kept: bool) -> None:
    log = _log([1] * 10)
    store = MemorySnapshotStore()
    store.write(snapshot, [b"state"])
    node = _node(log, store)
    assert node.poll_snapshot() == snapshot and node.poll_snapshot() is None
    assert node.applied_offset == node.high_watermark == snapshot.end_offset
    if log_kept:
        assert (log.start_offset(), log.end_offset()) == (0, 10)
    else:
        assert (log.start_offset(), log.end_offset()) == (snapshot.end_offset,) * 2
        assert log.last_epoch() == snapshot.epoch


@pytest.mark.parametrize("older", [None, SnapshotId(3, 1)])
def test_voter_whose_log_start_snapshot_is_lost_refuses_to_start(older) -> None:
    """The entries below the log start are gone (the snapshot at 6 was corrupt and skipped;
    maybe an older one is left): a voter must not start over, it may have acknowledged them."""
    from core.raft.node import LostLogError

    log = _log([1] * 10)
    log.delete_before(6)
    store = MemorySnapshotStore()
    if older is not None:
        store.write(older, [b"older state"])
    with pytest.raises(LostLogError, match="voter 1 cannot start: its log starts at 6"):
        _node(log, store)
    assert (log.start_offset(), log.end_offset()) == (6, 10), "its files are left alone"


@pytest.mark.parametrize("older", [None, SnapshotId(3, 1)])
def test_observer_whose_log_start_snapshot_is_lost_starts_over(older) -> None:
    log = _log([1] * 10)
    log.delete_before(6)
    store = MemorySnapshotStore()
    if older is not None:
        store.write(older, [b"older state"])
    node = _node(log, store, node_id=4)  # not a voter: nothing depends on its log
    assert node.poll_snapshot() == older
    start = 0 if older is None else older.end_offset
    assert (log.start_offset(), log.end_offset(), node.applied_offset) == (start, start, start)


def test_create_snapshot_deletes_the_log_before_it() -> None:
    log = _log([1] * 10)
    store = MemorySnapshotStore()
    node = _node(log, store)
    node._hw = 8  # committed up to 8 (as a leader would have computed)
    node.poll_committed()
    with pytest.raises(ValueError):
        node.create_snapshot(9, [b"s"])  # not applied/committed yet
    sid = node.create_snapshot(8, [b"s"])
    assert sid == SnapshotId(8, 1) and store.latest() == sid
    assert (log.start_offset(), log.end_offset()) == (8, 10)
    with pytest.raises(ValueError):
        node.create_snapshot(8, [b"s"])  # not after the latest
