"""core.broker.peer_watch against real sockets: a peer is down from the moment its connection
is closed under us until a new connection answers ApiVersions, only for the registration epoch
that was seen gone; a peer that accepts but never answers (paused) is never marked down."""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import dataclass

import pytest

from core.broker.peer_watch import PeerWatch

pytestmark = pytest.mark.timeout(30)


@dataclass(frozen=True)
class Reg:
    host: str
    port: int
    epoch: int


class Peer:
    """A listener that can die (close its socket and every connection) and come back."""

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []
        self.port = 0
        self.accepted = 0

    async def _on_conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self.writers.append(writer)
        size = int.from_bytes(await reader.readexactly(4), "big")
        await reader.readexactly(size)  # the ApiVersions probe: any framed answer will do
        writer.write((4).to_bytes(4, "big") + (1).to_bytes(4, "big"))

    async def start(self, port: int = 0) -> None:
        self.server = await asyncio.start_server(self._on_conn, "127.0.0.1", port)
        self.port = self.server.sockets[0].getsockname()[1]

    def drop_connections(self) -> None:
        """As the kernel does for a SIGKILLed process: every connection is reset at once."""
        for w in self.writers:
            w.get_extra_info("socket").shutdown(socket.SHUT_RDWR)  # FIN now, not next tick
            w.transport.abort()
        self.writers.clear()

    async def die(self) -> None:
        assert self.server is not None
        self.server.close()
        self.drop_connections()
        await self.server.wait_closed()


async def until(predicate, timeout: float = 5.0) -> float:
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.002)
    return time.monotonic() - start


def test_dead_peer_is_down_at_once_for_its_epoch_only_and_clears_on_return() -> None:
    async def main() -> None:
        peer = Peer()
        await peer.start()
        regs = {1: Reg("127.0.0.1", 1, 1), 2: Reg("127.0.0.1", peer.port, 5)}
        watch = PeerWatch(1, lambda: regs)
        task = asyncio.get_running_loop().create_task(watch.run())
        try:
            await until(lambda: peer.accepted == 1)
            await asyncio.sleep(0.1)  # the probe's answer is read: the watch idles on it
            assert not watch.is_down(2) and watch.down_ids() == frozenset()
            peer.drop_connections()
            # seen at once, before the loop ran the watch: the answer to a client that lost
            # its own connection at the same instant cannot name the dead peer
            assert watch.is_down(2) and watch.down_ids() == {2}
            await peer.die()
            await asyncio.sleep(0.2)  # the watch reconnects: refused, still down
            assert watch.down_ids() == {2}
            assert not watch.is_down(1) and not watch.is_down(3)  # self / unknown
            regs[2] = Reg("127.0.0.1", peer.port, 6)  # re-registered: the mark is stale
            assert not watch.is_down(2)
            regs[2] = Reg("127.0.0.1", peer.port, 5)
            assert watch.is_down(2)
            await peer.start(peer.port)  # back on its port: cleared within the backoff
            await until(lambda: not watch.is_down(2), timeout=3.0)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            if peer.server is not None:
                peer.server.close()

    asyncio.run(main())


def test_accepted_but_unanswered_probes() -> None:
    """Closed before answering (a dying process's backlog): down. Never answering: unknown."""
    async def main() -> None:
        async def slam(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.transport.abort()

        async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await asyncio.sleep(60)

        slammer = await asyncio.start_server(slam, "127.0.0.1", 0)
        muted = await asyncio.start_server(mute, "127.0.0.1", 0)
        regs = {2: Reg("127.0.0.1", slammer.sockets[0].getsockname()[1], 1),
                3: Reg("127.0.0.1", muted.sockets[0].getsockname()[1], 1)}
        watch = PeerWatch(1, lambda: regs)
        task = asyncio.get_running_loop().create_task(watch.run())
        try:
            await until(lambda: watch.is_down(2), timeout=2.0)
            for _ in range(50):
                await asyncio.sleep(0.01)
                assert not watch.is_down(3)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            slammer.close()
            muted.close()

    asyncio.run(main())
