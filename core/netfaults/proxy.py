"""A Kafka-aware asyncio TCP proxy in front of one broker, with latency / drop / blackhole.

Each accepted client connection gets an upstream connection to the broker and two pumps that
move whole Kafka frames (4-byte size prefix). The client->broker pump remembers the api key
and version of every request by correlation id; the broker->client pump rewrites the broker
addresses in Metadata, FindCoordinator and DescribeCluster responses to the proxies' addresses
(through ``address_map``), so a client bootstrapped on a proxy keeps talking through proxies.

Fault modes, per proxy:
- latency: every response frame is delivered ``latency_ms`` after it arrived (order kept);
  requests are not delayed, so one round trip grows by ``latency_ms``.
- drop: every open connection is reset now, and new ones are closed at once, until clear().
- blackhole: nothing moves either way (open connections included) and new connections are
  accepted but stall, like a network partition: the proxy stops reading, so TCP backpressure
  holds the bytes. Clients time out; on clear() the held bytes flow again, in order (as TCP
  retransmission would deliver them after a partition heals).
Only 127.0.0.1 is ever bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import struct
import time
from collections.abc import Callable, Mapping
from typing import Any

from core.protocol.codec import decode_header, decode_response, encode_response

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
METADATA, FIND_COORDINATOR, DESCRIBE_CLUSTER = 3, 10, 60
REWRITTEN = (METADATA, FIND_COORDINATOR, DESCRIBE_CLUSTER)
MAX_FRAME = 128 * 1024 * 1024
MODES = ("ok", "drop", "blackhole")

AddressMap = Callable[[str, int], "tuple[str, int] | None"]


class BrokerProxy:
    """Listens on 127.0.0.1:``listen_port`` (0: any free port) and forwards to upstream."""

    def __init__(self, broker_id: int, upstream: tuple[str, int], *, listen_port: int = 0,
                 address_map: AddressMap | None = None) -> None:
        self.broker_id = broker_id
        self.upstream = upstream
        self.listen_port = listen_port
        self.address_map = address_map
        self.latency_ms = 0.0
        self.mode = "ok"
        self.connections_accepted = 0
        self.connections_dropped = 0
        self._server: asyncio.Server | None = None
        self._conns: set[_Link] = set()
        self._flowing: asyncio.Event | None = None

    @property
    def flowing(self) -> asyncio.Event:
        """Set unless blackholed (created lazily on the running loop)."""
        if self._flowing is None:
            self._flowing = asyncio.Event()
            if self.mode != "blackhole":
                self._flowing.set()
        return self._flowing

    @property
    def address(self) -> tuple[str, int]:
        return (HOST, self.listen_port)

    async def start(self) -> BrokerProxy:
        """Bind and start accepting."""
        self._server = await asyncio.start_server(self._accept, HOST, self.listen_port)
        self.listen_port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        """Stop listening and close every connection."""
        if self._server is not None:
            self._server.close()
        for link in list(self._conns):
            link.abort()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None

    # faults ----------------------------------------------------------------------------
    def describe(self) -> str:
        parts = [self.mode] if self.mode != "ok" else []
        if self.latency_ms:
            parts.append(f"+{self.latency_ms:g} ms")
        return ", ".join(parts) or "healthy"

    def set_latency(self, ms: float) -> None:
        """Delay every response from this broker by ``ms`` milliseconds (0: none)."""
        self.latency_ms = max(0.0, float(ms))

    def drop(self) -> None:
        """Reset every open connection and refuse new ones until clear()."""
        self.mode = "drop"
        for link in list(self._conns):
            link.abort()
            self.connections_dropped += 1

    def blackhole(self) -> None:
        """Stall every byte both ways (open connections too) until clear()."""
        self.mode = "blackhole"
        if self._flowing is not None:
            self._flowing.clear()

    def clear(self) -> None:
        """Back to a healthy, zero-latency link."""
        self.mode = "ok"
        self.latency_ms = 0.0
        if self._flowing is not None:
            self._flowing.set()

    def apply(self, fault: str, ms: float = 0.0) -> None:
        """By name: latency (with ``ms``), drop, blackhole, clear."""
        if fault == "latency":
            self.set_latency(ms)
        elif fault == "drop":
            self.drop()
        elif fault == "blackhole":
            self.blackhole()
        elif fault in ("clear", "heal"):
            self.clear()
        else:
            raise ValueError(f"unknown network fault {fault!r}")

    # connections -----------------------------------------------------------------------
    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections_accepted += 1
        if self.mode == "drop":
            self.connections_dropped += 1
            _abort(writer)
            return
        link = _Link(self, reader, writer)
        self._conns.add(link)
        try:
            await link.run()
        finally:
            self._conns.discard(link)


class _Link:
    """One client connection and its upstream connection."""

    def __init__(self, proxy: BrokerProxy, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.proxy = proxy
        self.client_r, self.client_w = reader, writer
        self.up_w: asyncio.StreamWriter | None = None
        self.pending: dict[int, tuple[int, int]] = {}  # correlation id -> (api key, version)
        self.tasks: list[asyncio.Task[Any]] = []

    def abort(self) -> None:
        _abort(self.client_w)
        if self.up_w is not None:
            _abort(self.up_w)
        for task in self.tasks:
            task.cancel()

    async def run(self) -> None:
        host, port = self.proxy.upstream
        try:
            up_r, self.up_w = await asyncio.wait_for(asyncio.open_connection(host, port), 5.0)
        except (OSError, TimeoutError):
            _abort(self.client_w)
            return
        queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
        self.tasks = [asyncio.ensure_future(self._requests(self.up_w)),
                      asyncio.ensure_future(self._responses(up_r, queue)),
                      asyncio.ensure_future(self._deliver(queue))]
        try:
            await asyncio.wait(self.tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.abort()
            await asyncio.gather(*self.tasks, return_exceptions=True)

    async def _requests(self, up_w: asyncio.StreamWriter) -> None:
        while True:
            frame = await _read_frame(self.client_r)
            if frame is None:
                return
            await self.proxy.flowing.wait()
            try:
                header, _ = decode_header(frame[4:])
                if header.api_key in REWRITTEN:
                    self.pending[header.correlation_id] = (header.api_key, header.api_version)
            except Exception:  # not ours to judge: forward as is
                pass
            up_w.write(frame)
            await up_w.drain()

    async def _responses(self, up_r: asyncio.StreamReader,
                         queue: asyncio.Queue[tuple[float, bytes] | None]) -> None:
        try:
            while True:
                frame = await _read_frame(up_r)
                if frame is None:
                    return
                await self.proxy.flowing.wait()
                (correlation_id,) = struct.unpack_from(">i", frame, 4)
                api = self.pending.pop(correlation_id, None)
                if api is not None and self.proxy.address_map is not None:
                    frame = _rewrite(frame, api, self.proxy.address_map)
                due = time.monotonic() + self.proxy.latency_ms / 1000.0
                queue.put_nowait((due, frame))
        finally:
            queue.put_nowait(None)

    async def _deliver(self, queue: asyncio.Queue[tuple[float, bytes] | None]) -> None:
        while True:
            item = await queue.get()
            if item is None:
                await asyncio.sleep(0)
                return
            due, frame = item
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await self.proxy.flowing.wait()
            self.client_w.write(frame)
            await self.client_w.drain()


async def _read_frame(reader: asyncio.StreamReader) -> bytes | None:
    """One size-prefixed frame (prefix included), or None at EOF / on a bad size."""
    try:
        head = await reader.readexactly(4)
        (size,) = struct.unpack(">i", head)
        if size < 0 or size > MAX_FRAME:
            return None
        return head + await reader.readexactly(size)
    except (asyncio.IncompleteReadError, OSError):
        return None


def _abort(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        writer.transport.abort()


def _rewrite(frame: bytes, api: tuple[int, int], address_map: AddressMap) -> bytes:
    """Point broker addresses in a Metadata / FindCoordinator / DescribeCluster response at
    the proxies. Any decoding problem leaves the frame untouched."""
    api_key, version = api
    try:
        correlation_id, body = decode_response(api_key, version, frame[4:])
        body = _rewrite_body(body, address_map)
        return encode_response(api_key, version, correlation_id, body)
    except Exception:
        log.debug("could not rewrite response of api %d v%d", api_key, version, exc_info=True)
        return frame


def _mapped(entity: Any, address_map: AddressMap) -> Any:
    target = address_map(str(entity.host), int(entity.port))
    if target is None:
        return entity
    return dataclasses.replace(entity, host=target[0], port=type(entity.port)(target[1]))


def _rewrite_body(body: Any, address_map: AddressMap) -> Any:
    names = {f.name for f in dataclasses.fields(body)}
    if "brokers" in names:
        return dataclasses.replace(body, brokers=tuple(_mapped(b, address_map)
                                                       for b in body.brokers))
    if "coordinators" in names:
        return dataclasses.replace(body, coordinators=tuple(_mapped(c, address_map)
                                                            for c in body.coordinators))
    if "host" in names and body.host:
        return _mapped(body, address_map)
    return body


class ProxySet:
    """One BrokerProxy per broker, sharing an address map (broker address -> proxy)."""

    def __init__(self) -> None:
        self.proxies: dict[int, BrokerProxy] = {}
        self._by_upstream: dict[tuple[str, int], BrokerProxy] = {}

    @classmethod
    async def start(cls, brokers: Mapping[int, tuple[str, int]]) -> ProxySet:
        """Start a proxy (on a free port) for each {broker id: (host, port)}."""
        self = cls()
        try:
            for broker_id, upstream in sorted(brokers.items()):
                await self.add(broker_id, upstream)
        except BaseException:
            await self.close()
            raise
        return self

    async def add(self, broker_id: int, upstream: tuple[str, int]) -> BrokerProxy:
        proxy = BrokerProxy(broker_id, (upstream[0], int(upstream[1])),
                            address_map=self.map_address)
        await proxy.start()
        self.proxies[broker_id] = proxy
        self._by_upstream[proxy.upstream] = proxy
        if proxy.upstream[0] in ("localhost", "127.0.0.1"):
            other = "localhost" if proxy.upstream[0] == "127.0.0.1" else "127.0.0.1"
            self._by_upstream[(other, proxy.upstream[1])] = proxy
        return proxy

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

    def clear_all(self) -> None:
        for proxy in self.proxies.values():
            proxy.clear()

    async def close(self) -> None:
        await asyncio.gather(*(p.close() for p in self.proxies.values()),
                             return_exceptions=True)
