"""LocalMetadataLog (`serve --brokers 1`) snapshots: the image is written as a KIP-630 snapshot
every snapshot_max_bytes, the log file is cut before it, and a start loads the newest snapshot
and replays only the entries after it. A lost snapshot at the log start stops the start."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from core.metadata.image import MetadataImage, image_records
from core.metadata.log import LocalMetadataLog
from core.metadata.records import (
    PartitionChanged,
    PartitionCreated,
    RegisterBroker,
    TopicCreated,
    UnfenceBroker,
    decode_record,
)
from core.raft.node import LostLogError
from core.raft.snapshot import FileSnapshotStore, SnapshotId, file_name


class Follower:
    """What the broker does with the log: fold every batch into one new image."""

    def __init__(self, log: LocalMetadataLog) -> None:
        self.image = MetadataImage()
        self.entries = 0
        self.batches = 0
        log.add_batch_listener(self.on_batch)

    def on_batch(self, entries) -> None:
        self.batches += 1
        self.entries += len(entries)
        self.image = self.image.apply_batch([decode_record(e) for _, e in entries],
                                            entries[-1][0])


def _open(path: Path, max_bytes: int) -> tuple[LocalMetadataLog, Follower]:
    holder: list[Follower] = []
    log = LocalMetadataLog(path, 1, snapshot_max_bytes=max_bytes,
                           image=lambda: holder[0].image, fsync=False)
    holder.append(Follower(log))
    log.replay()
    return log, holder[0]


def _topic_records(i: int) -> list[bytes]:
    name = f"topic-{i:04d}"
    return [r.encode() for r in (
        TopicCreated(name, f"id-{i}"),
        PartitionCreated(name, 0, [1], [1], 1),
        PartitionChanged(name, 0, isr=[1], leader=1))]


def _fill(log: LocalMetadataLog, topics: int) -> None:
    async def run() -> None:
        await log.append([RegisterBroker(1, "h", 9092, None, 1, "x").encode(),
                          UnfenceBroker(1, 1).encode()])
        for i in range(topics):
            await log.append(_topic_records(i))
    asyncio.run(run())


def test_snapshots_cut_the_log_and_a_restart_replays_only_after_the_last(tmp_path: Path
                                                                         ) -> None:
    path = tmp_path / "__cluster_metadata.log"
    log, follower = _open(path, max_bytes=4000)
    _fill(log, 200)
    assert log.start_offset > 0 and log.snapshots.latest() is not None
    latest = log.snapshots.latest()
    assert latest is not None and latest.end_offset == log.start_offset
    assert log.end_offset == 2 + 3 * 200
    assert path.stat().st_size < 4000 + 200, "the log before the snapshot was deleted"
    expected = follower.image
    log.close()

    again, follower2 = _open(path, max_bytes=4000)
    assert again.start_offset == latest.end_offset and again.end_offset == 602
    assert follower2.image == expected
    records = len(again.snapshots.read_records(latest))
    assert follower2.entries == records + (602 - latest.end_offset)
    assert follower2.batches <= 2  # the snapshot, then the entries after it
    # appends go on from the end, and the image follows
    asyncio.run(again.append(_topic_records(999)))
    assert again.end_offset == 605 and "topic-0999" in follower2.image.topics
    again.close()


def test_crash_between_snapshot_and_cut_starts_from_the_snapshot(tmp_path: Path) -> None:
    path = tmp_path / "__cluster_metadata.log"
    log, follower = _open(path, max_bytes=10**9)
    _fill(log, 50)
    # the snapshot is durable, the log was not rewritten yet: the crash window
    assert log.snapshots.latest() is None
    image = follower.image
    sid = SnapshotId(100, 0)
    cut = MetadataImage().apply_batch(
        [decode_record(e) for e in _entries(path)[:100]], 99)
    log.snapshots.write(sid, [r.encode() for r in image_records(cut, 100, 0)])
    log.close()
    again, follower2 = _open(path, max_bytes=10**9)
    assert again.start_offset == 0 and follower2.entries == len(
        again.snapshots.read_records(sid)) + (152 - 100)
    assert follower2.image == image
    again.close()


def _entries(path: Path) -> list[bytes]:
    log = LocalMetadataLog(path, 1, fsync=False)
    seen: list[bytes] = []
    log.add_listener(lambda _o, e: seen.append(e))
    log.replay()
    log.close()
    return seen


def test_corrupt_snapshot_at_the_log_start_refuses_to_start(tmp_path: Path) -> None:
    path = tmp_path / "__cluster_metadata.log"
    log, _ = _open(path, max_bytes=3000)
    _fill(log, 100)
    latest = log.snapshots.latest()
    assert latest is not None and latest.end_offset == log.start_offset
    log.close()
    for sid in FileSnapshotStore(tmp_path / "metadata-snapshots", fsync=False).ids():
        file = tmp_path / "metadata-snapshots" / file_name(sid)
        data = bytearray(file.read_bytes())
        data[len(data) // 2] ^= 0xFF
        file.write_bytes(bytes(data))
    size = path.stat().st_size
    with pytest.raises(LostLogError, match=f"starts at offset {latest.end_offset} but there "
                                           "is no snapshot"):
        _open(path, max_bytes=3000)
    assert path.stat().st_size == size, "the log is left alone"


def test_a_log_without_snapshots_replays_from_zero_as_before(tmp_path: Path) -> None:
    """A log file written before snapshots existed (no start marker) still loads."""
    path = tmp_path / "__cluster_metadata.log"
    log, follower = _open(path, max_bytes=10**9)
    _fill(log, 30)
    log.close()
    # torn tail: a half-written entry is dropped at open
    with open(path, "ab") as f:
        f.write(b"\x00\x00\x00\x40\x00\x00")
    again, follower2 = _open(path, max_bytes=10**9)
    assert (again.start_offset, again.end_offset) == (0, 92)
    assert follower2.image == follower.image and follower2.entries == 92
    again.close()
