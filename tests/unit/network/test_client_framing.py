"""The client connection's frame reading (core.network.framing.FrameReader behind
core.network.client._ClientProtocol, an asyncio.BufferedProtocol).

The protocol is driven the way a socket transport drives it: get_buffer(), copy at most that
many bytes in (recv_into), buffer_updated(n). Response streams are split at every byte
boundary (and, with hypothesis, at arbitrary sets of boundaries); a frame larger than the
scratch buffer, several frames in one chunk, invalid sizes and a connection lost mid-frame are
covered, and one test runs over a real loopback socket.
"""

from __future__ import annotations

import asyncio
import itertools
import struct
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.network.client import BrokerConnectionError, KafkaConnection, _ClientProtocol
from core.network.framing import SCRATCH_BYTES, FrameReader, FrameSizeError
from core.protocol.build import build
from core.protocol.codec import encode_response, request_class, response_class

pytestmark = pytest.mark.timeout(120)

_SIZE = struct.Struct(">i")
METADATA, FETCH = 3, 1
BIG_RECORDS = bytes(i % 251 for i in range(SCRATCH_BYTES + 10_000))


# helpers -----------------------------------------------------------------------------------
class FakeTransport(asyncio.Transport):
    """Records writes; abort() marks it aborted (the real one calls connection_lost later)."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.aborted = False
        self.closed = False

    def write(self, data: Any) -> None:
        self.written.append(bytes(data))

    def abort(self) -> None:
        self.aborted = True

    def close(self) -> None:
        self.closed = True

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def is_closing(self) -> bool:
        return self.aborted or self.closed


def feed(protocol: asyncio.BufferedProtocol, chunk: bytes) -> None:
    """Deliver one chunk as the selector transport does: recv_into(get_buffer()) until empty."""
    view = memoryview(chunk)
    while view:
        target = protocol.get_buffer(-1)
        assert len(target) > 0, "get_buffer() returned an empty buffer"
        n = min(len(target), len(view))
        target[:n] = view[:n]
        del target
        view = view[n:]
        protocol.buffer_updated(n)


def split(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    points = sorted({c for c in cuts if 0 < c < len(data)})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def metadata_request() -> Any:
    return build(request_class(METADATA, 9), topics=None, allow_auto_topic_creation=False)


def fetch_request() -> Any:
    return build(request_class(FETCH, 12), replica_id=1, max_wait=500, min_bytes=1,
                 topics=[{"topic": "t", "partitions": [
                     {"partition": 0, "fetch_offset": 0, "partition_max_bytes": 1 << 20}]}])


def metadata_response(correlation_id: int, controller_id: int) -> bytes:
    body = build(response_class(METADATA, 9), brokers=[], cluster_id="c",
                 controller_id=controller_id, topics=[])
    return encode_response(METADATA, 9, correlation_id, body)


def fetch_response(correlation_id: int, records: bytes) -> bytes:
    body = build(response_class(FETCH, 12), responses=[{"topic": "t", "partitions": [
        {"partition_index": 0, "high_watermark": 5, "last_stable_offset": 5,
         "log_start_offset": 0, "records": records}]}])
    return encode_response(FETCH, 12, correlation_id, body)


def connected(max_frame_bytes: int = 1 << 20) -> tuple[KafkaConnection, _ClientProtocol,
                                                       FakeTransport]:
    """A KafkaConnection wired to a _ClientProtocol over a FakeTransport (no socket)."""
    conn = KafkaConnection("127.0.0.1", 9, max_frame_bytes=max_frame_bytes)
    protocol = _ClientProtocol(conn)
    transport = FakeTransport()
    protocol.connection_made(transport)
    conn._protocol = protocol
    return conn, protocol, transport


Check = Callable[[Any], None]


def pipeline(conn: KafkaConnection, kinds: str) -> tuple[list[asyncio.Future[Any]], bytes,
                                                          list[Check]]:
    """Send one request per letter of `kinds` (m: Metadata, f: Fetch with records larger than
    the scratch buffer); returns the futures, the response stream and a check per response."""
    futures, stream, checks = [], bytearray(), []
    for i, kind in enumerate(kinds):
        if kind == "m":
            fut = conn.send_nowait(metadata_request(), METADATA, 9)
            stream += metadata_response(i, controller_id=100 + i)
            checks.append(lambda r, i=i: _check_metadata(r, 100 + i))
        else:
            fut = conn.send_nowait(fetch_request(), FETCH, 12)
            stream += fetch_response(i, BIG_RECORDS)
            checks.append(_check_fetch)
        assert fut is not None
        futures.append(fut)
    return futures, bytes(stream), checks


def _check_metadata(response: Any, controller_id: int) -> None:
    assert response.controller_id == controller_id


def _check_fetch(response: Any) -> None:
    assert response.responses[0].partitions[0].records == BIG_RECORDS


def assert_resolved(futures: list[asyncio.Future[Any]], checks: list[Check]) -> None:
    for fut, check in zip(futures, checks, strict=True):
        assert fut.done() and not fut.cancelled()
        check(fut.result())


def run_split(kinds: str, cuts: Iterable[int]) -> None:
    async def main() -> None:
        conn, protocol, transport = connected()
        futures, stream, checks = pipeline(conn, kinds)
        for chunk in split(stream, cuts):
            feed(protocol, chunk)
        assert_resolved(futures, checks)
        assert not conn.closed and not transport.aborted and conn.in_flight == 0
        assert protocol._reader.buffered == 0
    asyncio.run(main())


# splitting ---------------------------------------------------------------------------------
def test_small_frames_split_at_every_byte_boundary() -> None:
    async def main() -> None:
        stream = pipeline(connected()[0], "mmm")[1]
        for cut in range(1, len(stream)):
            conn, protocol, _transport = connected()
            futures, data, checks = pipeline(conn, "mmm")
            feed(protocol, data[:cut])
            feed(protocol, data[cut:])
            assert_resolved(futures, checks)
            assert protocol._reader.buffered == 0
    asyncio.run(main())


async def _stream_of(conn: KafkaConnection, kinds: str) -> bytes:
    return pipeline(conn, kinds)[1]


def test_several_frames_in_one_chunk() -> None:
    run_split("mmmfmm", [])


def test_frame_larger_than_the_scratch_buffer_gets_its_own_buffer() -> None:
    async def main() -> None:
        conn, protocol, _transport = connected()
        futures, stream, checks = pipeline(conn, "mfm")
        first = len(metadata_response(0, 100))
        feed(protocol, stream[:first + 100])  # the first frame and the start of the big one
        assert futures[0].done() and not futures[1].done()
        target = protocol.get_buffer(-1)
        # the rest of the large frame, exactly: the socket fills it in place
        assert len(target) == len(fetch_response(1, BIG_RECORDS)) - 100
        del target
        feed(protocol, stream[first + 100:])
        assert_resolved(futures, checks)
    asyncio.run(main())


def test_large_frame_split_at_its_edges() -> None:
    first = len(metadata_response(0, 100))
    second = first + len(fetch_response(1, BIG_RECORDS))
    edges = [first, second, SCRATCH_BYTES, first + SCRATCH_BYTES]
    for edge in edges:
        for delta in range(-6, 7):
            run_split("mfm", [edge + delta])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kinds=st.text(alphabet="mf", min_size=1, max_size=5),
       fractions=st.lists(st.floats(min_value=0, max_value=1), max_size=12))
def test_any_split_of_any_pipeline_resolves_every_request_in_order(
        kinds: str, fractions: list[float]) -> None:
    conn, _protocol, _transport = connected()
    total = len(asyncio.run(_stream_of(conn, kinds)))
    run_split(kinds, [int(f * total) for f in fractions])


@settings(max_examples=200, deadline=None)
@given(frames=st.lists(st.binary(max_size=80), max_size=8),
       cuts=st.lists(st.integers(min_value=0, max_value=800), max_size=10))
def test_reader_with_a_tiny_scratch_buffer_delivers_every_frame(
        frames: list[bytes], cuts: list[int]) -> None:
    """With a 16-byte scratch buffer most frames take the large-frame path."""
    got: list[bytes] = []
    reader = FrameReader(lambda f: got.append(bytes(f)), min_size=0, max_size=1000,
                         scratch_bytes=16)
    stream = b"".join(_SIZE.pack(len(f)) + f for f in frames)
    for chunk in split(stream, cuts):
        reader.feed(chunk)
    assert got == frames
    assert reader.buffered == 0


def test_reader_large_frame_path_split_at_every_byte_boundary() -> None:
    frames = [b"a" * 40, b"", b"bcd", bytes(range(100)), b"e" * 12]
    stream = b"".join(_SIZE.pack(len(f)) + f for f in frames)
    for cut in range(1, len(stream)):
        got: list[bytes] = []
        reader = FrameReader(lambda f, got=got: got.append(bytes(f)), min_size=0,
                             max_size=1000, scratch_bytes=16)
        reader.feed(stream[:cut])
        reader.feed(stream[cut:])
        assert got == frames, cut


def test_large_frames_are_handed_over_read_only() -> None:
    got: list[Any] = []
    reader = FrameReader(got.append, min_size=0, max_size=1000, scratch_bytes=16)
    reader.feed(_SIZE.pack(100) + b"x" * 100 + _SIZE.pack(3) + b"abc")
    assert isinstance(got[0], memoryview) and got[0].readonly and bytes(got[0]) == b"x" * 100
    assert got[1] == b"abc"


# errors ------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [-1, -(2 ** 31), 0, 3, 4097])
def test_invalid_frame_size_fails_the_connection_and_closes_it(size: int) -> None:
    async def main() -> None:
        conn, protocol, transport = connected(max_frame_bytes=4096)
        futures, stream, checks = pipeline(conn, "mm")
        first = len(metadata_response(0, 100))
        # a good frame, then a bad size in the same chunk, then bytes that must be ignored
        feed(protocol, stream[:first] + _SIZE.pack(size) + b"\0" * 64)
        assert_resolved(futures[:1], checks[:1])
        with pytest.raises(BrokerConnectionError, match=f"invalid response frame size {size}"):
            futures[1].result()
        assert conn.closed and transport.aborted
        with pytest.raises(BrokerConnectionError):
            conn.send_nowait(metadata_request(), METADATA, 9)
        feed(protocol, stream[first:])  # late bytes after the failure are ignored
    asyncio.run(main())


def test_oversized_frame_is_refused_before_allocation() -> None:
    reader = FrameReader(lambda f: None, min_size=4, max_size=1 << 20)
    with pytest.raises(FrameSizeError) as info:
        reader.feed(_SIZE.pack(2 ** 31 - 1) + b"\0" * 10)
    assert info.value.size == 2 ** 31 - 1
    assert reader.closed and reader.buffered == 0
    assert len(reader.get_buffer()) == SCRATCH_BYTES  # nothing sized for the frame


def test_connection_lost_mid_frame_fails_the_pending_requests() -> None:
    async def main() -> None:
        conn, protocol, _transport = connected()
        futures, stream, checks = pipeline(conn, "mfm")
        first = len(metadata_response(0, 100))
        feed(protocol, stream[:first + SCRATCH_BYTES + 5])  # into the large frame's buffer
        assert protocol._reader.buffered > 0
        protocol.connection_lost(ConnectionResetError("reset by peer"))
        assert_resolved(futures[:1], checks[:1])
        for fut in futures[1:]:
            with pytest.raises(BrokerConnectionError, match="connection lost: reset by peer"):
                fut.result()
        assert conn.closed and protocol._reader.buffered == 0
    asyncio.run(main())


def test_writing_pause_and_resume_release_drain() -> None:
    async def main() -> None:
        _conn, protocol, _transport = connected()
        await protocol.drain()  # not paused: returns at once
        protocol.pause_writing()
        waiter = asyncio.ensure_future(protocol.drain())
        await asyncio.sleep(0)
        assert not waiter.done()
        protocol.resume_writing()
        await asyncio.wait_for(waiter, 1)
        protocol.pause_writing()
        waiter = asyncio.ensure_future(protocol.drain())
        await asyncio.sleep(0)
        protocol.connection_lost(None)  # a lost connection releases drain too
        await asyncio.wait_for(waiter, 1)
    asyncio.run(main())


# a real socket -----------------------------------------------------------------------------
def test_pipelined_small_and_large_responses_over_a_real_socket() -> None:
    """A raw server writes the responses in odd-sized pieces; the transport reads them into
    the protocol's buffers (recv_into) and every request gets its own response."""
    kinds = "mfmmfm"

    async def main() -> None:
        requests_seen = asyncio.Event()

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            for _ in kinds:
                (size,) = _SIZE.unpack(await reader.readexactly(4))
                await reader.readexactly(size)
            requests_seen.set()
            stream = bytearray()
            for i, kind in enumerate(kinds):
                stream += metadata_response(i, 100 + i) if kind == "m" \
                    else fetch_response(i, BIG_RECORDS)
            pos, step = 0, 1
            while pos < len(stream):
                writer.write(stream[pos:pos + step])
                await writer.drain()
                pos += step
                step = step * 7 % 50_001 + 1
            await reader.read()  # until the client closes
            writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        conn = await KafkaConnection.connect("127.0.0.1", port, negotiate=False, timeout=10)
        results = await asyncio.gather(*(
            conn.send(metadata_request() if kind == "m" else fetch_request())
            for kind in kinds))
        for i, (kind, result) in enumerate(zip(kinds, results, strict=True)):
            if kind == "m":
                _check_metadata(result, 100 + i)
            else:
                _check_fetch(result)
        assert requests_seen.is_set()
        await conn.close()
        server.close()
        await server.wait_closed()
    asyncio.run(main())
