"""The aborted-transaction index and the log's LSO / aborted_transactions."""

from __future__ import annotations

from core.records.batch import build_batch, build_control_batch
from core.storage.log import Log
from core.storage.transaction_index import ABORT, COMMIT, control_type

CONFIG = {"segment.bytes": 4096, "index.interval.bytes": 256}


def txn_batch(pid: int, seq: int, n: int = 1, epoch: int = 0) -> bytes:
    return build_batch([(b"k", b"v" * 20, []) for _ in range(n)], timestamp_ms=1000,
                       producer_id=pid, producer_epoch=epoch, base_sequence=seq,
                       is_transactional=True)


def marker(pid: int, commit: bool, epoch: int = 0) -> bytes:
    return build_control_batch(commit=commit, producer_id=pid, producer_epoch=epoch,
                               coordinator_epoch=0, timestamp_ms=1000)


def plain() -> bytes:
    return build_batch([(b"k", b"plain", [])], timestamp_ms=1000)


def open_log(tmp_path, **kw) -> Log:
    return Log(tmp_path / "t-0", dict(CONFIG), **kw)


def test_control_type() -> None:
    assert control_type(marker(1, True)) == COMMIT
    assert control_type(marker(1, False)) == ABORT
    assert control_type(b"") is None


def test_lso_and_aborted_index(tmp_path) -> None:
    log = open_log(tmp_path)
    log.append_as_leader(plain(), leader_epoch=0)                       # 0
    log.append_as_leader(txn_batch(7, 0, 2), leader_epoch=0)            # 1-2
    log.append_as_leader(txn_batch(8, 0), leader_epoch=0)               # 3
    log.high_watermark = log.log_end_offset
    assert log.last_stable_offset == 1
    log.append_as_leader(marker(7, False), leader_epoch=0, origin="coordinator")  # 4
    log.high_watermark = log.log_end_offset
    assert log.last_stable_offset == 3
    log.append_as_leader(marker(8, True), leader_epoch=0, origin="coordinator")   # 5
    log.high_watermark = log.log_end_offset
    assert log.last_stable_offset == 6
    assert log.aborted_transactions(0, 6) == [(7, 1)]
    assert log.aborted_transactions(5, 6) == []
    assert log.aborted_transactions(0, 1) == []
    log.close()
    again = open_log(tmp_path)
    assert again.aborted_transactions(0, 6) == [(7, 1)]
    again.close()


def test_index_rebuilt_after_unclean_shutdown(tmp_path) -> None:
    log = open_log(tmp_path)
    for i in range(30):  # several segments
        log.append_as_leader(txn_batch(5, i), leader_epoch=0)
        log.append_as_leader(marker(5, i % 2 == 0), leader_epoch=0, origin="coordinator")
    expected = log.aborted_transactions(0, log.log_end_offset)
    assert len(expected) == 15
    assert len(log.segments) > 1
    # simulate a crash: the index files are lost, no clean shutdown marker, no snapshots
    for f in (tmp_path / "t-0").iterdir():
        if f.suffix in (".txnindex", ".snapshot"):
            f.unlink()
    log2 = Log(tmp_path / "t-0", dict(CONFIG), clean_shutdown=False, recovery_point=0)
    assert log2.aborted_transactions(0, log2.log_end_offset) == expected
    log2.truncate_to(30)
    assert all(first < 30 for _, first in log2.aborted_transactions(0, 100))
    assert len(log2.aborted_transactions(0, 100)) == 7
    log2.close()


def test_follower_indexes_markers(tmp_path) -> None:
    leader = Log(tmp_path / "a-0", dict(CONFIG))
    follower = Log(tmp_path / "b-0", dict(CONFIG))
    leader.append_as_leader(txn_batch(9, 0, 3), leader_epoch=0)
    leader.append_as_leader(marker(9, False), leader_epoch=0, origin="coordinator")
    data = leader.read(0, 100000).read_bytes()
    follower.append_as_follower(data)
    assert follower.aborted_transactions(0, 10) == [(9, 0)]
    assert follower.producer_state.first_unstable_offset is None
    leader.close()
    follower.close()


def test_coordinator_origin_skips_sequence_checks(tmp_path) -> None:
    log = open_log(tmp_path)
    for _ in range(3):  # transactional offset commits always carry sequence -1
        log.append_as_leader(txn_batch(3, -1), leader_epoch=0, origin="coordinator")
        log.append_as_leader(marker(3, True), leader_epoch=0, origin="coordinator")
    assert log.log_end_offset == 6
    log.close()
