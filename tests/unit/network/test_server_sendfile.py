"""The listener sends FileRegion parts with os.sendfile, in order with everything else.

A real listener on 127.0.0.1 and a real client socket: pipelined requests whose responses mix
file regions (several MiB, more than a socket takes at once) and plain bytes must arrive
byte-identical and in request order, also when the client stops reading for a while.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
from pathlib import Path

import pytest

from core.broker.handlers.fetch import CheckedRanges
from core.network.server import HAVE_SENDFILE, FileRegion, KafkaListener

pytestmark = pytest.mark.timeout(60)

_SIZE = struct.Struct(">i")


def _frame(*parts: bytes) -> bytes:
    body = b"".join(parts)
    return _SIZE.pack(len(body)) + body


@pytest.fixture
def data_file(tmp_path: Path) -> tuple[Path, bytes]:
    data = os.urandom(6 * 1024 * 1024)
    path = tmp_path / "segment.log"
    path.write_bytes(data)
    return path, data


def _run(data_file: tuple[Path, bytes], requests: list[tuple[int, int, int]],
         pause_s: float) -> tuple[list[bytes], list[bytes], int, int]:
    """Serve ``requests`` (id, position, size; size 0 = a small plain response), read the
    responses after ``pause_s``; returns (received, expected, sendfile_bytes, copied bytes)."""
    path, data = data_file
    expected = []
    for rid, pos, size in requests:
        head = struct.pack(">i", rid) + b"head"
        expected.append(_frame(head, data[pos:pos + size], b"tail") if size
                        else _frame(head, b"small answer"))

    async def main() -> tuple[list[bytes], int, int]:
        with open(path, "rb") as f:
            async def dispatch(frame: memoryview, peer: tuple[str, int]) -> object:
                rid, pos, size = struct.unpack(">iqi", frame)
                await asyncio.sleep(0.001 * (len(requests) - rid))  # finish out of order
                head = struct.pack(">i", rid) + b"head"
                if not size:
                    return _frame(head, b"small answer")
                region = FileRegion(f.fileno(), pos, size)
                return [_SIZE.pack(4 + 4 + size + 4) + head, region, b"tail"]

            listener = KafkaListener("127.0.0.1", 0, dispatch, max_request_bytes=1 << 20)
            await listener.start()
            try:
                loop = asyncio.get_running_loop()
                sock = socket.create_connection(("127.0.0.1", listener.port))
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
                sock.setblocking(False)
                for rid, pos, size in requests:
                    await loop.sock_sendall(sock, _frame(struct.pack(">iqi", rid, pos, size)))
                await asyncio.sleep(pause_s)  # the server's socket fills up meanwhile
                want = sum(len(e) for e in expected)
                got = bytearray()
                while len(got) < want:
                    chunk = await asyncio.wait_for(loop.sock_recv(sock, 1 << 20), 20)
                    assert chunk, "connection closed early"
                    got += chunk
                sock.close()
                conn = next(iter(listener._connections))
                received, pos = [], 0
                while pos < len(got):
                    (n,) = _SIZE.unpack_from(got, pos)
                    received.append(bytes(got[pos:pos + 4 + n]))
                    pos += 4 + n
                return received, conn.sendfile_bytes, conn.fallback_bytes
            finally:
                await listener.stop()

    received, sent, copied = asyncio.run(main())
    return received, expected, sent, copied


REQUESTS = [(0, 0, 3 * 1024 * 1024), (1, 0, 0), (2, 123, 2 * 1024 * 1024 + 7), (3, 0, 0),
            (4, 5 * 1024 * 1024, 1024 * 1024)]


@pytest.mark.parametrize("pause_s", [0.0, 0.3])
def test_file_regions_arrive_byte_identical_and_in_order(
        data_file: tuple[Path, bytes], pause_s: float) -> None:
    received, expected, sent, copied = _run(data_file, REQUESTS, pause_s)
    assert [r[4:8] for r in received] == [e[4:8] for e in expected]  # request order
    assert received == expected
    region_bytes = sum(size for _, _, size in REQUESTS)
    assert sent + copied == region_bytes
    if HAVE_SENDFILE:
        assert sent == region_bytes, "regions were copied instead of sent with sendfile"


def test_region_keeps_its_bytes_after_the_file_is_closed(tmp_path: Path) -> None:
    path = tmp_path / "f.log"
    path.write_bytes(b"0123456789" * 10_000)
    with open(path, "rb") as f:
        region = FileRegion(f.fileno(), 10, 50_000)
    path.unlink()
    assert region.read() == (b"0123456789" * 10_000)[10:50_010]
    region.close()
    region.close()  # idempotent


def test_checked_ranges_merge_and_cover() -> None:
    class F:  # any weak-referenceable object stands for a segment file
        pass

    f, other = F(), F()
    ranges = CheckedRanges(max_ranges=4)
    assert not ranges.covers(f, 0, 1)
    ranges.add(f, 0, 100)
    ranges.add(f, 100, 50)  # adjacent: one range [0, 150)
    assert ranges.covers(f, 0, 150) and ranges.covers(f, 20, 100)
    assert not ranges.covers(f, 140, 20)
    ranges.add(f, 300, 100)
    assert not ranges.covers(f, 100, 250)  # a hole at [150, 300)
    ranges.add(f, 150, 150)  # fills it
    assert ranges.covers(f, 0, 400)
    assert not ranges.covers(other, 0, 1)
    for i in range(10):  # fragmented reads: the list stays bounded
        ranges.add(f, 1000 + 100 * i, 10)
    assert len(ranges._ranges[f]) <= 4
