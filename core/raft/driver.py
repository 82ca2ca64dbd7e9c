"""asyncio glue: RaftDriver runs a sans-IO RaftNode on a timer over a Transport.

The broker plugs in a network Transport (Raft RPCs over Kafka connections, see wire.py);
tests use InProcessNetwork. Time comes from a monotonic clock in ms and is only ever
compared on this node.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from core.raft.messages import Outbound, RaftMessage
from core.raft.node import CommittedEntry, NotLeader, QuorumStatus, RaftNode


class Transport(Protocol):
    """Moves RaftMessages between node ids. send() never blocks; delivery is best effort."""

    def send(self, dest: int, message: RaftMessage) -> None: ...

    async def receive(self) -> tuple[int, RaftMessage]:
        """The next inbound (source node id, message)."""
        ...


class NotLeaderError(Exception):
    """The append was refused, or lost with the leadership before it committed."""

    def __init__(self, leader_id: int, epoch: int) -> None:
        super().__init__(f"not the leader (leader {leader_id}, epoch {epoch})")
        self.leader_id = leader_id
        self.epoch = epoch


def monotonic_ms() -> int:
    return int(time.monotonic() * 1000)


class RaftDriver:
    """Ticks the node every tick_interval_ms, feeds it inbound messages, sends its output.

    Committed entries are handed to on_commit (in order, once) after every step.
    """

    def __init__(
        self,
        node: RaftNode,
        transport: Transport,
        *,
        tick_interval_ms: int = 20,
        clock: Callable[[], int] = monotonic_ms,
        on_commit: Callable[[list[CommittedEntry]], None] | None = None,
    ) -> None:
        self.node = node
        self.transport = transport
        self.tick_interval_ms = tick_interval_ms
        self.clock = clock
        self.on_commit = on_commit
        self._task: asyncio.Task[None] | None = None
        self._waiters: list[tuple[int, int, asyncio.Future[int]]] = []  # (offset, epoch, fut)
        self._changed = asyncio.Event()

    def start(self) -> asyncio.Task[None]:
        """Run the driver loop as a task (idempotent)."""
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name=f"raft-{self.node.node_id}")
        return self._task

    async def stop(self) -> None:
        """Stop the loop; pending append_and_wait calls fail with NotLeaderError."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for _offset, epoch, future in self._waiters:
            if not future.done():
                future.set_exception(NotLeaderError(-1, epoch))
        self._waiters.clear()

    async def run(self) -> None:
        # asyncio.wait, not wait_for: on 3.11 wait_for can swallow a cancellation that races
        # with the inner receive completing, and stop() would then wait forever.
        receiving: asyncio.Task[tuple[int, RaftMessage]] | None = None
        next_tick = self.clock()
        try:
            while True:
                now = self.clock()
                if now >= next_tick:
                    self._dispatch(self.node.tick(now))
                    next_tick = now + self.tick_interval_ms
                    continue
                if receiving is None:
                    receiving = asyncio.ensure_future(self.transport.receive())
                done, _ = await asyncio.wait({receiving}, timeout=(next_tick - now) / 1000)
                if not done:
                    continue
                src, message = receiving.result()
                receiving = None
                self._dispatch(self.node.receive(self.clock(), src, message))
        finally:
            if receiving is not None:
                receiving.cancel()

    def _dispatch(self, outbound: Sequence[Outbound]) -> None:
        for out in outbound:
            self.transport.send(out.dest, out.message)
        committed = self.node.poll_committed()
        if committed and self.on_commit is not None:
            self.on_commit(committed)
        self._settle_waiters()
        self._changed.set()
        self._changed = asyncio.Event()

    def _settle_waiters(self) -> None:
        if not self._waiters:
            return
        node, log = self.node, self.node.log
        pending = []
        for offset, epoch, future in self._waiters:
            if future.done():
                continue
            if offset >= log.start_offset() and log.epoch_at(offset) != epoch:
                # truncated away by a later leader (below the log start, in a snapshot,
                # the epoch is unknown: the high watermark decides)
                leader = node.leader_id
                future.set_exception(NotLeaderError(-1 if leader is None else leader, node.epoch))
            elif node.high_watermark > offset:
                future.set_result(offset)
            else:
                pending.append((offset, epoch, future))
        self._waiters = pending

    def append(self, entries: Sequence[bytes]) -> int | NotLeader:
        """Append on the leader now (no waiting for commit); sends parked fetch responses."""
        result = self.node.append(entries)
        self._dispatch(self.node.take_outbound())
        return result

    async def append_and_wait(self, entries: Sequence[bytes], timeout_s: float = 10.0) -> int:
        """Append and wait until the last entry is committed; its offset. Raises NotLeaderError
        (refused, or the leadership was lost first) or TimeoutError."""
        if not entries:
            raise ValueError("nothing to append")
        result = self.append(entries)
        if isinstance(result, NotLeader):
            raise NotLeaderError(result.leader_id, result.epoch)
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiters.append((result + len(entries) - 1, self.node.epoch, future))
        self._settle_waiters()
        return await asyncio.wait_for(future, timeout_s)

    def resign(self) -> None:
        """Leader only: hand over leadership gracefully."""
        self._dispatch(self.node.resign(self.clock()))

    def status(self) -> QuorumStatus:
        """The node's DescribeQuorum view, replica times in wall-clock ms (epoch ms)."""
        return self.node.status(self.clock(), int(time.time() * 1000))

    async def wait_for(self, predicate: Callable[[RaftNode], bool], timeout_s: float) -> None:
        """Wait until predicate(node) holds (checked after every step)."""
        async with asyncio.timeout(timeout_s):
            while not predicate(self.node):
                await self._changed.wait()


class InProcessNetwork:
    """Delivers messages between in-process transports; can cut nodes off (tests)."""

    def __init__(self) -> None:
        self._queues: dict[int, asyncio.Queue[tuple[int, RaftMessage]]] = {}
        self.isolated: set[int] = set()

    def transport(self, node_id: int) -> InProcessTransport:
        self._queues.setdefault(node_id, asyncio.Queue())
        return InProcessTransport(self, node_id)

    def deliver(self, src: int, dest: int, message: RaftMessage) -> None:
        if src in self.isolated or dest in self.isolated:
            return
        queue = self._queues.get(dest)
        if queue is not None:
            queue.put_nowait((src, message))

    async def receive(self, node_id: int) -> tuple[int, RaftMessage]:
        return await self._queues[node_id].get()


class InProcessTransport:
    def __init__(self, network: InProcessNetwork, node_id: int) -> None:
        self.network = network
        self.node_id = node_id

    def send(self, dest: int, message: RaftMessage) -> None:
        self.network.deliver(self.node_id, dest, message)

    async def receive(self) -> tuple[int, RaftMessage]:
        return await self.network.receive(self.node_id)
