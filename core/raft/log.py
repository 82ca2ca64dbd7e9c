"""The Raft metadata log: entries with their leader epoch, behind a Protocol.

Offsets start at 0 and are dense. Each entry carries the epoch of the leader that wrote it;
`control` entries are the leader-change markers a new leader writes at the start of its
epoch (KRaft's LeaderChangeMessage) and are never surfaced to the state machine.

`EpochCache` mirrors Kafka's LeaderEpochFileCache: the first offset of every epoch in the
log, which answers `end_offset_for_epoch`, the question behind KIP-595's divergence check.
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


class EpochCache:
    """First offset of each epoch present in a log (epochs strictly increase)."""

    def __init__(self) -> None:
        self._epochs: list[int] = []
        self._starts: list[int] = []

    def assign(self, epoch: int, offset: int) -> None:
        """Record that the entry at offset has this epoch (called for every appended entry)."""
        if self._epochs and self._epochs[-1] == epoch:
            return
        if self._epochs and epoch < self._epochs[-1]:
            raise ValueError(f"epoch {epoch} after epoch {self._epochs[-1]} at offset {offset}")
        self._epochs.append(epoch)
        self._starts.append(offset)

    def truncate(self, end_offset: int) -> None:
        """Forget epochs that start at or after end_offset."""
        while self._starts and self._starts[-1] >= end_offset:
            self._starts.pop()
            self._epochs.pop()

    def last_epoch(self) -> int:
        return self._epochs[-1] if self._epochs else 0

    def end_offset_for_epoch(self, epoch: int, log_end_offset: int) -> tuple[int, int]:
        index = bisect.bisect_right(self._epochs, epoch) - 1
        if index < 0:
            return 0, 0
        end = self._starts[index + 1] if index + 1 < len(self._starts) else log_end_offset
        return self._epochs[index], end


class MemoryLog:
    """An in-memory RaftLog, for the simulation and unit tests (everything is 'durable')."""

    def __init__(self) -> None:
        self._entries: list[LogEntry] = []
        self._epochs = EpochCache()

    def end_offset(self) -> int:
        return len(self._entries)

    def last_epoch(self) -> int:
        return self._epochs.last_epoch()

    def append(self, entries: Sequence[LogEntry]) -> int:
        base = len(self._entries)
        for i, entry in enumerate(entries):
            self._epochs.assign(entry.epoch, base + i)
            self._entries.append(entry)
        return base

    def read(self, start: int, max_entries: int) -> list[LogEntry]:
        return self._entries[start:start + max_entries]

    def epoch_at(self, offset: int) -> int | None:
        if 0 <= offset < len(self._entries):
            return self._entries[offset].epoch
        return None

    def truncate(self, end_offset: int) -> None:
        del self._entries[end_offset:]
        self._epochs.truncate(end_offset)

    def end_offset_for_epoch(self, epoch: int) -> tuple[int, int]:
        return self._epochs.end_offset_for_epoch(epoch, len(self._entries))

    def entries(self) -> list[LogEntry]:
        """A copy of every entry (for tests and the simulation's invariant checks)."""
        return list(self._entries)
