"""A Kafka-aware asyncio TCP proxy in front of one broker, and a set of them.

Two ways to use it (127.0.0.1 only):

- In front of a cluster that does not know about it (the scenario runner): ``ProxySet.start``
  puts a proxy on a free port in front of each broker and rewrites the broker addresses in
  Metadata, FindCoordinator and DescribeCluster answers to the proxies' (``address_map``), so a
  client bootstrapped on a proxy stays on the proxies. Only those clients see the faults.
- Owned by the supervisor (core.cluster): each broker listens on an internal port and
  *advertises* its proxy's address, and the quorum voters point at the proxies too, so every
  byte to a broker, from clients and from the other brokers, crosses its proxy; no rewriting
  (``ProxySet(rewrite=False)`` with explicit listen ports). A link's source is learned from the
  client id of its first request, so ``isolate`` can cut brokers apart while clients still pass.

Faults live in a shared FaultTable (core.netfaults.faults), keyed by broker id; see link.py
for what a link does under each. With no fault active a link is a plain byte pump.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping

from core.netfaults.faults import DROP, FaultTable, LinkFault
from core.netfaults.link import STREAM_LIMIT, Link

HOST = "127.0.0.1"
MODES = ("ok", "drop", "blackhole", "isolate")

AddressMap = Callable[[str, int], "tuple[str, int] | None"]


class BrokerProxy:
    """Listens on 127.0.0.1:``listen_port`` (0: any free port) and forwards to ``upstream``.

    ``faults`` is the table shared with the other proxies of the cluster (a private one when
    omitted); ``upstream`` may be changed at any time (new links use the new address).
    """

    def __init__(self, broker_id: int, upstream: tuple[str, int], *, listen_port: int = 0,
                 address_map: AddressMap | None = None,
                 faults: FaultTable | None = None) -> None:
        self.broker_id = broker_id
        self.upstream = upstream
        self.listen_port = listen_port
        self.address_map = address_map
        self.faults = faults if faults is not None else FaultTable()
        self.connections_accepted = 0
        self.connections_dropped = 0
        self._server: asyncio.Server | None = None
        self._conns: set[Link] = set()
        self._wake = asyncio.Event()
        self.faults.subscribe(self._on_faults_changed)

    @property
    def address(self) -> tuple[str, int]:
        return (HOST, self.listen_port)

    @property
    def fault(self) -> LinkFault:
        """This broker's own fault (links may also suffer their peer's)."""
        return self.faults.get(self.broker_id)

    @property
    def mode(self) -> str:
        return self.fault.mode

    @property
    def latency_ms(self) -> float:
        return self.fault.latency_ms

    @property
    def links(self) -> int:
        """Open links right now."""
        return len(self._conns)

    async def start(self) -> BrokerProxy:
        """Bind and start accepting."""
        self._server = await asyncio.start_server(self._accept, HOST, self.listen_port,
                                                  limit=STREAM_LIMIT)
        self.listen_port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        """Stop listening and close every connection."""
        self.faults.unsubscribe(self._on_faults_changed)
        if self._server is not None:
            self._server.close()
        for link in list(self._conns):
            link.abort()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None

    def reset_links(self) -> int:
        """Reset every open link (e.g. the broker behind it restarted); how many."""
        links = list(self._conns)
        for link in links:
            link.abort()
        return len(links)

    # faults ----------------------------------------------------------------------------
    def describe(self) -> str:
        return self.fault.describe()

    def set_latency(self, ms: float) -> None:
        """Delay every response from this broker by ``ms`` milliseconds (0: none)."""
        self.faults.apply(self.broker_id, "latency", max(0.0, float(ms)))

    def drop(self) -> None:
        """Reset every open connection and refuse new ones until clear()."""
        self.faults.apply(self.broker_id, "drop")

    def blackhole(self) -> None:
        """Stall every byte both ways (open connections too) until clear()."""
        self.faults.apply(self.broker_id, "blackhole")

    def isolate(self) -> None:
        """Stall links between this broker and its peer brokers (clients still pass)."""
        self.faults.apply(self.broker_id, "isolate")

    def clear(self) -> None:
        """Back to a healthy, zero-latency link."""
        self.faults.apply(self.broker_id, "clear")

    def apply(self, fault: str, ms: float = 0.0) -> None:
        """By name: latency (with ``ms``), drop, blackhole, isolate, clear."""
        self.faults.apply(self.broker_id, fault, ms)

    async def changed(self) -> None:
        """Until the fault table changes next."""
        await self._wake.wait()

    def _on_faults_changed(self) -> None:
        wake, self._wake = self._wake, asyncio.Event()
        wake.set()
        for link in list(self._conns):
            if link.policy()[0] == DROP and not link.aborted:
                link.abort()
                self.connections_dropped += 1

    # connections -----------------------------------------------------------------------
    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections_accepted += 1
        if self.faults.policy(None, self.broker_id)[0] == DROP:
            self.connections_dropped += 1
            with contextlib.suppress(Exception):
                writer.transport.abort()
            return
        link = Link(self, reader, writer)
        self._conns.add(link)
        try:
            await link.run()
        finally:
            self._conns.discard(link)


class ProxySet:
    """One BrokerProxy per broker sharing one FaultTable.

    ``rewrite`` (default): the proxies rewrite broker addresses in answers to point at the
    proxies (an address map from each broker's address to its proxy).
    """

    def __init__(self, faults: FaultTable | None = None, *, rewrite: bool = True) -> None:
        self.faults = faults if faults is not None else FaultTable()
        self.rewrite = rewrite
        self.proxies: dict[int, BrokerProxy] = {}
        self._by_upstream: dict[tuple[str, int], BrokerProxy] = {}

    @classmethod
    async def start(cls, brokers: Mapping[int, tuple[str, int]]) -> ProxySet:
        """Start a rewriting proxy (on a free port) for each {broker id: (host, port)}."""
        self = cls()
        try:
            for broker_id, upstream in sorted(brokers.items()):
                await self.add(broker_id, upstream)
        except BaseException:
            await self.close()
            raise
        return self

    async def add(self, broker_id: int, upstream: tuple[str, int],
                  listen_port: int = 0) -> BrokerProxy:
        """Start a proxy for one more broker (on ``listen_port``, 0: a free one)."""
        proxy = BrokerProxy(broker_id, (upstream[0], int(upstream[1])), listen_port=listen_port,
                            address_map=self.map_address if self.rewrite else None,
                            faults=self.faults)
        try:
            await proxy.start()
        except BaseException:
            await proxy.close()
            raise
        self.proxies[broker_id] = proxy
        self._index(proxy)
        return proxy

    def _index(self, proxy: BrokerProxy) -> None:
        self._by_upstream[proxy.upstream] = proxy
        if proxy.upstream[0] in ("localhost", "127.0.0.1"):
            other = "localhost" if proxy.upstream[0] == "127.0.0.1" else "127.0.0.1"
            self._by_upstream[(other, proxy.upstream[1])] = proxy

    def set_upstream(self, broker_id: int, upstream: tuple[str, int]) -> None:
        """Broker ``broker_id`` now listens on ``upstream`` (new links go there)."""
        proxy = self.proxies[broker_id]
        self._by_upstream = {k: p for k, p in self._by_upstream.items() if p is not proxy}
        proxy.upstream = (upstream[0], int(upstream[1]))
        self._index(proxy)

    def map_address(self, host: str, port: int) -> tuple[str, int] | None:
        proxy = self._by_upstream.get((host, port))
        return proxy.address if proxy is not None else None

    def __getitem__(self, broker_id: int) -> BrokerProxy:
        return self.proxies[broker_id]

    def __contains__(self, broker_id: object) -> bool:
        return broker_id in self.proxies

    @property
    def bootstrap(self) -> str:
        """`127.0.0.1:p1,127.0.0.1:p2,...` of the proxies, for clients."""
        return ",".join(f"{HOST}:{p.listen_port}" for _, p in sorted(self.proxies.items()))

    def apply(self, broker_id: int, fault: str, ms: float | None = None) -> LinkFault:
        """Set broker ``broker_id``'s network fault by name; returns its new state."""
        return self.faults.apply(broker_id, fault, ms)

    def clear_all(self) -> None:
        self.faults.clear_all()

    async def close(self) -> None:
        await asyncio.gather(*(p.close() for p in self.proxies.values()),
                             return_exceptions=True)
