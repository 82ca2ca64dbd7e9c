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

#: an encoded response: one buffer, or several written in order (large record bytes are passed
#: by reference instead of being copied into one buffer), or None for no response
Response = bytes | list[Any] | None
#: dispatch(frame, peer) -> awaitable of the encoded response
Dispatch = Callable[[memoryview, tuple[str, int]], Awaitable[Response]]


#: frames up to this size are parsed out of a reusable scratch buffer; a larger frame gets its
#: own buffer of exactly its size, which the socket then fills directly (no copies in Python)
_SCRATCH_BYTES = 64 * 1024


class KafkaServerProtocol(asyncio.BufferedProtocol):
    """One client connection: reads frames, dispatches them, writes responses in order.

    Reading is zero-copy for large frames (Produce, follower Fetch responses are not read
    here): the kernel writes straight into a buffer sized for the frame, which is handed to
    dispatch as is. Small frames are cut out of a scratch buffer with one copy.
    """

    def __init__(self, dispatch: Dispatch, *, max_request_bytes: int, max_in_flight: int = 64,
                 on_close: Callable[[KafkaServerProtocol], None] | None = None,
                 idle_timeout_s: float | None = None) -> None:
        self._dispatch = dispatch
        self._max_request_bytes = max_request_bytes
        self._max_in_flight = max_in_flight
        self._on_close = on_close
        self._idle_timeout_s = idle_timeout_s
        self._scratch = bytearray(_SCRATCH_BYTES)
        self._scratch_view = memoryview(self._scratch)
        self._scratch_len = 0  # unparsed bytes at the start of the scratch buffer
        self._frame: bytearray | None = None  # a large frame being filled by the socket
        self._frame_filled = 0
        self._pending: deque[asyncio.Future[Response]] = deque()
        self._transport: asyncio.Transport | None = None
        self._peer: tuple[str, int] = ("?", 0)
        self._reading_paused = False
        self._writing_paused = False
        self._closed = False
        self._idle_handle: asyncio.TimerHandle | None = None
        self._last_active = 0.0
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
        self._frame = None
        if self._on_close:
            self._on_close(self)

    def pause_writing(self) -> None:
        self._writing_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self._writing_paused = False
        self._update_reading()
        self._flush()

    def get_buffer(self, sizehint: int) -> memoryview:
        frame = self._frame
        if frame is not None:
            return memoryview(frame)[self._frame_filled:]
        return self._scratch_view[self._scratch_len:]

    def buffer_updated(self, nbytes: int) -> None:
        self._touch()
        frame = self._frame
        if frame is not None:
            self._frame_filled += nbytes
            if self._frame_filled == len(frame):
                self._frame = None
                self._start(frame)
                if not self._closed:
                    self._update_reading()
            return
        self._scratch_len += nbytes
        self._parse_scratch()

    def data_received(self, data: bytes) -> None:
        """Feed bytes as a plain Protocol would (for callers that push data)."""
        view = memoryview(data)
        while view and not self._closed:
            target = self.get_buffer(len(view))
            n = min(len(target), len(view))
            target[:n] = view[:n]
            del target
            view = view[n:]
            self.buffer_updated(n)

    def _parse_scratch(self) -> None:
        scratch = self._scratch
        end = self._scratch_len
        pos = 0
        while end - pos >= 4:
            (size,) = _SIZE.unpack_from(scratch, pos)
            if size < 0 or size > self._max_request_bytes:
                log.warning("closing connection from %s:%s: request size %d outside 0..%d",
                            *self._peer, size, self._max_request_bytes)
                self.close()
                return
            if end - pos - 4 >= size:
                frame = bytes(self._scratch_view[pos + 4:pos + 4 + size])
                pos += 4 + size
                self._start(frame)
                if self._closed:
                    return
                continue
            if 4 + size > len(scratch):
                # too large for the scratch buffer: give it its own, filled by the socket
                have = end - pos - 4
                big = bytearray(size)
                big[:have] = self._scratch_view[pos + 4:end]
                self._frame, self._frame_filled = big, have
                pos = end
            break
        rest = end - pos
        if pos and rest:
            scratch[:rest] = self._scratch_view[pos:end]  # same length: no resize
        self._scratch_len = rest
        self._update_reading()

    # internals ---------------------------------------------------------------------------
    def _start(self, frame: bytes | bytearray) -> None:
        fut: asyncio.Future[Response] = self._loop.create_future()
        self._pending.append(fut)
        task = self._loop.create_task(self._run(frame, fut))
        task.add_done_callback(_consume_task_exception)

    async def _run(self, frame: bytes | bytearray, fut: asyncio.Future[Response]) -> None:
        try:
            # read-only: kio's native readers refuse writable buffers (our large frames)
            response = await self._dispatch(memoryview(frame).toreadonly(), self._peer)
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
            if response is None:
                continue
            if isinstance(response, list):
                # separate writes: each goes straight to the socket while its buffer is
                # empty (3.11's writelines would join the parts into one copy)
                for part in response:
                    transport.write(part)
            else:
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
        """Note activity; the idle timer re-arms itself from the last activity when it fires
        (no timer churn per read)."""
        if self._idle_timeout_s is None:
            return
        self._last_active = self._loop.time()
        if self._idle_handle is None:
            self._idle_handle = self._loop.call_at(self._last_active + self._idle_timeout_s,
                                                   self._idle_expired)

    def _idle_expired(self) -> None:
        assert self._idle_timeout_s is not None
        self._idle_handle = None
        if self._closed:
            return
        if self._pending:
            self._last_active = self._loop.time()
        deadline = self._last_active + self._idle_timeout_s
        if deadline > self._loop.time():
            self._idle_handle = self._loop.call_at(deadline, self._idle_expired)
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
