"""How the coordinator persists to __consumer_offsets: a Protocol the broker implements.

The coordinator never touches the log or replication itself. The broker hands it an
OffsetsStore backed by the partition's replicated log; tests use InMemoryOffsetsStore.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from core.common.errors import NotLeaderOrFollowerError, RecordBatchTooLargeError
from core.records.batch import iter_records


class OffsetsStore(Protocol):
    """The __consumer_offsets partitions, as seen by their leader."""

    async def append(self, partition: int, batch: bytes) -> int:
        """Append one RecordBatch (built with core.records.batch.build_batch, compression 0).

        Resolves with the batch's base offset once it is durable (replicated to the ISR, as
        acks=all); raises KafkaError otherwise (NotLeaderOrFollowerError when this broker lost
        leadership, RecordBatchTooLargeError, NotEnoughReplicasError, ...).
        """
        ...

    def read(self, partition: int) -> Iterable[bytes]:
        """Every batch of the partition from the log start, for loading after election."""
        ...


class InMemoryOffsetsStore:
    """A store kept in memory: the unit tests' store, and a reference for the broker's."""

    def __init__(self) -> None:
        self.batches: dict[int, list[tuple[int, bytes]]] = {}
        self.next_offset: dict[int, int] = {}
        #: partitions whose appends fail with NOT_LEADER_OR_FOLLOWER (to test resignation)
        self.fenced: set[int] = set()
        self.max_batch_bytes: int | None = None
        self.appends = 0

    async def append(self, partition: int, batch: bytes) -> int:
        if partition in self.fenced:
            raise NotLeaderOrFollowerError(f"not leader of __consumer_offsets-{partition}")
        if self.max_batch_bytes is not None and len(batch) > self.max_batch_bytes:
            raise RecordBatchTooLargeError(f"batch of {len(batch)} bytes")
        base = self.next_offset.get(partition, 0)
        batch = base.to_bytes(8, "big", signed=True) + batch[8:]  # baseOffset is outside the CRC
        self.batches.setdefault(partition, []).append((base, batch))
        count = sum(1 for _ in iter_records(batch))
        self.next_offset[partition] = base + max(count, 1)
        self.appends += 1
        return base

    def read(self, partition: int) -> Iterable[bytes]:
        return [batch for _base, batch in self.batches.get(partition, [])]
