"""Which other brokers are gone, as seen from this broker, before the controller knows.

Each broker keeps one idle connection to every other registered broker's advertised endpoint.
A peer is *down for its current registration epoch* from the moment that connection is closed
under us (a SIGKILLed process's sockets are closed by the kernel at once) until a new
connection gets an answer to ApiVersions. A connect that is refused, or a connection that is
closed before it answers (a dying process's listen backlog accepts for a few ms more),
keeps it down; a connect or answer that times out (a paused broker, a stalled link) clears
the mark rather than guessing. The mark no longer applies once the peer registers anew (a new
broker epoch), and a live broker that closes our idle connection (connections.max.idle.ms)
is down only for the one round trip it takes to answer ApiVersions again.

The check is also made synchronously when asked (`down_ids`): a non-blocking peek at each
watch socket sees the FIN/RST the kernel queued when the peer died, even if the event loop
has not run the watch yet -- a client that lost its own connection to that peer at the same
instant and asks us for metadata a few ms later cannot overtake it.

Metadata answers use it like Kafka's metadata cache uses a leader without a live endpoint:
the partition is answered with leader -1 and LEADER_NOT_AVAILABLE until the controller has
fenced the broker and elected a new leader (~15-50 ms later with the supervisor). librdkafka,
which asks for metadata within a few ms of losing its connection to the leader, then keeps
its fast leader query going (retry.backoff.ms) instead of being told the dead leader again
and waiting for its 1 s topic scan.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable, Mapping
from typing import Any

from core.protocol.build import build
from core.protocol.codec import encode_request, request_class

log = logging.getLogger(__name__)

#: how often the set of registered peers is compared with the running watches
RECONCILE_S = 0.5
#: reconnect backoff after a refused or failed probe (doubles up to the max)
BACKOFF_MIN_S = 0.05
BACKOFF_MAX_S = 1.0
#: a connection that lived shorter than this is not reopened at once (no accept/close spin)
MIN_LIFETIME_S = 0.1
PROBE_TIMEOUT_S = 2.0
#: the probe: ApiVersions v0 (no fields), which every Kafka broker answers before anything
_API_VERSIONS = encode_request(18, 0, 1, "peer-watch", build(request_class(18, 0)))


def _closed(sock: socket.socket) -> bool:
    """Has the peer closed (FIN) or reset this idle connection? One non-blocking peek."""
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        return True


class PeerWatch:
    """Tracks peers that closed our connection and did not answer again (see the module doc)."""

    def __init__(self, node_id: int, brokers: Callable[[], Mapping[int, Any]]) -> None:
        """`brokers` returns the current image's registrations by id (host, port, epoch)."""
        self.node_id = node_id
        self._brokers = brokers
        #: broker id -> the registration epoch that was seen gone
        self._down: dict[int, int] = {}
        #: broker id -> (registration epoch, the open watch connection)
        self._socks: dict[int, tuple[int, socket.socket]] = {}
        self._watches: dict[int, asyncio.Task[None]] = {}

    def is_down(self, broker_id: int) -> bool:
        """True if `broker_id` is gone (see the module doc) and has not registered anew."""
        return broker_id in self.down_ids()

    def down_ids(self) -> frozenset[int]:
        """The peers that are gone now (a small set, usually empty)."""
        for broker_id, (epoch, sock) in list(self._socks.items()):
            if _closed(sock):  # noticed before the loop ran the watch
                self._socks.pop(broker_id, None)
                self._mark_down(broker_id, epoch, "closed our connection")
        if not self._down:
            return frozenset()
        brokers = self._brokers()
        return frozenset(b for b, epoch in self._down.items()
                         if b in brokers and brokers[b].epoch == epoch)

    async def run(self) -> None:
        """Start and stop one watch per registered peer until cancelled."""
        try:
            while True:
                wanted = {b for b in self._brokers() if b != self.node_id}
                for broker_id in wanted - self._watches.keys():
                    self._watches[broker_id] = asyncio.get_running_loop().create_task(
                        self._watch(broker_id), name=f"peer-watch-{broker_id}")
                for broker_id in [b for b, t in self._watches.items()
                                  if b not in wanted or t.done()]:
                    self._watches.pop(broker_id).cancel()
                    self._down.pop(broker_id, None)
                await asyncio.sleep(RECONCILE_S)
        finally:
            for task in self._watches.values():
                task.cancel()
            self._watches.clear()

    async def _watch(self, broker_id: int) -> None:
        backoff = BACKOFF_MIN_S
        while True:
            reg = self._brokers().get(broker_id)
            if reg is None:
                return
            verdict, sock = await self._probe(reg.host, reg.port)
            if verdict is None:  # no evidence either way
                self._down.pop(broker_id, None)
            elif not verdict:
                self._mark_down(broker_id, reg.epoch, "refuses connections")
            if sock is None:
                await asyncio.sleep(backoff)
                backoff = min(BACKOFF_MAX_S, backoff * 2)
                continue
            if self._down.pop(broker_id, None) is not None:
                log.info("broker %d answers again", broker_id)
            backoff = BACKOFF_MIN_S
            opened = time.monotonic()
            self._socks[broker_id] = (reg.epoch, sock)
            try:
                await _until_closed(sock)
            finally:
                self._socks.pop(broker_id, None)
                sock.close()
            self._mark_down(broker_id, reg.epoch, "closed our connection")  # until it answers
            if time.monotonic() - opened < MIN_LIFETIME_S:
                await asyncio.sleep(backoff)

    def _mark_down(self, broker_id: int, epoch: int, why: str) -> None:
        if self._down.get(broker_id) != epoch:
            log.info("broker %d %s: its partitions are answered without a leader", broker_id,
                     why)
        self._down[broker_id] = epoch

    async def _probe(self, host: str, port: int) -> tuple[bool | None, socket.socket | None]:
        """Connect and ask ApiVersions: (True, open socket) if answered, (False, None) if
        refused or closed unanswered, (None, None) if it timed out or failed otherwise."""
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await asyncio.wait_for(loop.sock_connect(sock, (host, port)), PROBE_TIMEOUT_S)
            await loop.sock_sendall(sock, _API_VERSIONS)
            answer = await asyncio.wait_for(loop.sock_recv(sock, 4096), PROBE_TIMEOUT_S)
        except ConnectionError:  # refused or reset
            sock.close()
            return False, None
        except (OSError, TimeoutError):
            sock.close()
            return None, None
        except BaseException:
            sock.close()
            raise
        if not answer:  # accepted, then closed without an answer
            sock.close()
            return False, None
        await _drain(sock)  # the rest of the answer, if it came in pieces
        return True, sock


async def _drain(sock: socket.socket) -> None:
    """Read whatever is already there without waiting."""
    while True:
        try:
            if not sock.recv(65536, socket.MSG_DONTWAIT):
                return
        except (BlockingIOError, InterruptedError, OSError):
            return


async def _until_closed(sock: socket.socket) -> None:
    """Wait until the peer closes or resets the (otherwise silent) connection."""
    loop = asyncio.get_running_loop()
    while True:
        readable = loop.create_future()
        loop.add_reader(sock.fileno(), lambda f=readable: f.done() or f.set_result(None))
        try:
            await readable
        finally:
            loop.remove_reader(sock.fileno())
        if _closed(sock):
            return
        await _drain(sock)  # late bytes of the probe's answer: keep watching
