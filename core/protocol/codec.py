"""Sans-IO request decoding and response encoding around kio's schemas.

A request frame (the bytes after the 4-byte size) is: api_key int16, api_version int16,
correlation_id int32, client_id nullable string, then tagged fields when the request version is
flexible (header v2), then the body. Responses get header v1 (tagged fields) when flexible,
except ApiVersions, whose response header is always v0 so any client can read it.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from functools import cache
from typing import Any

from kio.index import load_payload_module
from kio.schema.index import api_key_map, schema_name_map
from kio.serial import entity_reader, entity_writer
from kio.static.constants import EntityType

from core.common.errors import InvalidRequestError, UnsupportedVersionError
from core.protocol.lengths import check_array_lengths

_HEADER = struct.Struct(">hhih")
API_VERSIONS_KEY = 18


class FrameError(Exception):
    """A frame that cannot be parsed: the connection is closed, the broker keeps running."""


@dataclass(frozen=True, slots=True)
class RequestHeader:
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None


@cache
def request_class(api_key: int, version: int) -> type:
    name = api_key_map[api_key]
    return load_payload_module(api_key, version, EntityType.request).__dict__[
        _entity_name(name, "Request")
    ]


@cache
def response_class(api_key: int, version: int) -> type:
    name = api_key_map[api_key]
    return load_payload_module(api_key, version, EntityType.response).__dict__[
        _entity_name(name, "Response")
    ]


def _entity_name(snake: str, suffix: str) -> str:
    return "".join(part.capitalize() for part in snake.split("_")) + suffix


def kio_versions(api_key: int) -> tuple[int, int]:
    """The (min, max) versions kio has schemas for."""
    versions = sorted(schema_name_map[api_key_map[api_key]])
    return versions[0], versions[-1]


@cache
def _reader(cls: type) -> Any:
    return entity_reader(cls)


@cache
def _writer(cls: type) -> Any:
    return entity_writer(cls)


def decode_header(frame: bytes | memoryview) -> tuple[RequestHeader, int]:
    """Parse the fixed part of a request header; returns it and the offset after client_id."""
    if len(frame) < _HEADER.size:
        raise FrameError(f"request header too short: {len(frame)} bytes")
    api_key, api_version, correlation_id, client_len = _HEADER.unpack_from(frame, 0)
    pos = _HEADER.size
    client_id = None
    if client_len >= 0:
        if pos + client_len > len(frame):
            raise FrameError("client_id runs past the end of the frame")
        client_id = bytes(frame[pos:pos + client_len]).decode("utf-8", "replace")
        pos += client_len
    elif client_len != -1:
        raise FrameError(f"invalid client_id length {client_len}")
    return RequestHeader(api_key, api_version, correlation_id, client_id), pos


def _skip_tagged_fields(frame: bytes | memoryview, pos: int) -> int:
    count, pos = _read_uvarint(frame, pos)
    for _ in range(count):
        _tag, pos = _read_uvarint(frame, pos)
        size, pos = _read_uvarint(frame, pos)
        pos += size
    if pos > len(frame):
        raise FrameError("tagged fields run past the end of the frame")
    return pos


def _read_uvarint(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf) or shift > 28:
            raise FrameError("bad varint in header")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def decode_body(header: RequestHeader, frame: bytes | memoryview, pos: int) -> Any:
    """Decode the request body for header's api and version (raising FrameError if malformed).

    The caller checks the version is one we support before calling this.
    """
    cls = request_class(header.api_key, header.api_version)
    if cls.__flexible__:
        pos = _skip_tagged_fields(frame, pos)
    try:
        # kio reserves memory for an array from its declared length: a huge one aborts
        # the process, so lengths are checked against the frame first (Kafka does the same)
        check_array_lengths(cls, frame, pos)
        entity, _size = _reader(cls)(frame, pos)
    except Exception as exc:  # kio raises several types for malformed input
        raise FrameError(f"malformed {cls.__name__} v{header.api_version}: {exc}") from None
    return entity


def encode_response(api_key: int, version: int, correlation_id: int, body: Any) -> bytes:
    """Frame a response: size, correlation id, (tagged fields), body."""
    cls = type(body)
    buffer = io.BytesIO()
    buffer.write(b"\0\0\0\0")
    buffer.write(struct.pack(">i", correlation_id))
    if cls.__flexible__ and api_key != API_VERSIONS_KEY:
        buffer.write(b"\0")  # empty tagged fields of response header v1
    _writer(cls)(buffer, body)
    data = buffer.getbuffer()
    struct.pack_into(">i", data, 0, len(data) - 4)
    del data
    return buffer.getvalue()


#: byte strings at least this long are kept by reference by encode_response_parts
SPLICE_MIN_BYTES = 32 * 1024


class _Parts:
    """A write-only buffer for kio's writers that keeps large writes (record bytes) by
    reference and packs everything else into small buffers between them."""

    __slots__ = ("parts", "size", "small")

    def __init__(self) -> None:
        self.small = bytearray()
        self.parts: list[Any] = [self.small]
        self.size = 0

    def write(self, data: Any) -> int:
        n = len(data)
        self.size += n
        if n >= SPLICE_MIN_BYTES:
            self.parts.append(data)
            self.small = bytearray()
            self.parts.append(self.small)
        else:
            self.small += data
        return n


def encode_response_parts(api_key: int, version: int, correlation_id: int,
                          body: Any) -> bytes | list[Any]:
    """Like encode_response, but large byte fields (Fetch records) are not copied: returns
    the framed response as bytes, or as a list of buffers to write in order."""
    cls = type(body)
    out = _Parts()
    out.write(b"\0\0\0\0")
    out.write(struct.pack(">i", correlation_id))
    if cls.__flexible__ and api_key != API_VERSIONS_KEY:
        out.write(b"\0")  # empty tagged fields of response header v1
    _writer(cls)(out, body)
    first = out.parts[0]
    struct.pack_into(">i", first, 0, out.size - 4)
    if len(out.parts) == 1:
        return bytes(first)
    return [p for p in out.parts if len(p)]


def encode_request(api_key: int, version: int, correlation_id: int, client_id: str | None,
                   body: Any) -> bytes:
    """Frame a request (used by our own clients: replica fetchers, the admin client)."""
    cls = type(body)
    buffer = io.BytesIO()
    buffer.write(b"\0\0\0\0")
    raw_client = None if client_id is None else client_id.encode()
    buffer.write(_HEADER.pack(api_key, version, correlation_id,
                              -1 if raw_client is None else len(raw_client)))
    if raw_client:
        buffer.write(raw_client)
    if cls.__flexible__:
        buffer.write(b"\0")
    _writer(cls)(buffer, body)
    data = buffer.getbuffer()
    struct.pack_into(">i", data, 0, len(data) - 4)
    del data
    return buffer.getvalue()


def decode_response(api_key: int, version: int, frame: bytes | memoryview) -> tuple[int, Any]:
    """Decode a response frame (after the size): returns (correlation_id, body)."""
    (correlation_id,) = struct.unpack_from(">i", frame, 0)
    cls = response_class(api_key, version)
    pos = 4
    if cls.__flexible__ and api_key != API_VERSIONS_KEY:
        pos = _skip_tagged_fields(frame, pos)
    entity, _ = _reader(cls)(frame, pos)
    return correlation_id, entity


__all__ = [
    "FrameError", "InvalidRequestError", "RequestHeader", "UnsupportedVersionError",
    "decode_body", "decode_header", "decode_response", "encode_request", "encode_response",
    "encode_response_parts",
    "kio_versions", "request_class", "response_class",
]
