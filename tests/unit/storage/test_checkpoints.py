"""Checkpoint files: Kafka's text format, atomic replacement; LogManager and offline logs."""

from __future__ import annotations

import errno
import os

import pytest

from core.common.errors import KafkaStorageError
from core.common.types import TopicPartition
from core.storage import checkpoints
from core.storage.checkpoints import (
    read_epoch_checkpoint,
    read_offset_checkpoint,
    write_epoch_checkpoint,
    write_offset_checkpoint,
)
from core.storage.log_manager import LogManager

from .helpers import SMALL, batch


def test_offset_checkpoint_format(tmp_path):
    path = tmp_path / "replication-offset-checkpoint"
    offsets = {TopicPartition("a", 0): 5, TopicPartition("b-c", 3): 1 << 40}
    write_offset_checkpoint(path, offsets)
    assert path.read_text() == "0\n2\na 0 5\nb-c 3 1099511627776\n"
    assert read_offset_checkpoint(path) == offsets
    assert read_offset_checkpoint(tmp_path / "absent") == {}
    write_epoch_checkpoint(tmp_path / "leader-epoch-checkpoint", [(0, 0), (3, 17)])
    assert (tmp_path / "leader-epoch-checkpoint").read_text() == "0\n2\n0 0\n3 17\n"
    assert read_epoch_checkpoint(tmp_path / "leader-epoch-checkpoint") == [(0, 0), (3, 17)]


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "cp"
    write_offset_checkpoint(path, {TopicPartition("a", 0): 1})

    def crash(*_args):
        raise OSError(errno.EIO, "crash before rename")

    monkeypatch.setattr(checkpoints.os, "replace", crash)
    with pytest.raises(OSError):
        write_offset_checkpoint(path, {TopicPartition("a", 0): 2})
    assert read_offset_checkpoint(path) == {TopicPartition("a", 0): 1}
    # A torn temporary file left by the crash never shadows the real one.
    (tmp_path / "cp.tmp").write_text("0\n5\ngarb")
    assert read_offset_checkpoint(path) == {TopicPartition("a", 0): 1}


def test_malformed_checkpoint_rejected(tmp_path):
    (tmp_path / "cp").write_text("0\n3\na 0 1\n")
    with pytest.raises(ValueError):
        read_offset_checkpoint(tmp_path / "cp")


def test_log_manager_load_checkpoint_and_restart(tmp_path):
    manager = LogManager(tmp_path, SMALL)
    a = manager.get_or_create(TopicPartition("a", 0), SMALL)
    b = manager.get_or_create(TopicPartition("b", 1), SMALL)
    for _ in range(30):
        a.append_as_leader(batch(2, size=80), leader_epoch=3)
    b.append_as_leader(batch(1), leader_epoch=0)
    a.high_watermark = 40
    a.delete_records_before(10)
    manager.checkpoint()
    assert read_offset_checkpoint(tmp_path / "replication-offset-checkpoint") == {
        TopicPartition("a", 0): 40, TopicPartition("b", 1): 0}
    manager.close()
    assert (tmp_path / ".kafka_cleanshutdown").exists()
    assert read_offset_checkpoint(tmp_path / "recovery-point-offset-checkpoint")[
        TopicPartition("a", 0)] == 60

    again = LogManager(tmp_path, SMALL)
    logs = again.load_all()
    assert set(logs) == {TopicPartition("a", 0), TopicPartition("b", 1)}
    a2 = again.get(TopicPartition("a", 0))
    assert (a2.log_start_offset, a2.high_watermark, a2.log_end_offset) == (10, 40, 60)
    assert a2.latest_epoch == 3
    assert again.get(TopicPartition("zz", 0)) is None
    again.delete(TopicPartition("b", 1))
    assert not (tmp_path / "b-1").exists() and again.get(TopicPartition("b", 1)) is None
    stats = again.run_maintenance(now_ms=0)
    assert stats["errors"] == 0
    again.close()


def test_full_disk_takes_only_that_partition_offline(tmp_path, monkeypatch):
    manager = LogManager(tmp_path, SMALL)
    bad = manager.get_or_create(TopicPartition("bad", 0))
    good = manager.get_or_create(TopicPartition("good", 0))
    bad.append_as_leader(batch(1), leader_epoch=0)
    real_write, real_writev = os.write, os.writev
    bad_fd = bad.active_segment.fd

    def full(fd):
        if fd == bad_fd:
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", lambda fd, data: full(fd) or real_write(fd, data))
    monkeypatch.setattr(os, "writev", lambda fd, bufs: full(fd) or real_writev(fd, bufs))
    with pytest.raises(KafkaStorageError):
        bad.append_as_leader(batch(1), leader_epoch=0)
    with pytest.raises(KafkaStorageError):
        bad.read(0, 100)  # offline from then on
    assert good.append_as_leader(batch(1), leader_epoch=0).first_offset == 0
    assert manager.offline_partitions() == {TopicPartition("bad", 0)}
    manager.checkpoint()
    assert TopicPartition("bad", 0) not in read_offset_checkpoint(
        tmp_path / "replication-offset-checkpoint")


def test_unreadable_segment_offline_at_load(tmp_path):
    manager = LogManager(tmp_path, SMALL)
    log = manager.get_or_create(TopicPartition("x", 0))
    log.append_as_leader(batch(1), leader_epoch=0)
    manager.get_or_create(TopicPartition("y", 0)).append_as_leader(batch(1), leader_epoch=0)
    manager.close()
    segment = tmp_path / "x-0" / "00000000000000000000.log"
    segment.unlink()
    segment.mkdir()  # opening it fails with an OSError (a directory, not a file)
    again = LogManager(tmp_path, SMALL)
    again.load_all()
    assert again.offline_partitions() == {TopicPartition("x", 0)}
    with pytest.raises(KafkaStorageError):
        again.get(TopicPartition("x", 0)).read(0, 10)
    assert again.get(TopicPartition("y", 0)).log_end_offset == 1
