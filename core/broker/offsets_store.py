"""The broker's side of the group coordinator: __consumer_offsets partitions as an OffsetsStore.

Writes go through the partition leader exactly as a produce with acks=all would, so committed
offsets are replicated before the commit is acknowledged; reads walk the local log from its
start when a partition's groups are loaded.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from core.common.errors import NotLeaderOrFollowerError
from core.common.types import TopicPartition
from core.records.batch import iter_batches

OFFSETS_TOPIC = "__consumer_offsets"
_READ_CHUNK = 1024 * 1024
_APPEND_TIMEOUT_S = 5.0


class BrokerOffsetsStore:
    """A coordinator's internal topic (`__consumer_offsets` by default) on this broker: append
    through the partition leader with acks=all semantics, read a partition from its start."""

    def __init__(self, broker: Any, topic: str = OFFSETS_TOPIC) -> None:
        self._broker = broker
        self.topic = topic

    def _partition(self, partition: int) -> Any:
        tp = TopicPartition(self.topic, partition)
        found = self._broker.replicas.partitions.get(tp)
        if found is None or not found.is_leader:
            raise NotLeaderOrFollowerError(f"{tp} is not led by broker {self._broker.node_id}")
        return found

    async def append(self, partition: int, batch: bytes) -> int:
        target = self._partition(partition)
        result = self._append_batch(target, batch)
        await target.wait_for_hw(result.last_offset, _APPEND_TIMEOUT_S)
        return result.first_offset

    def _append_batch(self, target: Any, batch: bytes) -> Any:
        """Append one batch as the leader (acks=all checks); subclasses may append otherwise."""
        return target.append_as_leader(batch, -1)

    def read(self, partition: int) -> Iterator[bytes]:
        log = self._partition(partition).log
        offset = log.log_start_offset
        while offset < log.log_end_offset:
            data = log.read(offset, _READ_CHUNK).read_bytes()
            if not data:
                return
            last_next = offset
            for pos, header in iter_batches(data):
                yield data[pos:pos + header.size]
                last_next = header.next_offset
            if last_next <= offset:
                return
            offset = last_next


def make_group_coordinator(broker: Any) -> Any:
    """The group coordinator wired to this broker's __consumer_offsets partitions."""
    from core.coordinator.group_coordinator import GroupCoordinator
    return GroupCoordinator(node_id=broker.node_id, config=broker.config,
                            store=BrokerOffsetsStore(broker))
