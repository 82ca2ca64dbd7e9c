"""The asyncio client connection to one Kafka broker (ours or any other).

`KafkaConnection` frames requests with correlation ids, pipelines them (any number in flight)
and matches responses in order, as Kafka guarantees per connection. On connect it negotiates
API versions with ApiVersions v3, falling back to v0 when the broker answers
UNSUPPORTED_VERSION. It is used by the admin client, the console and between brokers
(replica fetchers, forwarding to the controller), so it stays small and general:

    conn = await KafkaConnection.connect("127.0.0.1", 9092, client_id="me", timeout=5)
    resp = await conn.request(3, topics=None)             # Metadata, highest common version
    resp = await conn.send(entity)                         # a prebuilt kio request entity
    await conn.close()

Failures are `KafkaError`s that name the broker: `BrokerConnectionError` (cannot connect,
connection lost), `RequestTimedOutError` (no response in time), `UnsupportedVersionError`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import struct
from collections import deque
from collections.abc import Mapping
from typing import Any

from core.common.errors import (
    ErrorCode,
    KafkaError,
    RequestTimedOutError,
    UnsupportedVersionError,
)
from core.network.framing import Frame, FrameReader, FrameSizeError
from core.protocol.build import build
from core.protocol.codec import (
    decode_response,
    encode_request,
    kio_versions,
    request_class,
    response_class,
)

log = logging.getLogger(__name__)

__all__ = [
    "BrokerConnectionError",
    "ConnectionPool",
    "KafkaConnection",
]

API_VERSIONS = 18
PRODUCE = 0
CLIENT_SOFTWARE_NAME = "kaflab"
CLIENT_SOFTWARE_VERSION = "0.1.0"
DEFAULT_MAX_FRAME = 256 * 1024 * 1024
_SIZE = struct.Struct(">i")
_CORR_ERR = struct.Struct(">ih")


class BrokerConnectionError(KafkaError):
    """The broker cannot be reached, or the connection to it was lost (NETWORK_EXCEPTION)."""

    code = ErrorCode.network_exception


@dataclasses.dataclass(slots=True)
class _Pending:
    correlation_id: int
    api_key: int
    version: int
    future: asyncio.Future[Any]


class _ClientProtocol(asyncio.BufferedProtocol):
    """Frame reader: resolves the oldest pending request with each response frame.

    The socket reads straight into a `FrameReader`'s buffers: a large response (a follower's
    Fetch) into a buffer of exactly its size, small ones into a reusable scratch buffer.
    """

    def __init__(self, conn: KafkaConnection) -> None:
        self._conn = conn
        self._reader = FrameReader(self._on_frame, min_size=4, max_size=conn.max_frame_bytes)
        self.transport: asyncio.Transport | None = None
        self._paused = False
        self._drain_waiters: deque[asyncio.Future[None]] = deque()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.set_write_buffer_limits(high=4 * 1024 * 1024)

    def connection_lost(self, exc: Exception | None) -> None:
        self._reader.close()
        self._conn._on_lost(exc)
        for waiter in self._drain_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._drain_waiters.clear()

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        while self._drain_waiters:
            waiter = self._drain_waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    async def drain(self) -> None:
        if not self._paused:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._drain_waiters.append(waiter)
        await waiter

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._reader.get_buffer()

    def buffer_updated(self, nbytes: int) -> None:
        try:
            self._reader.buffer_updated(nbytes)
        except FrameSizeError as exc:
            self._refuse(exc)

    def data_received(self, data: bytes) -> None:
        """Feed bytes as a plain Protocol would (for callers that push data)."""
        try:
            self._reader.feed(data)
        except FrameSizeError as exc:
            self._refuse(exc)

    def _on_frame(self, frame: Frame) -> None:
        self._conn._on_frame(frame)
        if self._conn.closed:
            self._reader.close()

    def _refuse(self, exc: FrameSizeError) -> None:
        self._conn._fail(BrokerConnectionError(
            f"{self._conn.address}: invalid response frame size {exc.size}"))


class KafkaConnection:
    """One asyncio connection to one broker; create it with `await KafkaConnection.connect()`."""

    def __init__(self, host: str, port: int, *, client_id: str | None = "kaflab",
                 timeout: float = 30.0, max_frame_bytes: int = DEFAULT_MAX_FRAME) -> None:
        self.host = host
        self.port = port
        self.client_id = client_id
        self.timeout = timeout
        self.max_frame_bytes = max_frame_bytes
        #: api_key -> (min_version, max_version) the broker supports; None before negotiation.
        self.api_versions: dict[int, tuple[int, int]] | None = None
        self._protocol: _ClientProtocol | None = None
        self._pending: deque[_Pending] = deque()
        self._next_correlation = 0
        self._closed = False
        self._close_exc: BaseException | None = None

    # construction -------------------------------------------------------------------------
    @classmethod
    async def connect(cls, host: str, port: int, *, client_id: str | None = "kaflab",
                      timeout: float = 30.0, negotiate: bool = True,
                      max_frame_bytes: int = DEFAULT_MAX_FRAME) -> KafkaConnection:
        """Open a connection and (unless negotiate=False) negotiate API versions.

        `timeout` bounds the connect, the negotiation, and is the default per-request timeout.
        """
        conn = cls(host, port, client_id=client_id, timeout=timeout,
                   max_frame_bytes=max_frame_bytes)
        loop = asyncio.get_running_loop()
        try:
            _transport, protocol = await asyncio.wait_for(
                loop.create_connection(lambda: _ClientProtocol(conn), host, port), timeout)
        except TimeoutError:
            raise BrokerConnectionError(
                f"{host}:{port}: connection timed out after {timeout:g}s") from None
        except OSError as exc:
            raise BrokerConnectionError(f"{host}:{port}: cannot connect: {exc}") from None
        conn._protocol = protocol
        if negotiate:
            try:
                await conn.negotiate_versions()
            except BaseException:
                conn.close_nowait()
                raise
        return conn

    async def negotiate_versions(self) -> dict[int, tuple[int, int]]:
        """ApiVersions v3 (v0 if the broker refuses v3); stores and returns the broker's ranges."""
        version = 3
        for _attempt in range(3):
            body = build(request_class(API_VERSIONS, version),
                         client_software_name=CLIENT_SOFTWARE_NAME,
                         client_software_version=CLIENT_SOFTWARE_VERSION)
            response = await self.send(body, version=version)
            if response.error_code == ErrorCode.unsupported_version:
                ranges = {int(k.api_key): (int(k.min_version), int(k.max_version))
                          for k in response.api_keys}
                _lo, hi = ranges.get(API_VERSIONS, (0, 0))
                if version == 0:
                    break
                version = max(0, min(hi, version - 1))
                continue
            if response.error_code != ErrorCode.none:
                raise_for_code(response.error_code, None, f"{self.address}: ApiVersions")
            self.api_versions = {int(k.api_key): (int(k.min_version), int(k.max_version))
                                 for k in response.api_keys}
            return self.api_versions
        raise UnsupportedVersionError(f"{self.address}: ApiVersions negotiation failed")

    # properties ---------------------------------------------------------------------------
    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    def supports(self, api_key: int, version: int | None = None) -> bool:
        """Whether the broker advertises `api_key` (at `version`, if given)."""
        if self.api_versions is None:
            return True
        rng = self.api_versions.get(api_key)
        if rng is None:
            return False
        return version is None or rng[0] <= version <= rng[1]

    def version_for(self, api_key: int, max_version: int | None = None,
                    min_version: int | None = None) -> int:
        """Highest version that both the broker and kio support (capped by max_version)."""
        try:
            lo, hi = kio_versions(api_key)
        except KeyError:
            raise UnsupportedVersionError(f"unknown api key {api_key}") from None
        if self.api_versions is not None:
            rng = self.api_versions.get(api_key)
            if rng is None:
                raise UnsupportedVersionError(
                    f"{self.address}: the broker does not support api key {api_key}")
            lo, hi = max(lo, rng[0]), min(hi, rng[1])
        if max_version is not None:
            hi = min(hi, max_version)
        if min_version is not None:
            lo = max(lo, min_version)
        if hi < lo:
            raise UnsupportedVersionError(
                f"{self.address}: no common version for api key {api_key} "
                f"(broker {self.api_versions and self.api_versions.get(api_key)}, "
                f"client {lo}..{hi})")
        return hi

    def request_class(self, api_key: int, max_version: int | None = None) -> tuple[type, int]:
        """(kio request class, version) for the highest version both sides support."""
        version = self.version_for(api_key, max_version)
        return request_class(api_key, version), version

    # requests -----------------------------------------------------------------------------
    async def request(self, api_key: int, *, version: int | None = None,
                      max_version: int | None = None, min_version: int | None = None,
                      timeout: float | None = None, fields: Mapping[str, Any] | None = None,
                      **kw_fields: Any) -> Any:
        """Build a request from fields at the chosen version (see protocol.build.build); send it.

        Without `version`, uses the highest version both sides support, capped by max_version.
        `timeout` is this call's client-side timeout in seconds. Requests that have a body
        field named ``timeout`` (Produce, CreateTopics, ...) must pass it in ``fields=``.
        """
        if version is None:
            version = self.version_for(api_key, max_version, min_version)
        cls = request_class(api_key, version)
        body_fields = dict(fields or {})
        body_fields.update(kw_fields)
        has_timeout_field = any(f.name == "timeout" for f in dataclasses.fields(cls))
        if timeout is not None and has_timeout_field and "timeout" not in (fields or {}):
            raise TypeError(f"{cls.__name__} has a body field 'timeout' (ms): pass it in "
                            "fields={'timeout': ...}; the timeout= keyword is the client's")
        body = build(cls, **body_fields)
        return await self.send(body, version=version, timeout=timeout)

    async def send(self, request: Any, version: int | None = None, *,
                   timeout: float | None = None) -> Any:
        """Send a kio request entity and await its response entity.

        The version sent is `version` if given, else the entity's own class version when the
        broker supports it, else the highest version both sides support (the entity is then
        rebuilt for it; fields that version lacks are dropped). Produce with acks=0 returns
        None without waiting (the broker sends no response).
        """
        cls = type(request)
        api_key = int(cls.__api_key__)
        own = int(cls.__version__)
        if version is None:
            version = own if self.supports(api_key, own) else self.version_for(api_key)
        if version != own:
            request = convert(request, request_class(api_key, version))
        future = self.send_nowait(request, api_key, version)
        if future is None:
            return None
        return await self._wait(future, api_key, version, timeout)

    def send_nowait(self, request: Any, api_key: int, version: int) -> asyncio.Future[Any] | None:
        """Write one request now and return the future of its response (None for acks=0)."""
        if self._closed:
            raise BrokerConnectionError(
                f"{self.address}: connection is closed"
                + (f" ({self._close_exc})" if self._close_exc else ""))
        assert self._protocol is not None and self._protocol.transport is not None
        correlation_id = self._next_correlation
        self._next_correlation = (correlation_id + 1) & 0x7FFFFFFF
        frame = encode_request(api_key, version, correlation_id, self.client_id, request)
        expects_response = not (api_key == PRODUCE and int(request.acks) == 0)
        future: asyncio.Future[Any] | None = None
        if expects_response:
            future = asyncio.get_running_loop().create_future()
            self._pending.append(_Pending(correlation_id, api_key, version, future))
        self._protocol.transport.write(frame)
        return future

    async def _wait(self, future: asyncio.Future[Any], api_key: int, version: int,
                    timeout: float | None) -> Any:
        timeout = self.timeout if timeout is None else timeout
        assert self._protocol is not None
        await self._protocol.drain()
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            # The slot stays in the queue so later responses still match in order; its
            # response, if it ever comes, is dropped.
            if not future.done():
                future.cancel()
            raise RequestTimedOutError(
                f"{self.address}: no response to api key {api_key} v{version} "
                f"within {timeout:g}s") from None

    # protocol callbacks -------------------------------------------------------------------
    def _on_frame(self, frame: Frame) -> None:
        if not self._pending:
            self._fail(BrokerConnectionError(f"{self.address}: unexpected response frame"))
            return
        pending = self._pending.popleft()
        correlation_id, error_code = _CORR_ERR.unpack_from(frame, 0) if len(frame) >= 6 \
            else (_SIZE.unpack_from(frame, 0)[0], 0)
        if correlation_id != pending.correlation_id:
            exc = BrokerConnectionError(
                f"{self.address}: correlation id mismatch (expected "
                f"{pending.correlation_id}, got {correlation_id})")
            if not pending.future.done():
                pending.future.set_exception(exc)
            self._fail(exc)
            return
        if pending.future.done():  # timed out or cancelled: drop the late response
            return
        version = pending.version
        if pending.api_key == API_VERSIONS and error_code == ErrorCode.unsupported_version:
            version = 0  # brokers answer an unsupported ApiVersions with a v0 body
        try:
            _cid, body = decode_response(pending.api_key, version, frame)
        except Exception as exc:  # kio raises several types for malformed input
            pending.future.set_exception(BrokerConnectionError(
                f"{self.address}: cannot decode response to api key {pending.api_key} "
                f"v{version}: {exc!r}"))
            return
        pending.future.set_result(body)

    def _on_lost(self, exc: Exception | None) -> None:
        if not self._closed:
            reason = BrokerConnectionError(
                f"{self.address}: connection lost" + (f": {exc}" if exc else ""))
            self._fail(reason, close_transport=False)

    def _fail(self, exc: BaseException, close_transport: bool = True) -> None:
        self._closed = True
        self._close_exc = exc
        while self._pending:
            pending = self._pending.popleft()
            if not pending.future.done():
                pending.future.set_exception(exc)
        if close_transport and self._protocol and self._protocol.transport:
            self._protocol.transport.abort()

    # closing ------------------------------------------------------------------------------
    def close_nowait(self) -> None:
        """Close at once; requests in flight fail with BrokerConnectionError."""
        if self._closed:
            return
        self._closed = True
        exc = BrokerConnectionError(f"{self.address}: connection closed")
        self._close_exc = exc
        while self._pending:
            pending = self._pending.popleft()
            if not pending.future.done():
                pending.future.set_exception(exc)
                pending.future.exception()  # mark retrieved: nobody may be awaiting it
        if self._protocol and self._protocol.transport:
            self._protocol.transport.close()

    async def close(self) -> None:
        """Close the connection (requests in flight fail) and let the transport finish."""
        self.close_nowait()
        await asyncio.sleep(0)

    async def __aenter__(self) -> KafkaConnection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self._pending)} in flight"
        return f"<KafkaConnection {self.address} {state}>"


def convert(entity: Any, target: type) -> Any:
    """Rebuild a kio entity as another version's class (fields the target lacks are dropped)."""
    return build(target, **_to_fields(entity))


def _to_fields(entity: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(entity):
        value = getattr(entity, f.name)
        if dataclasses.is_dataclass(value):
            value = _to_fields(value)
        elif isinstance(value, tuple) and value and dataclasses.is_dataclass(value[0]):
            value = [_to_fields(v) for v in value]
        out[f.name] = value
    return out


def raise_for_code(code: int | ErrorCode, message: str | None, context: str) -> None:
    """Raise the KafkaError subclass for `code` (no-op for NONE)."""
    code = ErrorCode(int(code))
    if code == ErrorCode.none:
        return
    cls = _class_for_code().get(code, KafkaError)
    text = f"{context}: {code.name.upper()}" + (f": {message}" if message else "")
    raise cls(text, code)


_CODE_CLASSES: dict[ErrorCode, type[KafkaError]] | None = None


def _class_for_code() -> Mapping[ErrorCode, type[KafkaError]]:
    global _CODE_CLASSES
    if _CODE_CLASSES is None:
        import core.common.errors as errors_module

        classes: dict[ErrorCode, type[KafkaError]] = {}
        for value in vars(errors_module).values():
            if isinstance(value, type) and issubclass(value, KafkaError) and value is not \
                    KafkaError:
                classes.setdefault(value.code, value)
        _CODE_CLASSES = classes
    return _CODE_CLASSES


class ConnectionPool:
    """Reusable connections keyed by (host, port); one connect at a time per address."""

    def __init__(self, *, client_id: str | None = "kaflab", timeout: float = 30.0) -> None:
        self.client_id = client_id
        self.timeout = timeout
        self._conns: dict[tuple[str, int], KafkaConnection] = {}
        self._locks: dict[tuple[str, int], asyncio.Lock] = {}
        self._closed = False

    async def get(self, host: str, port: int) -> KafkaConnection:
        """A live connection to host:port (connecting, or reconnecting, if needed)."""
        if self._closed:
            raise BrokerConnectionError(f"{host}:{port}: connection pool is closed")
        key = (host, port)
        conn = self._conns.get(key)
        if conn is not None and not conn.closed:
            return conn
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            conn = self._conns.get(key)
            if conn is None or conn.closed:
                conn = await KafkaConnection.connect(host, port, client_id=self.client_id,
                                                     timeout=self.timeout)
                self._conns[key] = conn
            return conn

    def discard(self, host: str, port: int) -> None:
        """Close and forget the connection to host:port (e.g. after a timeout)."""
        conn = self._conns.pop((host, port), None)
        if conn is not None:
            conn.close_nowait()

    async def close(self) -> None:
        self._closed = True
        conns = list(self._conns.values())
        self._conns.clear()
        for conn in conns:
            await conn.close()


# response_class is re-exported for callers that decode responses themselves.
__all__ += ["convert", "raise_for_code", "response_class"]
