"""Which other brokers' advertised endpoints refuse connections, as seen from this broker.

Each broker keeps one idle TCP connection to every other registered broker's advertised
endpoint (no Kafka request is ever sent on it). When the peer process dies the kernel closes
that connection at once; the watch reconnects immediately and, if nothing listens on the
port any more (ECONNREFUSED), marks the peer *down for its current registration epoch*. The
mark is cleared as soon as a connection succeeds again, and it no longer applies once the peer
registers anew (a new broker epoch).

Metadata answers use it like Kafka's metadata cache uses a leader without a live endpoint:
the partition is answered with leader -1 and LEADER_NOT_AVAILABLE until the controller has
fenced the broker and elected a new leader (~15-50 ms later with the supervisor). Clients
that asked right after their connection to the leader broke (librdkafka does so within a few
ms) keep querying instead of being told the dead leader again.

Only a refused connection counts as evidence: a timeout, an unreachable network or a
connection that is accepted and closed (a fault-injecting proxy) never marks a peer down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

log = logging.getLogger(__name__)

#: how often the set of registered peers is compared with the running watches
RECONCILE_S = 0.5
#: reconnect backoff after a refused or failed connect (doubles up to the max)
BACKOFF_MIN_S = 0.05
BACKOFF_MAX_S = 1.0
#: a connection that lived shorter than this is not reopened at once (no accept/close spin)
MIN_LIFETIME_S = 0.1
CONNECT_TIMEOUT_S = 2.0


class PeerWatch:
    """Tracks peers whose advertised endpoint refused a connection (see the module doc)."""

    def __init__(self, node_id: int, brokers: Callable[[], Mapping[int, Any]]) -> None:
        """`brokers` returns the current image's registrations by id (host, port, epoch)."""
        self.node_id = node_id
        self._brokers = brokers
        #: broker id -> registration epoch that was seen refusing connections
        self._down: dict[int, int] = {}
        self._watches: dict[int, asyncio.Task[None]] = {}

    def is_down(self, broker_id: int) -> bool:
        """True if `broker_id`'s endpoint refuses connections since its current registration."""
        epoch = self._down.get(broker_id)
        if epoch is None:
            return False
        reg = self._brokers().get(broker_id)
        return reg is not None and reg.epoch == epoch

    def down_ids(self) -> frozenset[int]:
        """The ids `is_down` is true for (a small set, usually empty)."""
        return frozenset(b for b in self._down if self.is_down(b))

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
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(reg.host, reg.port), CONNECT_TIMEOUT_S)
            except ConnectionRefusedError:
                if self._down.get(broker_id) != reg.epoch:
                    log.info("broker %d (%s:%d) refuses connections: leader of its "
                             "partitions answered as not available", broker_id, reg.host,
                             reg.port)
                self._down[broker_id] = reg.epoch
                await asyncio.sleep(backoff)
                backoff = min(BACKOFF_MAX_S, backoff * 2)
                continue
            except (OSError, TimeoutError):  # not evidence of a dead process
                self._down.pop(broker_id, None)
                await asyncio.sleep(backoff)
                backoff = min(BACKOFF_MAX_S, backoff * 2)
                continue
            if self._down.pop(broker_id, None) is not None:
                log.info("broker %d accepts connections again", broker_id)
            backoff = BACKOFF_MIN_S
            opened = time.monotonic()
            try:
                while await reader.read(4096):  # a Kafka broker never speaks first
                    pass
            except OSError:
                pass
            finally:
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
            if time.monotonic() - opened < MIN_LIFETIME_S:
                await asyncio.sleep(backoff)
