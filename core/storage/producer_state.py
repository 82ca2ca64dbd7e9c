"""Idempotent / transactional producer state of a partition (Kafka's ProducerStateManager).

For every producer id seen in the log it keeps the epoch, the metadata of its last 5 batches
(sequence range, offsets, timestamp) for duplicate detection and sequence checks, and the first
offset of its ongoing transaction (control batches end it). Snapshots ``<offset>.snapshot`` let
the state survive a restart without rescanning the log; the log replays headers after the
snapshot offset (header-only work).
"""

from __future__ import annotations

import json
import os
import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from crc32c import crc32c

from core.common.errors import InvalidProducerEpochError, OutOfOrderSequenceError
from core.records.batch import BatchHeader
from core.storage.checkpoints import atomic_write
from core.storage.segment import segment_file_name

__all__ = ["BatchMetadata", "ProducerEntry", "ProducerStateManager"]

MAX_BATCHES_PER_PRODUCER = 5
INT32_MAX = 2**31 - 1
_SNAPSHOT_RE = re.compile(r"^(\d{20})\.snapshot$")


class BatchMetadata(NamedTuple):
    """One of a producer's last batches: its sequence range, offsets and max timestamp."""

    first_seq: int
    last_seq: int
    first_offset: int
    last_offset: int
    timestamp: int


_tuple_new = tuple.__new__  # builds a BatchMetadata without the Python-level __new__


@dataclass(slots=True)
class ProducerEntry:
    producer_id: int
    epoch: int = -1
    batches: deque[BatchMetadata] = field(
        default_factory=lambda: deque(maxlen=MAX_BATCHES_PER_PRODUCER)
    )
    coordinator_epoch: int = -1
    current_txn_first_offset: int | None = None
    last_timestamp: int = -1

    @property
    def last_seq(self) -> int:
        return self.batches[-1].last_seq if self.batches else -1

    @property
    def last_offset(self) -> int:
        return self.batches[-1].last_offset if self.batches else -1

    def find_duplicate(self, header: BatchHeader) -> BatchMetadata | None:
        if header.producer_epoch != self.epoch:
            return None
        first, last = header.base_sequence, header.last_sequence
        for meta in self.batches:
            if meta.first_seq == first and meta.last_seq == last:
                return meta
        return None


def _in_sequence(last_seq: int, next_seq: int) -> bool:
    return next_seq == last_seq + 1 or (next_seq == 0 and last_seq == INT32_MAX)


class ProducerStateManager:
    """Producer id -> ProducerEntry, built from the batch headers of the log."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.producers: dict[int, ProducerEntry] = {}
        self.map_end_offset = 0  # state reflects every batch below this offset

    # --- checks (leader, before writing) ----------------------------------------------------

    def find_duplicate(self, header: BatchHeader) -> BatchMetadata | None:
        """The original batch if ``header`` repeats one of the producer's last 5 batches."""
        entry = self.producers.get(header.producer_id)
        return entry.find_duplicate(header) if entry is not None else None

    def check(self, headers: Iterable[BatchHeader]) -> None:
        """Epoch and sequence checks for client batches, as Kafka's ProducerAppendInfo.

        Raises InvalidProducerEpochError for an old epoch and OutOfOrderSequenceError for a gap
        or a non-zero first sequence in a new epoch. Batches of one payload are checked in order.
        """
        pending: dict[int, tuple[int, int]] = {}  # pid -> (epoch, last seq) within this payload
        for header in headers:
            pid = header.producer_id
            if pid < 0:
                continue
            entry = self.producers.get(pid)
            if pid in pending:
                epoch, last_seq = pending[pid]
            elif entry is not None:
                epoch, last_seq = entry.epoch, entry.last_seq
            else:
                pending[pid] = (header.producer_epoch, header.last_sequence)
                continue  # unknown producer: any sequence is accepted (KIP-360)
            if header.producer_epoch < epoch:
                raise InvalidProducerEpochError(
                    f"producer {pid} epoch {header.producer_epoch} is older than "
                    f"current epoch {epoch}"
                )
            if header.is_control:
                pending[pid] = (header.producer_epoch, last_seq)
                continue
            first = header.base_sequence
            if header.producer_epoch != epoch:
                if first != 0 and epoch != -1:
                    raise OutOfOrderSequenceError(
                        f"producer {pid}: sequence {first} for new epoch "
                        f"{header.producer_epoch} (expected 0)"
                    )
            elif epoch != -1 and not _in_sequence(last_seq, first):
                raise OutOfOrderSequenceError(
                    f"producer {pid} epoch {epoch}: out of order sequence {first}, "
                    f"last appended {last_seq}"
                )
            pending[pid] = (header.producer_epoch, header.last_sequence)

    def check_epochs(self, headers: Iterable[BatchHeader]) -> None:
        """Coordinator-origin batches (markers, transactional offset commits): no sequence
        checks, as Kafka; only an epoch older than the producer's is refused."""
        for header in headers:
            entry = self.producers.get(header.producer_id) if header.producer_id >= 0 else None
            if entry is not None and header.producer_epoch < entry.epoch:
                raise InvalidProducerEpochError(
                    f"producer {header.producer_id} epoch {header.producer_epoch} is older "
                    f"than current epoch {entry.epoch}"
                )

    # --- updates (after writing, leader and follower, and recovery) ---------------------------

    def check_one(
        self, pid: int, epoch: int, first_seq: int, last_seq: int
    ) -> BatchMetadata | None:
        """Checks for one client data batch: the original batch if it is a duplicate, else
        None; raises InvalidProducerEpochError / OutOfOrderSequenceError like ``check``."""
        entry = self.producers.get(pid)
        if entry is None:
            return None
        current = entry.epoch
        if epoch == current:
            batches = entry.batches
            last_appended = batches[-1][1] if batches else -1
            if first_seq == last_appended + 1 and last_appended >= 0:
                # The next batch in sequence, the usual case: it cannot repeat one of the last
                # batches (their sequences are all <= last_appended, and wrapping around the
                # 2**31 sequence space takes far more than 5 batches).
                return None
            for meta in batches:
                if meta[0] == first_seq and meta[1] == last_seq:
                    return meta
            if current != -1 and first_seq != last_appended + 1 and not (
                    first_seq == 0 and last_appended == INT32_MAX):
                raise OutOfOrderSequenceError(
                    f"producer {pid} epoch {epoch}: out of order sequence {first_seq}, "
                    f"last appended {last_appended}"
                )
        elif epoch < current:
            raise InvalidProducerEpochError(
                f"producer {pid} epoch {epoch} is older than current epoch {current}"
            )
        elif first_seq != 0 and current != -1:
            raise OutOfOrderSequenceError(
                f"producer {pid}: sequence {first_seq} for new epoch {epoch} (expected 0)"
            )
        return None

    def record(
        self, pid: int, epoch: int, first_seq: int, last_seq: int, first_offset: int,
        last_offset: int, timestamp: int, transactional: bool,
    ) -> ProducerEntry:
        """Apply one data batch of producer ``pid`` (written at first..last offset)."""
        entry = self.producers.get(pid)
        if entry is None:
            entry = self.producers[pid] = ProducerEntry(pid)
        if epoch != entry.epoch:
            if epoch > entry.epoch or entry.epoch == -1:
                entry.batches.clear()
            entry.epoch = max(entry.epoch, epoch)
        entry.last_timestamp = timestamp
        if first_seq >= 0:
            entry.batches.append(_tuple_new(
                BatchMetadata, (first_seq, last_seq, first_offset, last_offset, timestamp)))
        if transactional and entry.current_txn_first_offset is None:
            entry.current_txn_first_offset = first_offset
        return entry

    def update(self, header: BatchHeader) -> None:
        """Apply one batch (with its final offsets) to the state."""
        pid = header.producer_id
        if pid < 0:
            return
        last_offset = header.base_offset + header.last_offset_delta
        if header.is_control:
            entry = self.producers.get(pid)
            if entry is None:
                entry = self.producers[pid] = ProducerEntry(pid)
            if header.producer_epoch > entry.epoch:
                entry.batches.clear()
                entry.epoch = header.producer_epoch
            entry.last_timestamp = header.max_timestamp
            # End transaction marker: the transaction is over (commit or abort).
            entry.current_txn_first_offset = None
        else:
            self.record(pid, header.producer_epoch, header.base_sequence, header.last_sequence,
                        header.base_offset, last_offset, header.max_timestamp,
                        header.is_transactional)
        if last_offset + 1 > self.map_end_offset:
            self.map_end_offset = last_offset + 1

    def update_all(self, headers: Iterable[BatchHeader]) -> None:
        for header in headers:
            if header.producer_id >= 0:
                self.update(header)
            elif header.base_offset + header.last_offset_delta + 1 > self.map_end_offset:
                self.map_end_offset = header.base_offset + header.last_offset_delta + 1

    @property
    def first_unstable_offset(self) -> int | None:
        """The first offset of the oldest ongoing transaction (for the last stable offset)."""
        firsts = [
            e.current_txn_first_offset for e in self.producers.values()
            if e.current_txn_first_offset is not None
        ]
        return min(firsts) if firsts else None

    def on_log_start_offset_incremented(self, log_start_offset: int) -> None:
        """Forget producers whose last batch is entirely below the new log start."""
        for pid in [p for p, e in self.producers.items()
                    if e.batches and e.last_offset < log_start_offset
                    and e.current_txn_first_offset is None]:
            del self.producers[pid]

    def clear(self, map_end_offset: int = 0) -> None:
        self.producers.clear()
        self.map_end_offset = map_end_offset

    # --- snapshots --------------------------------------------------------------------------

    def snapshot_offsets(self) -> list[int]:
        offsets = []
        for name in os.listdir(self.directory):
            match = _SNAPSHOT_RE.match(name)
            if match:
                offsets.append(int(match.group(1)))
        return sorted(offsets)

    def _snapshot_path(self, offset: int) -> Path:
        return self.directory / segment_file_name(offset, ".snapshot")

    def take_snapshot(self, keep: int = 2) -> None:
        """Write ``<map_end_offset>.snapshot`` atomically and keep the newest ``keep``."""
        state = {
            "version": 1,
            "offset": self.map_end_offset,
            "producers": [
                {
                    "pid": e.producer_id, "epoch": e.epoch,
                    "coordinator_epoch": e.coordinator_epoch,
                    "txn_first_offset": e.current_txn_first_offset,
                    "last_timestamp": e.last_timestamp,
                    "batches": [[b.first_seq, b.last_seq, b.first_offset, b.last_offset,
                                 b.timestamp] for b in e.batches],
                }
                for e in self.producers.values()
            ],
        }
        body = json.dumps(state, separators=(",", ":")).encode()
        atomic_write(self._snapshot_path(self.map_end_offset),
                     b"%08x\n" % crc32c(body) + body)
        for offset in self.snapshot_offsets()[:-keep]:
            self._snapshot_path(offset).unlink(missing_ok=True)

    def delete_snapshots_after(self, offset: int) -> None:
        """Remove snapshots newer than ``offset`` (after truncation)."""
        for snap in self.snapshot_offsets():
            if snap > offset:
                self._snapshot_path(snap).unlink(missing_ok=True)

    def delete_all_snapshots(self) -> None:
        for snap in self.snapshot_offsets():
            self._snapshot_path(snap).unlink(missing_ok=True)

    def load_latest_snapshot(self, max_offset: int) -> bool:
        """Load the newest valid snapshot at or below ``max_offset``; False if none."""
        for snap in reversed(self.snapshot_offsets()):
            if snap > max_offset:
                continue
            try:
                raw = self._snapshot_path(snap).read_bytes()
                checksum, _, body = raw.partition(b"\n")
                if int(checksum, 16) != crc32c(body):
                    raise ValueError("snapshot checksum mismatch")
                state = json.loads(body)
            except (OSError, ValueError):
                self._snapshot_path(snap).unlink(missing_ok=True)
                continue
            self.producers = {}
            for p in state["producers"]:
                entry = ProducerEntry(
                    p["pid"], p["epoch"], coordinator_epoch=p["coordinator_epoch"],
                    current_txn_first_offset=p["txn_first_offset"],
                    last_timestamp=p["last_timestamp"],
                )
                entry.batches.extend(BatchMetadata(*b) for b in p["batches"])
                self.producers[entry.producer_id] = entry
            self.map_end_offset = state["offset"]
            return True
        self.clear()
        return False
