"""Checkpoint files in Kafka's text format, written atomically.

Offset checkpoints (recovery-point-offset-checkpoint, replication-offset-checkpoint,
log-start-offset-checkpoint)::

    0                 <- version
    2                 <- number of entries
    my-topic 0 1234   <- topic partition offset
    my-topic 1 99

The leader-epoch-checkpoint of a partition has the same shape with "epoch start_offset" lines.
Writes go to a temporary file that is fsynced and renamed over the target, then the directory is
fsynced, so a crash leaves either the old or the new file, never a torn one.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from core.common.types import TopicPartition

__all__ = [
    "atomic_write",
    "fsync_dir",
    "read_epoch_checkpoint",
    "read_offset_checkpoint",
    "write_epoch_checkpoint",
    "write_offset_checkpoint",
]

VERSION = 0


def fsync_dir(directory: Path) -> None:
    """fsync a directory so that renames and creations in it are durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically (temp file, fsync, rename, fsync dir)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def _format(lines: list[str]) -> bytes:
    return (f"{VERSION}\n{len(lines)}\n" + "".join(line + "\n" for line in lines)).encode()


def _parse(path: Path, fields: int) -> list[list[str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    lines = text.splitlines()
    if len(lines) < 2 or lines[0].strip() != str(VERSION):
        raise ValueError(f"{path}: unrecognised checkpoint version")
    count = int(lines[1])
    entries = [line.split() for line in lines[2:2 + count]]
    if len(entries) != count or any(len(entry) != fields for entry in entries):
        raise ValueError(f"{path}: malformed checkpoint (expected {count} entries)")
    return entries


def write_offset_checkpoint(path: Path, offsets: Mapping[TopicPartition, int]) -> None:
    """Write a topic-partition -> offset checkpoint atomically."""
    lines = [f"{tp.topic} {tp.partition} {offset}" for tp, offset in sorted(offsets.items())]
    atomic_write(path, _format(lines))


def read_offset_checkpoint(path: Path) -> dict[TopicPartition, int]:
    """Read a topic-partition -> offset checkpoint; an absent file is empty."""
    return {
        TopicPartition(topic, int(partition)): int(offset)
        for topic, partition, offset in _parse(path, 3)
    }


def write_epoch_checkpoint(path: Path, entries: Iterable[tuple[int, int]]) -> None:
    """Write a leader-epoch-checkpoint: (epoch, start offset) lines."""
    atomic_write(path, _format([f"{epoch} {offset}" for epoch, offset in entries]))


def read_epoch_checkpoint(path: Path) -> list[tuple[int, int]]:
    """Read a leader-epoch-checkpoint; an absent file is empty."""
    return [(int(epoch), int(offset)) for epoch, offset in _parse(path, 2)]


def remove_quietly(path: Path) -> None:
    """Delete a file if it exists."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
