"""Leader epoch cache: epoch -> first offset written in it (Kafka's LeaderEpochFileCache).

It answers OffsetForLeaderEpoch ("what is the end offset of epoch E?") so that a follower can
truncate to the point where its log diverged from the leader's. Persisted in the partition's
``leader-epoch-checkpoint`` on every change (changes are rare: once per leadership change).
"""

from __future__ import annotations

import bisect
from pathlib import Path

from core.storage.checkpoints import read_epoch_checkpoint, write_epoch_checkpoint

__all__ = ["UNDEFINED_EPOCH", "UNDEFINED_EPOCH_OFFSET", "LeaderEpochCache"]

UNDEFINED_EPOCH = -1
UNDEFINED_EPOCH_OFFSET = -1
FILE_NAME = "leader-epoch-checkpoint"


class LeaderEpochCache:
    """Ordered (epoch, start_offset) entries, both strictly increasing."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / FILE_NAME
        try:
            self._entries: list[tuple[int, int]] = read_epoch_checkpoint(self.path)
        except (ValueError, OSError):
            self._entries = []
        self.latest_epoch = self._entries[-1][0] if self._entries else UNDEFINED_EPOCH

    @property
    def entries(self) -> list[tuple[int, int]]:
        return list(self._entries)

    def _changed(self) -> None:
        self.latest_epoch = self._entries[-1][0] if self._entries else UNDEFINED_EPOCH
        write_epoch_checkpoint(self.path, self._entries)

    def assign(self, epoch: int, start_offset: int) -> bool:
        """Record that ``epoch`` starts at ``start_offset``; return whether anything changed.

        As in Kafka, an epoch already present is not moved, and entries that would break the
        monotonicity (an epoch >= the new one, or a start offset >= the new one) are removed.
        """
        if epoch < 0:
            return False
        if self._entries and self._entries[-1][0] == epoch:
            return False
        kept = [(e, o) for e, o in self._entries if e < epoch and o < start_offset]
        kept.append((epoch, start_offset))
        self._entries = kept
        self._changed()
        return True

    def epoch_for_offset(self, offset: int) -> int:
        """The epoch in which ``offset`` was written (-1 if unknown)."""
        index = bisect.bisect_right([o for _, o in self._entries], offset) - 1
        return self._entries[index][0] if index >= 0 else UNDEFINED_EPOCH

    def start_offset_of(self, epoch: int) -> int | None:
        for e, offset in self._entries:
            if e == epoch:
                return offset
        return None

    def end_offset_for(self, requested_epoch: int, log_end_offset: int) -> tuple[int, int]:
        """OffsetForLeaderEpoch: (the largest epoch <= requested, the end offset of it)."""
        if requested_epoch == UNDEFINED_EPOCH or not self._entries:
            return UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET
        if requested_epoch == self.latest_epoch:
            return requested_epoch, log_end_offset
        epochs = [e for e, _ in self._entries]
        higher = bisect.bisect_right(epochs, requested_epoch)
        if higher >= len(epochs):
            return UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET
        higher_start = self._entries[higher][1]
        if higher == 0:
            return requested_epoch, higher_start
        return epochs[higher - 1], higher_start

    def truncate_from_end(self, end_offset: int) -> None:
        """Drop entries starting at or after ``end_offset`` (log truncated to it)."""
        kept = [(e, o) for e, o in self._entries if o < end_offset]
        if kept != self._entries:
            self._entries = kept
            self._changed()

    def truncate_from_start(self, start_offset: int) -> None:
        """Log start moved to ``start_offset``: keep the epoch covering it, starting there."""
        below = [(e, o) for e, o in self._entries if o <= start_offset]
        above = [(e, o) for e, o in self._entries if o > start_offset]
        kept = ([(below[-1][0], start_offset)] if below else []) + above
        if kept != self._entries:
            self._entries = kept
            self._changed()

    def clear(self) -> None:
        if self._entries:
            self._entries = []
            self._changed()
