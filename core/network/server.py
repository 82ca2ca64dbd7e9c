"""The asyncio listener: framing, ordered responses, backpressure and limits.

One `KafkaServerProtocol` per connection. Requests are pipelined: each is dispatched as soon as
its frame is complete, but responses are written strictly in request order, as Kafka clients
require. A frame larger than socket.request.max.bytes (or with a negative size) is refused
before anything is allocated for it, and a malformed frame closes only that connection.

A response part may be a `FileRegion` (Fetch record bytes still in a segment file): it goes from
the file to the socket with os.sendfile, in order with the parts around it; whatever the
socket cannot take at once is sent when it becomes writable, and later responses wait for it.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from core.network.framing import Frame, FrameReader, FrameSizeError

log = logging.getLogger(__name__)

#: an encoded response: one buffer, or several written in order (large record bytes are passed
#: by reference instead of being copied into one buffer, or as a FileRegion to sendfile), or
#: None for no response
Response = bytes | list[Any] | None
#: dispatch(frame, peer) -> awaitable of the encoded response
Dispatch = Callable[[memoryview, tuple[str, int]], Awaitable[Response]]


#: os.sendfile from a file to a socket (Linux, macOS, BSDs); elsewhere regions are read and written
HAVE_SENDFILE = hasattr(os, "sendfile")
#: errors meaning "sendfile cannot do this here" (not "the peer went away"): read and write instead
_SENDFILE_UNSUPPORTED = {errno.EINVAL, errno.ENOSYS, errno.ENOTSOCK, errno.EOPNOTSUPP,
                         getattr(errno, "ENOTSUP", errno.EOPNOTSUPP)}


class FileRegion:
    """``size`` bytes of an open file from ``position``, to be written to a socket without
    passing through Python (os.sendfile), e.g. a Fetch response's records.

    It holds its own duplicate of the file descriptor, so the bytes stay readable even if the
    file is closed or unlinked before the response is written. ``len()`` is the byte count, so
    an encoder can write a length prefix for it and keep the object by reference as one part of
    the response (core.protocol.codec.encode_response_parts).
    """

    __slots__ = ("fd", "position", "size")

    def __init__(self, fd: int, position: int, size: int) -> None:
        self.fd = os.dup(fd)
        self.position = position
        self.size = size

    def __len__(self) -> int:
        return self.size

    def read(self) -> bytes:
        """The region's (remaining) bytes, read with os.pread (the fallback to sendfile)."""
        data = os.pread(self.fd, self.size, self.position)
        if len(data) != self.size:
            raise OSError(errno.EIO, f"file region shrank: {len(data)} of {self.size} bytes")
        return data

    def close(self) -> None:
        """Release the duplicate descriptor (idempotent)."""
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)

    def __del__(self) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"FileRegion(fd={self.fd}, position={self.position}, size={self.size})"


class KafkaServerProtocol(asyncio.BufferedProtocol):
    """One client connection: reads frames, dispatches them, writes responses in order.

    Reading is zero-copy for large frames (Produce, follower Fetch responses are not read
    here): the kernel writes straight into a buffer sized for the frame, which is handed to
    dispatch as is. Small frames are cut out of a scratch buffer with one copy (FrameReader,
    shared with the client connection).
    """

    def __init__(self, dispatch: Dispatch, *, max_request_bytes: int, max_in_flight: int = 64,
                 on_close: Callable[[KafkaServerProtocol], None] | None = None,
                 idle_timeout_s: float | None = None) -> None:
        self._dispatch = dispatch
        self._max_request_bytes = max_request_bytes
        self._max_in_flight = max_in_flight
        self._on_close = on_close
        self._idle_timeout_s = idle_timeout_s
        self._reader = FrameReader(self._start, min_size=0, max_size=max_request_bytes)
        self._pending: deque[asyncio.Future[Response]] = deque()
        self._transport: asyncio.Transport | None = None
        self._peer: tuple[str, int] = ("?", 0)
        self._reading_paused = False
        self._writing_paused = False
        self._closed = False
        self._idle_handle: asyncio.TimerHandle | None = None
        self._last_active = 0.0
        self._loop = asyncio.get_event_loop()
        #: parts of the response being written that still wait for the socket (a FileRegion
        #: the socket could not take at once, and what follows it)
        self._out: deque[Any] = deque()
        self._sock_fd: int | None = None  # the socket, for os.sendfile
        self._wait_fd: int | None = None  # a duplicate of it, to wait for writability on
        self._waiting = False
        #: bytes sent with os.sendfile / read and written instead (for tests and benchmarks)
        self.sendfile_bytes = 0
        self.fallback_bytes = 0

    # asyncio callbacks -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        peer = transport.get_extra_info("peername")
        self._peer = (peer[0], peer[1]) if peer else ("?", 0)
        transport.set_write_buffer_limits(high=4 * 1024 * 1024)
        sock = transport.get_extra_info("socket")
        if HAVE_SENDFILE and sock is not None and transport.get_extra_info("sslcontext") is None:
            self._sock_fd = sock.fileno()
        self._touch()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        if self._idle_handle:
            self._idle_handle.cancel()
        for fut in self._pending:
            fut.cancel()
        self._pending.clear()
        self._reader.close()
        self._stop_waiting()
        if self._wait_fd is not None:
            os.close(self._wait_fd)
            self._wait_fd = None
        for part in self._out:
            if isinstance(part, FileRegion):
                part.close()
        self._out.clear()
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
        return self._reader.get_buffer()

    def buffer_updated(self, nbytes: int) -> None:
        self._take(self._reader.buffer_updated, nbytes)

    def data_received(self, data: bytes) -> None:
        """Feed bytes as a plain Protocol would (for callers that push data)."""
        self._take(self._reader.feed, data)

    def _take(self, step: Callable[[Any], None], arg: Any) -> None:
        """Hand the reader new bytes (`step(arg)`); a frame size outside the limits closes
        this connection, else reading pauses or resumes with the requests in flight."""
        self._touch()
        try:
            step(arg)
        except FrameSizeError as exc:
            log.warning("closing connection from %s:%s: request size %d outside 0..%d",
                        *self._peer, exc.size, self._max_request_bytes)
            self.close()
            return
        self._update_reading()

    # internals ---------------------------------------------------------------------------
    def _start(self, frame: Frame) -> None:
        fut: asyncio.Future[Response] = self._loop.create_future()
        self._pending.append(fut)
        task = self._loop.create_task(self._run(frame, fut))
        task.add_done_callback(_consume_task_exception)

    async def _run(self, frame: Frame, fut: asyncio.Future[Response]) -> None:
        try:
            # FrameReader hands over bytes or a read-only view: kio's native readers refuse
            # writable buffers
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
        if self._out and not self._write_out(transport):
            return  # still waiting for the socket: later responses wait behind it
        pending = self._pending
        while pending and pending[0].done():
            fut = pending.popleft()
            if fut.cancelled():
                continue
            response = fut.result()
            if response is None:
                continue
            if isinstance(response, list):
                if any(type(part) is FileRegion for part in response):
                    self._out.extend(response)
                    if not self._write_out(transport):
                        return
                    continue
                # separate writes: each goes straight to the socket while its buffer is
                # empty (3.11's writelines would join the parts into one copy)
                for part in response:
                    transport.write(part)
            else:
                transport.write(response)
        self._update_reading()

    def _write_out(self, transport: asyncio.Transport) -> bool:
        """Write the queued parts in order; False while a FileRegion waits for the socket."""
        out = self._out
        while out:
            part = out[0]
            if type(part) is FileRegion:
                if not self._send_region(transport, part):
                    return False
                part.close()
            else:
                transport.write(part)
            out.popleft()
        return True

    def _send_region(self, transport: asyncio.Transport, region: FileRegion) -> bool:
        """Send a region with os.sendfile as far as the socket takes it; True when done.

        Only once the transport's own buffer is empty (the bytes before the region must go
        first). Where sendfile is unavailable the region is read and written instead.
        """
        if self._sock_fd is None:
            return self._write_region_copy(transport, region)
        if transport.get_write_buffer_size():
            self._wait_writable()
            return False
        while region.size:
            try:
                sent = os.sendfile(self._sock_fd, region.fd, region.position, region.size)
            except (BlockingIOError, InterruptedError):
                self._wait_writable()
                return False
            except OSError as exc:
                if exc.errno in _SENDFILE_UNSUPPORTED and self.sendfile_bytes == 0:
                    self._sock_fd = None  # this connection cannot sendfile: copy from now on
                    return self._write_region_copy(transport, region)
                log.warning("closing connection from %s:%s: sendfile failed: %s",
                            *self._peer, exc)
                self.close()
                return False
            if sent == 0:  # end of file: the file shrank under the region
                log.error("closing connection from %s:%s: %r ends early (file truncated)",
                          *self._peer, region)
                self.close()
                return False
            region.position += sent
            region.size -= sent
            self.sendfile_bytes += sent
        return True

    def _write_region_copy(self, transport: asyncio.Transport, region: FileRegion) -> bool:
        try:
            data = region.read()
        except OSError as exc:
            log.error("closing connection from %s:%s: cannot read %r: %s", *self._peer,
                      region, exc)
            self.close()
            return False
        transport.write(data)
        self.fallback_bytes += len(data)
        region.size = 0
        return True

    def _wait_writable(self) -> None:
        """Call _flush again once the socket can take more (on a duplicate descriptor: the
        loop refuses a second watcher on a transport's own socket)."""
        if self._waiting or self._sock_fd is None:
            return
        if self._wait_fd is None:
            self._wait_fd = os.dup(self._sock_fd)
        self._loop.add_writer(self._wait_fd, self._on_writable)
        self._waiting = True

    def _on_writable(self) -> None:
        self._stop_waiting()
        self._flush()

    def _stop_waiting(self) -> None:
        if self._waiting and self._wait_fd is not None:
            self._loop.remove_writer(self._wait_fd)
        self._waiting = False

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
            self._reader.close()
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
