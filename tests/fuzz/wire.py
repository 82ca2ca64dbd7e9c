"""Raw-socket helpers for the wire fuzz tests: send bytes, see what the broker does.

`Session` is one long-lived, well-behaved connection: the fuzz tests keep it open while other
connections send garbage, and use it to prove the broker still serves (ApiVersions after each
example, Produce + Fetch after each batch).
"""

from __future__ import annotations

import socket
import struct
import time
from typing import Any

from kio.schema.errors import ErrorCode

from core.protocol.build import build
from core.protocol.codec import decode_response, encode_request, request_class
from core.records.batch import build_batch, iter_records

HOST = "127.0.0.1"


def frame_request(key: int, version: int, correlation_id: int = 1,
                  client_id: str | None = "fuzz", /, **fields: Any) -> bytes:
    """A well-formed request frame (with its size prefix); `fields` are kio field names
    (positional-only parameters, so FindCoordinator's `key` field can be passed)."""
    return encode_request(key, version, correlation_id, client_id,
                          build(request_class(key, version), **fields))


def read_exact(sock: socket.socket, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed by the broker")
        data += chunk
    return bytes(data)


def read_frame(sock: socket.socket) -> bytes:
    (size,) = struct.unpack(">i", read_exact(sock, 4))
    return read_exact(sock, size)


def throw(port: int, payload: bytes, *, half_close: bool = False,
          wait: float = 0.5) -> str:
    """Send `payload` on a fresh connection; return "closed", "answered" or "silent".

    The broker may answer, close the connection, or (for an incomplete frame) wait for more;
    `half_close` sends EOF after the payload so an incomplete frame must end in a close.
    """
    with socket.create_connection((HOST, port), timeout=5) as sock:
        try:
            sock.sendall(payload)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            return "closed"  # refused before we finished writing
        sock.settimeout(wait)
        try:
            data = sock.recv(65536)
        except TimeoutError:
            return "silent"
        except ConnectionResetError:
            return "closed"
        return "answered" if data else "closed"


class Session:
    """A healthy client connection that must keep working whatever others send."""

    def __init__(self, port: int, topic: str) -> None:
        self.port = port
        self.topic = topic
        self.sock = socket.create_connection((HOST, port), timeout=10)
        self.correlation_id = 0
        self.produced: list[bytes] = []

    def close(self) -> None:
        self.sock.close()

    def call(self, key: int, version: int, /, **fields: Any) -> Any:
        self.correlation_id += 1
        self.sock.sendall(frame_request(key, version, self.correlation_id, "healthy",
                                        **fields))
        correlation_id, body = decode_response(key, version, read_frame(self.sock))
        assert correlation_id == self.correlation_id
        return body

    def ping(self) -> None:
        """ApiVersions round trip on the long-lived connection."""
        response = self.call(18, 3, client_software_name="healthy",
                             client_software_version="1")
        assert response.error_code == ErrorCode.none

    def produce_and_consume(self) -> None:
        """Append one record and read the whole partition back, in order."""
        value = f"ok-{len(self.produced)}-{time.monotonic_ns()}".encode()
        batch = build_batch([(None, value, ())], timestamp_ms=int(time.time() * 1000))
        response = self.call(0, 9, transactional_id=None, acks=-1, timeout=5000, topic_data=[
            dict(name=self.topic, partition_data=[dict(index=0, records=batch)])])
        part = response.responses[0].partition_responses[0]
        assert part.error_code == ErrorCode.none, part
        assert part.base_offset == len(self.produced)
        self.produced.append(value)
        fetched = self.call(1, 12, replica_id=-1, max_wait=0, min_bytes=1,
                            max_bytes=10_000_000, isolation_level=0, session_id=0,
                            session_epoch=-1, forgotten_topics_data=[], rack_id="",
                            topics=[dict(topic=self.topic, partitions=[dict(
                                partition=0, fetch_offset=0, partition_max_bytes=10_000_000,
                                current_leader_epoch=-1, log_start_offset=-1,
                                last_fetched_epoch=-1)])])
        data = fetched.responses[0].partitions[0]
        assert data.error_code == ErrorCode.none, data
        values = _values(bytes(data.records or b""))
        assert values == self.produced


def _values(records: bytes) -> list[bytes]:
    values: list[bytes] = []
    pos = 0
    while pos + 12 <= len(records):
        (length,) = struct.unpack_from(">i", records, pos + 8)
        end = pos + 12 + length
        if end > len(records):
            break
        values += [r.value for r in iter_records(records[pos:end])]
        pos = end
    return values


def exchange(port: int, payload: bytes, *, wait: float = 0.5) -> tuple[str, bytes | None]:
    """Send `payload` on a fresh connection and read one whole response frame.

    Returns ("answered", frame after its size), ("closed", None) or ("silent", None) when
    nothing came within `wait` seconds (a request may legitimately wait, e.g. acks=0).
    """
    with socket.create_connection((HOST, port), timeout=5) as sock:
        try:
            sock.sendall(payload)
        except (BrokenPipeError, ConnectionResetError):
            return "closed", None
        sock.settimeout(wait)
        try:
            first = sock.recv(4, socket.MSG_WAITALL)
        except TimeoutError:
            return "silent", None
        except ConnectionResetError:
            return "closed", None
        if len(first) < 4:
            return "closed", None
        sock.settimeout(5)  # a response that has started must arrive whole, and soon
        (size,) = struct.unpack(">i", first)
        return "answered", read_exact(sock, size)
