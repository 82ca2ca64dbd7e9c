"""One proxied connection: a client (or a peer broker) on one side, the broker on the other.

The first request is read as a whole Kafka frame to learn the connection's source from its
client id (``replica-fetcher-2``, ``raft-2``, ``broker-2``, ``txn-markers-2``: broker 2; any other:
a client). After that the link is a byte pump: chunks are forwarded as they arrive, with no
per-frame work, unless the proxy rewrites addresses in Metadata / FindCoordinator /
DescribeCluster answers (``address_map``), which needs whole frames both ways.

Before forwarding, a pump asks the fault table what this link suffers (only when any fault is
active): ``drop`` aborts the link, ``blackhole`` stops reading until the table changes (TCP
backpressure holds the bytes, delivered in order on clear), and a latency delays every chunk
(frame) coming back from the broker, order kept, so each round trip grows by that much.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import struct
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from core.netfaults.faults import DROP, OK, source_broker
from core.protocol.codec import decode_header, decode_response, encode_response

if TYPE_CHECKING:
    from core.netfaults.proxy import AddressMap, BrokerProxy

log = logging.getLogger(__name__)

METADATA, FIND_COORDINATOR, DESCRIBE_CLUSTER = 3, 10, 60
REWRITTEN = (METADATA, FIND_COORDINATOR, DESCRIBE_CLUSTER)
MAX_FRAME = 128 * 1024 * 1024
CHUNK = 256 * 1024
STREAM_LIMIT = 1024 * 1024
STALL_CHECK_S = 1.0


class Dropped(Exception):
    """The link's fault is `drop`: reset it."""


class Abandoned(Exception):
    """The client closed a stalled link: end it (retries would otherwise pile up)."""


class Link:
    """A client connection, its upstream connection to the broker, and the pumps between."""

    def __init__(self, proxy: BrokerProxy, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.proxy = proxy
        self.client_r, self.client_w = reader, writer
        self.up_w: asyncio.StreamWriter | None = None
        self.src: int | None = None  # the peer broker on the other end; None: a client
        self.client_id: str | None = None
        self.pending: dict[int, tuple[int, int]] = {}  # correlation id -> (api key, version)
        self.tasks: list[asyncio.Task[Any]] = []
        self.aborted = False
        self._out: deque[tuple[float, bytes]] = deque()  # delayed chunks for the client
        self._out_ready = asyncio.Event()
        self._eof = False

    def abort(self) -> None:
        """Reset both connections now (RST) and stop the pumps."""
        self.aborted = True
        _abort(self.client_w)
        if self.up_w is not None:
            _abort(self.up_w)
        for task in self.tasks:
            task.cancel()

    def policy(self) -> tuple[str, float]:
        """(mode, latency ms) this link suffers right now."""
        return self.proxy.faults.policy(self.src, self.proxy.broker_id)

    async def _gate(self) -> float:
        """Wait while the link is stalled; the latency (ms) to add. Raises Dropped, or
        Abandoned when the client gave up on a stalled link."""
        faults = self.proxy.faults
        while faults.active:
            mode, latency = faults.policy(self.src, self.proxy.broker_id)
            if mode == DROP:
                raise Dropped
            if mode == OK:
                return latency
            try:
                await asyncio.wait_for(self.proxy.changed(), STALL_CHECK_S)
            except TimeoutError:
                if self.client_r.at_eof() or self.client_w.transport.is_closing():
                    raise Abandoned from None
        return 0.0

    async def run(self) -> None:
        """Connect upstream and pump until either side closes or the link is dropped."""
        host, port = self.proxy.upstream
        try:
            up_r, self.up_w = await asyncio.wait_for(
                asyncio.open_connection(host, port, limit=STREAM_LIMIT), 5.0)
        except (OSError, TimeoutError):
            _abort(self.client_w)
            return
        self.tasks = [asyncio.ensure_future(self._requests(self.up_w)),
                      asyncio.ensure_future(self._responses(up_r)),
                      asyncio.ensure_future(self._deliver())]
        try:
            await asyncio.wait(self.tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            dropped = any(t.done() and not t.cancelled() and isinstance(t.exception(), Dropped)
                          for t in self.tasks)
            if dropped:
                self.proxy.connections_dropped += 1
            self.abort()
            await asyncio.gather(*self.tasks, return_exceptions=True)

    # client -> broker ------------------------------------------------------------------
    async def _requests(self, up_w: asyncio.StreamWriter) -> None:
        frame = await _read_frame(self.client_r)
        if frame is None:
            return
        self._identify(frame)
        rewrite = self.proxy.address_map is not None
        while True:
            await self._gate()
            up_w.write(frame)
            await up_w.drain()
            if rewrite:
                frame = await _read_frame(self.client_r)
                if frame is None:
                    return
                self._remember(frame)
            else:
                frame = await self.client_r.read(CHUNK)
                if not frame:
                    return

    def _identify(self, frame: bytes) -> None:
        try:
            header, _ = decode_header(frame[4:])
        except Exception:  # not ours to judge: forward as is, as a client
            return
        self.client_id = header.client_id
        self.src = source_broker(header.client_id)
        if self.proxy.address_map is not None and header.api_key in REWRITTEN:
            self.pending[header.correlation_id] = (header.api_key, header.api_version)

    def _remember(self, frame: bytes) -> None:
        try:
            header, _ = decode_header(frame[4:])
        except Exception:
            return
        if header.api_key in REWRITTEN:
            self.pending[header.correlation_id] = (header.api_key, header.api_version)

    # broker -> client ------------------------------------------------------------------
    async def _responses(self, up_r: asyncio.StreamReader) -> None:
        address_map = self.proxy.address_map
        try:
            while True:
                if address_map is None:
                    data = await up_r.read(CHUNK)
                    if not data:
                        return
                else:
                    frame = await _read_frame(up_r)
                    if frame is None:
                        return
                    data = self._rewritten(frame, address_map)
                latency = await self._gate()
                if latency or self._out:
                    self._out.append((time.monotonic() + latency / 1000.0, data))
                    self._out_ready.set()
                else:
                    self.client_w.write(data)
                    await self.client_w.drain()
        finally:
            self._eof = True
            self._out_ready.set()

    def _rewritten(self, frame: bytes, address_map: AddressMap) -> bytes:
        (correlation_id,) = struct.unpack_from(">i", frame, 4)
        api = self.pending.pop(correlation_id, None)
        return frame if api is None else _rewrite(frame, api, address_map)

    async def _deliver(self) -> None:
        """Write delayed chunks when due, in order (the pump writes directly when none wait)."""
        while True:
            while not self._out:
                if self._eof:
                    return
                self._out_ready.clear()
                await self._out_ready.wait()
            due, data = self._out[0]
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await self._gate()
            self._out.popleft()
            self.client_w.write(data)
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
