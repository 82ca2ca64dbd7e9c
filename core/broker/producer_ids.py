"""Producer ids for idempotent producers, handed out in blocks reserved by the controller."""

from __future__ import annotations

import asyncio
from typing import Any


class ProducerIdManager:
    """Hands out producer ids from a block; asks the controller for the next block."""

    def __init__(self, broker: Any) -> None:
        self._broker = broker
        self._next = 0
        self._end = 0
        self._lock = asyncio.Lock()

    async def next_id(self) -> int:
        async with self._lock:
            if self._next >= self._end:
                start, length = await self._allocate()
                self._next, self._end = start, start + length
            pid = self._next
            self._next += 1
            return pid

    async def _allocate(self) -> tuple[int, int]:
        broker = self._broker
        if broker.is_controller():
            return await broker.controller.allocate_producer_ids(broker.node_id,
                                                                broker.broker_epoch)
        from core.broker.quorum import allocate_producer_ids
        return await allocate_producer_ids(broker)
