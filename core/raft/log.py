"""The Raft metadata log: entries with their leader epoch, behind a Protocol.

Offsets start at 0 and are dense. Each entry carries the epoch of the leader that wrote it;
`control` entries are the leader-change markers a new leader writes at the start of its
epoch (KRaft's LeaderChangeMessage) and are never surfaced to the state machine.

`EpochCache` mirrors Kafka's LeaderEpochFileCache: the first offset of every epoch in the
log, which answers `end_offset_for_epoch`, the question behind KIP-595's divergence check.

Snapshots (KIP-630): the log may start at a `start_offset` > 0 once a snapshot ending there
covers the entries before it. The log then remembers that snapshot's epoch (the epoch of entry
start_offset - 1) as its *base*, so that `last_epoch`, `epoch_at(start_offset - 1)` and
`end_offset_for_epoch` still answer for the prefix the snapshot replaced.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One metadata log entry: the writing leader's epoch and opaque bytes."""

    epoch: int
    data: bytes
    control: bool = False


class RaftLog(Protocol):
    """What the Raft node needs from its log. Appends must be durable when they return."""

    def end_offset(self) -> int:
        """The offset the next appended entry gets (the log end offset)."""
        ...

    def last_epoch(self) -> int:
        """The epoch of the last entry, 0 for an empty log."""
        ...

    def append(self, entries: Sequence[LogEntry]) -> int:
        """Append entries at the end (durably); returns the offset of the first one."""
        ...

    def read(self, start: int, max_entries: int) -> list[LogEntry]:
        """Up to max_entries entries from offset start (fewer at the end of the log)."""
        ...

    def epoch_at(self, offset: int) -> int | None:
        """The epoch of the entry at offset, None when the log has no such entry."""
        ...

    def truncate(self, end_offset: int) -> None:
        """Remove every entry at offset >= end_offset."""
        ...

    def end_offset_for_epoch(self, epoch: int) -> tuple[int, int]:
        """(largest epoch <= epoch in the log, that epoch's end offset); (0, 0) if none."""
        ...

    def start_offset(self) -> int:
        """The log start offset: entries before it were replaced by a snapshot (0 if none)."""
        ...

    def delete_before(self, offset: int) -> None:
        """Drop every entry below offset (a durable snapshot ends there); start = offset."""
        ...

    def truncate_fully_and_start_at(self, offset: int, epoch: int) -> None:
        """Drop every entry; the log restarts empty at offset, after a snapshot of epoch."""
        ...


class EpochCache:
    """First offset of each epoch present in a log (epochs strictly increase)."""

    def __init__(self) -> None:
        self._epochs: list[int] = []
        self._starts: list[int] = []
        #: the snapshot the log starts after: (its end offset, its epoch); (0, 0) for none
        self.base_offset = 0
        self.base_epoch = 0

    def assign(self, epoch: int, offset: int) -> None:
        """Record that the entry at offset has this epoch (called for every appended entry)."""
        if self._epochs and self._epochs[-1] == epoch:
            return
        if epoch < self.last_epoch():
            raise ValueError(f"epoch {epoch} after epoch {self.last_epoch()} at offset {offset}")
        self._epochs.append(epoch)
        self._starts.append(offset)

    def truncate(self, end_offset: int) -> None:
        """Forget epochs that start at or after end_offset."""
        while self._starts and self._starts[-1] >= end_offset:
            self._starts.pop()
            self._epochs.pop()

    def truncate_from_start(self, offset: int, base_epoch: int) -> None:
        """Entries below offset are gone (a snapshot of base_epoch ends there): as Kafka's
        truncateFromStart, the epoch covering offset now starts at offset."""
        while len(self._starts) >= 2 and self._starts[1] <= offset:
            del self._starts[0], self._epochs[0]
        if self._starts and self._starts[0] < offset:
            self._starts[0] = offset
        self.base_offset, self.base_epoch = offset, base_epoch

    def reset(self, offset: int, base_epoch: int) -> None:
        """Forget every epoch: the log restarts empty at offset after a snapshot."""
        self._epochs.clear()
        self._starts.clear()
        self.base_offset, self.base_epoch = offset, base_epoch

    def last_epoch(self) -> int:
        return self._epochs[-1] if self._epochs else self.base_epoch

    def end_offset_for_epoch(self, epoch: int, log_end_offset: int) -> tuple[int, int]:
        index = bisect.bisect_right(self._epochs, epoch) - 1
        if index < 0:
            if self.base_offset > 0 and epoch >= self.base_epoch:
                return self.base_epoch, self.base_offset  # the snapshot's epoch ends there
            return 0, 0
        end = self._starts[index + 1] if index + 1 < len(self._starts) else log_end_offset
        return self._epochs[index], end


class MemoryLog:
    """An in-memory RaftLog, for the simulation and unit tests (everything is 'durable')."""

    def __init__(self) -> None:
        self._entries: list[LogEntry] = []
        self._start = 0
        self._epochs = EpochCache()

    def start_offset(self) -> int:
        return self._start

    def end_offset(self) -> int:
        return self._start + len(self._entries)

    def last_epoch(self) -> int:
        return self._epochs.last_epoch()

    def append(self, entries: Sequence[LogEntry]) -> int:
        base = self.end_offset()
        for i, entry in enumerate(entries):
            self._epochs.assign(entry.epoch, base + i)
            self._entries.append(entry)
        return base

    def read(self, start: int, max_entries: int) -> list[LogEntry]:
        if start < self._start:
            raise ValueError(f"read at {start} below the log start offset {self._start}")
        index = start - self._start
        return self._entries[index:index + max_entries]

    def epoch_at(self, offset: int) -> int | None:
        return _epoch_at(self._entries, self._start, self._epochs, offset)

    def truncate(self, end_offset: int) -> None:
        del self._entries[max(end_offset - self._start, 0):]
        self._epochs.truncate(max(end_offset, self._start))

    def end_offset_for_epoch(self, epoch: int) -> tuple[int, int]:
        return self._epochs.end_offset_for_epoch(epoch, self.end_offset())

    def delete_before(self, offset: int) -> None:
        epoch = _epoch_before_cut(self, self._start, offset)
        if epoch is None:
            return
        del self._entries[:offset - self._start]
        self._start = offset
        self._epochs.truncate_from_start(offset, epoch)

    def truncate_fully_and_start_at(self, offset: int, epoch: int) -> None:
        self._entries.clear()
        self._start = offset
        self._epochs.reset(offset, epoch)

    def entries(self) -> list[LogEntry]:
        """A copy of every entry from the start offset (tests, the simulation's checks)."""
        return list(self._entries)


def _epoch_at(entries: Sequence[LogEntry], start: int, epochs: EpochCache,
              offset: int) -> int | None:
    """The epoch of the entry at offset; for start - 1, the epoch of the snapshot there."""
    if start <= offset < start + len(entries):
        return entries[offset - start].epoch
    if offset == start - 1 and start > 0:
        return epochs.base_epoch
    return None


def _epoch_before_cut(log: RaftLog, start: int, offset: int) -> int | None:
    """delete_before's check, shared by the logs: None when there is nothing before offset to
    delete, else the epoch of the entry at offset - 1 (the new start's epoch); past the log end
    is an error."""
    if offset <= start:
        return None
    if offset > log.end_offset():
        raise ValueError(f"delete_before({offset}) past the log end {log.end_offset()}")
    epoch = log.epoch_at(offset - 1)
    assert epoch is not None
    return epoch
