"""The asyncio listener: framing, ordered responses, backpressure and limits.

One `KafkaServerProtocol` per connection. Requests are pipelined: each is dispatched as soon as
its frame is complete, but responses are written strictly in request order, as Kafka clients
require. A frame larger than socket.request.max.bytes (or with a negative size) is refused
before anything is allocated for it, and a malformed frame closes only that connection.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)

_SIZE = struct.Struct(">i")

#: dispatch(frame, peer) -> awaitable of the encoded response, or None for no response
Dispatch = Callable[[memoryview, tuple[str, int]], Awaitable[bytes | None]]


class KafkaServerProtocol(asyncio.Protocol):
    """One client connection: reads frames, dispatches them, writes responses in order."""

    def __init__(self, dispatch: Dispatch, *, max_request_bytes: int, max_in_flight: int = 64,
                 on_close: Callable[[KafkaServerProtocol], None] | None = None,
                 idle_timeout_s: float | None = None) -> None:
        self._dispatch = dispatch
        self._max_request_bytes = max_request_bytes
        self._max_in_flight = max_in_flight
        self._on_close = on_close
        self._idle_timeout_s = idle_timeout_s
        self._buffer = bytearray()
        self._pending: deque[asyncio.Future[bytes | None]] = deque()
        self._transport: asyncio.Transport | None = None
        self._peer: tuple[str, int] = ("?", 0)
        self._reading_paused = False
        self._writing_paused = False
        self._closed = False
        self._idle_handle: asyncio.TimerHandle | None = None
        self._loop = asyncio.get_event_loop()

    # asyncio callbacks -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        peer = transport.get_extra_info("peername")
        self._peer = (peer[0], peer[1]) if peer else ("?", 0)
        transport.set_write_buffer_limits(high=4 * 1024 * 1024)
        self._touch()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        if self._idle_handle:
            self._idle_handle.cancel()
        for fut in self._pending:
            fut.cancel()
        self._pending.clear()
        if self._on_close:
            self._on_close(self)

    def pause_writing(self) -> None:
        self._writing_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self._writing_paused = False
        self._update_reading()
        self._flush()

    def data_received(self, data: bytes) -> None:
        self._touch()
        buffer = self._buffer
        buffer += data
        pos = 0
        size_of_buffer = len(buffer)
        while size_of_buffer - pos >= 4:
            (size,) = _SIZE.unpack_from(buffer, pos)
            if size < 0 or size > self._max_request_bytes:
                log.warning("closing connection from %s:%s: request size %d outside 0..%d",
                            *self._peer, size, self._max_request_bytes)
                self.close()
                return
            if size_of_buffer - pos - 4 < size:
                break
            frame = bytes(buffer[pos + 4:pos + 4 + size])
            pos += 4 + size
            self._start(frame)
            if self._closed:
                return
        if pos:
            del buffer[:pos]
        self._update_reading()

    # internals ---------------------------------------------------------------------------
    def _start(self, frame: bytes) -> None:
        fut: asyncio.Future[bytes | None] = self._loop.create_future()
        self._pending.append(fut)
        task = self._loop.create_task(self._run(frame, fut))
        task.add_done_callback(_consume_task_exception)

    async def _run(self, frame: bytes, fut: asyncio.Future[bytes | None]) -> None:
        try:
            response = await self._dispatch(memoryview(frame), self._peer)
        except ConnectionAbortedError as exc:
            log.warning("closing connection from %s:%s: %s", *self._peer, exc)
            self.close()
            return
        except Exception:
            log.exception("closing connection from %s:%s after an unexpected error", *self._peer)
            self.close()
            return
        if not fut.done():
            fut.set_result(response)
        self._flush()

    def _flush(self) -> None:
        transport = self._transport
        if transport is None or self._closed:
            return
        pending = self._pending
        while pending and pending[0].done():
            fut = pending.popleft()
            if fut.cancelled():
                continue
            response = fut.result()
            if response is not None:
                transport.write(response)
        self._update_reading()

    def _update_reading(self) -> None:
        if self._transport is None or self._closed:
            return
        should_pause = self._writing_paused or len(self._pending) >= self._max_in_flight
        if should_pause and not self._reading_paused:
            self._transport.pause_reading()
            self._reading_paused = True
        elif not should_pause and self._reading_paused:
            self._transport.resume_reading()
            self._reading_paused = False

    def _touch(self) -> None:
        if self._idle_timeout_s is None:
            return
        if self._idle_handle:
            self._idle_handle.cancel()
        self._idle_handle = self._loop.call_later(self._idle_timeout_s, self._idle_expired)

    def _idle_expired(self) -> None:
        if self._pending:
            self._touch()
            return
        log.info("closing idle connection from %s:%s", *self._peer)
        self.close()

    def close(self) -> None:
        """Close this connection only; the listener keeps serving others."""
        if self._transport is not None and not self._closed:
            self._closed = True
            self._transport.abort()


def _consume_task_exception(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("request task failed: %r", task.exception())


class KafkaListener:
    """A TCP listener serving the Kafka protocol on one address."""

    def __init__(self, host: str, port: int, dispatch: Dispatch, *, max_request_bytes: int,
                 idle_timeout_s: float | None = None) -> None:
        self.host = host
        self.port = port
        self._dispatch = dispatch
        self._max_request_bytes = max_request_bytes
        self._idle_timeout_s = idle_timeout_s
        self._server: asyncio.base_events.Server | None = None
        self._connections: set[KafkaServerProtocol] = set()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()

        def factory() -> KafkaServerProtocol:
            conn = KafkaServerProtocol(self._dispatch, max_request_bytes=self._max_request_bytes,
                                       on_close=self._connections.discard,
                                       idle_timeout_s=self._idle_timeout_s)
            self._connections.add(conn)
            return conn

        self._server = await loop.create_server(factory, self.host, self.port, reuse_address=True,
                                                backlog=1024)
        if self.port == 0:
            self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for conn in list(self._connections):
            conn.close()
        if self._server is not None:
            await self._server.wait_closed()

    @property
    def connection_count(self) -> int:
        return len(self._connections)
