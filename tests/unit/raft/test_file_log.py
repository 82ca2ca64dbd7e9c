"""FileLog: durability, torn-tail recovery, truncation, epoch queries."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.raft.file_log import FileLog
from core.raft.log import LogEntry, MemoryLog


def entries(epoch: int, *datas: bytes) -> list[LogEntry]:
    return [LogEntry(epoch, d) for d in datas]


@pytest.fixture(params=["memory", "file"])
def make_log(request: pytest.FixtureRequest, tmp_path: Path):
    def make():
        if request.param == "memory":
            return MemoryLog()
        return FileLog(tmp_path / "raft.log", fsync=False)
    return make


def test_append_read_and_epochs(make_log) -> None:
    log = make_log()
    assert (log.end_offset(), log.last_epoch()) == (0, 0)
    assert log.append([LogEntry(1, b"lc", control=True), *entries(1, b"a", b"b")]) == 0
    assert log.append(entries(3, b"c")) == 3
    assert log.end_offset() == 4 and log.last_epoch() == 3
    assert [e.data for e in log.read(1, 2)] == [b"a", b"b"]
    assert log.read(0, 1)[0].control is True
    assert log.epoch_at(2) == 1 and log.epoch_at(3) == 3 and log.epoch_at(4) is None
    assert log.end_offset_for_epoch(1) == (1, 3)
    assert log.end_offset_for_epoch(2) == (1, 3)  # largest epoch <= 2 is 1
    assert log.end_offset_for_epoch(3) == (3, 4)
    assert log.end_offset_for_epoch(9) == (3, 4)
    assert log.end_offset_for_epoch(0) == (0, 0)


def test_truncate(make_log) -> None:
    log = make_log()
    log.append(entries(1, b"a", b"b"))
    log.append(entries(2, b"c", b"d"))
    log.truncate(3)
    assert log.end_offset() == 3 and log.last_epoch() == 2
    log.truncate(2)
    assert log.end_offset() == 2 and log.last_epoch() == 1
    assert log.end_offset_for_epoch(2) == (1, 2)
    log.truncate(10)  # past the end: no-op
    assert log.end_offset() == 2
    log.append(entries(4, b"e"))
    assert [(e.epoch, e.data) for e in log.read(0, 10)] == [(1, b"a"), (1, b"b"), (4, b"e")]


def test_epochs_never_go_back(make_log) -> None:
    log = make_log()
    log.append(entries(2, b"a"))
    with pytest.raises(ValueError):
        log.append(entries(1, b"b"))


def test_reopen_recovers_everything(tmp_path: Path) -> None:
    path = tmp_path / "raft.log"
    log = FileLog(path)
    log.append([LogEntry(1, b"", control=True), *entries(1, b"x" * 1000, b"y")])
    log.truncate(2)
    log.append(entries(2, b"z"))
    log.close()
    again = FileLog(path)
    assert again.recovered_truncated_bytes == 0
    assert [(e.epoch, e.data, e.control) for e in again.read(0, 10)] == [
        (1, b"", True), (1, b"x" * 1000, False), (2, b"z", False)]
    assert again.end_offset_for_epoch(1) == (1, 2)


@pytest.mark.parametrize("cut", [1, 4, 7, 12, 20])
def test_torn_tail_is_truncated(tmp_path: Path, cut: int) -> None:
    path = tmp_path / "raft.log"
    log = FileLog(path)
    log.append(entries(1, b"first", b"second"))
    good_size = path.stat().st_size
    log.append(entries(1, b"third-entry-payload"))
    log.close()
    full = path.read_bytes()
    path.write_bytes(full[:good_size + cut])  # a crash in the middle of the last write
    recovered = FileLog(path)
    assert recovered.end_offset() == 2
    assert recovered.recovered_truncated_bytes == cut
    assert path.stat().st_size == good_size
    recovered.append(entries(2, b"after"))
    recovered.close()
    assert [e.data for e in FileLog(path).read(0, 10)] == [b"first", b"second", b"after"]


def test_corrupt_record_ends_the_log(tmp_path: Path) -> None:
    path = tmp_path / "raft.log"
    log = FileLog(path)
    log.append(entries(1, b"aaaa"))
    first_size = path.stat().st_size
    log.append(entries(1, b"bbbb", b"cccc"))
    log.close()
    data = bytearray(path.read_bytes())
    data[first_size + 20] ^= 0xFF  # flip a byte inside the second record's body
    path.write_bytes(bytes(data))
    recovered = FileLog(path)
    assert [e.data for e in recovered.read(0, 10)] == [b"aaaa"]
    assert os.path.getsize(path) == first_size
