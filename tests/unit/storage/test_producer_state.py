"""Idempotent producers: duplicates, sequences, epochs, snapshots, transactions hook."""

from __future__ import annotations

import pytest

from core.common.errors import InvalidProducerEpochError, OutOfOrderSequenceError
from core.records.batch import build_batch, build_control_batch

from .helpers import open_log


def pbatch(seq: int, n: int = 1, *, pid: int = 7, epoch: int = 0, txn: bool = False) -> bytes:
    return build_batch([(b"k", b"v%d" % (seq + i), []) for i in range(n)], timestamp_ms=1000,
                       producer_id=pid, producer_epoch=epoch, base_sequence=seq,
                       is_transactional=txn)


def test_duplicate_returns_original_offsets(tmp_path):
    log = open_log(tmp_path)
    first = log.append_as_leader(pbatch(0, 3), leader_epoch=0)
    log.append_as_leader(build_batch([(None, b"other", [])], timestamp_ms=1), leader_epoch=0)
    second = log.append_as_leader(pbatch(3, 2), leader_epoch=0)
    size = log.size_bytes
    for original, payload in ((first, pbatch(0, 3)), (second, pbatch(3, 2))):
        again = log.append_as_leader(payload, leader_epoch=0)
        assert again.duplicate
        assert (again.first_offset, again.last_offset) == (original.first_offset,
                                                            original.last_offset)
    assert log.size_bytes == size and log.log_end_offset == 6


def test_only_last_five_batches_are_deduplicated(tmp_path):
    log = open_log(tmp_path)
    for seq in range(7):
        log.append_as_leader(pbatch(seq), leader_epoch=0)
    assert log.append_as_leader(pbatch(2), leader_epoch=0).duplicate
    with pytest.raises(OutOfOrderSequenceError):
        log.append_as_leader(pbatch(1), leader_epoch=0)


def test_sequence_and_epoch_checks(tmp_path):
    log = open_log(tmp_path)
    log.append_as_leader(pbatch(5, 2), leader_epoch=0)  # unknown producer: any sequence
    with pytest.raises(OutOfOrderSequenceError):
        log.append_as_leader(pbatch(8), leader_epoch=0)  # gap
    log.append_as_leader(pbatch(7), leader_epoch=0)
    with pytest.raises(OutOfOrderSequenceError):
        log.append_as_leader(pbatch(3, epoch=1), leader_epoch=0)  # new epoch must start at 0
    log.append_as_leader(pbatch(0, epoch=1), leader_epoch=0)
    with pytest.raises(InvalidProducerEpochError):
        log.append_as_leader(pbatch(8, epoch=0), leader_epoch=0)  # fenced old epoch
    assert log.log_end_offset == 4
    # Two batches of one payload are checked in order.
    log.append_as_leader(pbatch(1, epoch=1) + pbatch(2, epoch=1), leader_epoch=0)
    with pytest.raises(OutOfOrderSequenceError):
        log.append_as_leader(pbatch(3, epoch=1) + pbatch(5, epoch=1), leader_epoch=0)
    assert log.log_end_offset == 6


def test_sequence_wraps(tmp_path):
    log = open_log(tmp_path)
    log.append_as_leader(pbatch(2**31 - 2, 2), leader_epoch=0)
    log.append_as_leader(pbatch(0), leader_epoch=0)


@pytest.mark.parametrize("drop_snapshots", [False, True])
def test_idempotence_survives_restart(tmp_path, drop_snapshots):
    config = {"segment.bytes": 600}
    log = open_log(tmp_path, config)
    results = [log.append_as_leader(pbatch(seq * 2, 2), leader_epoch=0) for seq in range(20)]
    assert len(log.segments) > 2
    log.close()
    if drop_snapshots:
        for path in (tmp_path / "t-0").glob("*.snapshot"):
            path.unlink()
    log = open_log(tmp_path, config)
    again = log.append_as_leader(pbatch(38, 2), leader_epoch=0)
    assert again.duplicate and again.first_offset == results[-1].first_offset
    with pytest.raises(OutOfOrderSequenceError):
        log.append_as_leader(pbatch(41), leader_epoch=0)
    assert log.append_as_leader(pbatch(40), leader_epoch=0).first_offset == 40


def test_state_after_unclean_restart_and_truncation(tmp_path):
    log = open_log(tmp_path, {"segment.bytes": 600})
    for seq in range(10):
        log.append_as_leader(pbatch(seq), leader_epoch=0)
    log.truncate_to(6)
    assert log.producer_state.producers[7].last_seq == 5
    log.append_as_leader(pbatch(6), leader_epoch=0)
    reopened = open_log(tmp_path, {"segment.bytes": 600})  # no close: crash
    assert reopened.producer_state.producers[7].last_seq == 6
    assert reopened.append_as_leader(pbatch(6), leader_epoch=0).duplicate


def test_transaction_hook_and_last_stable_offset(tmp_path):
    log = open_log(tmp_path)
    log.append_as_leader(build_batch([(b"a", b"1", [])], timestamp_ms=1), leader_epoch=0)
    log.append_as_leader(pbatch(0, 2, txn=True), leader_epoch=0)
    log.append_as_leader(pbatch(2, 1, txn=True), leader_epoch=0)
    log.high_watermark = log.log_end_offset
    assert log.producer_state.first_unstable_offset == 1
    assert log.last_stable_offset == 1
    marker = build_control_batch(commit=True, producer_id=7, producer_epoch=0,
                                 coordinator_epoch=0, timestamp_ms=2)
    log.append_as_leader(marker, leader_epoch=0, origin="coordinator")
    log.high_watermark = log.log_end_offset
    assert log.producer_state.first_unstable_offset is None
    assert log.last_stable_offset == log.log_end_offset == 5
