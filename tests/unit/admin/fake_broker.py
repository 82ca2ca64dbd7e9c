"""A minimal in-process fake Kafka broker for unit tests of the client connection.

It answers ApiVersions (optionally only v0..max_api_versions, refusing newer ones the way a real
broker does) and dispatches other requests to per-api handlers given by the test.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from core.protocol.build import build
from core.protocol.codec import (
    decode_body,
    decode_header,
    encode_response,
    kio_versions,
    response_class,
)

Handler = Callable[[int, Any], Awaitable[dict[str, Any] | None] | dict[str, Any] | None]


class FakeBroker:
    def __init__(self, handlers: dict[int, Handler] | None = None, *,
                 max_api_versions: int = 3, apis: dict[int, tuple[int, int]] | None = None,
                 delay: dict[int, float] | None = None) -> None:
        self.handlers = handlers or {}
        self.max_api_versions = max_api_versions
        self.apis = apis
        self.delay = delay or {}
        self.requests: list[tuple[int, int, Any]] = []
        self.server: asyncio.base_events.Server | None = None
        self.port = 0

    async def __aenter__(self) -> FakeBroker:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    def _api_ranges(self) -> dict[int, tuple[int, int]]:
        ranges = dict(self.apis or {})
        ranges[18] = (0, self.max_api_versions)
        for key in self.handlers:
            ranges.setdefault(key, kio_versions(key))
        return ranges

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                size = int.from_bytes(await reader.readexactly(4), "big", signed=True)
                frame = await reader.readexactly(size)
                header, pos = decode_header(frame)
                if header.api_key == 18 and header.api_version > self.max_api_versions:
                    body = build(response_class(18, 0), error_code=35, api_keys=[
                        {"api_key": 18, "min_version": 0, "max_version": self.max_api_versions}])
                    writer.write(encode_response(18, 0, header.correlation_id, body))
                    continue
                request = decode_body(header, frame, pos)
                self.requests.append((header.api_key, header.api_version, request))
                if header.api_key == 18:
                    fields: dict[str, Any] | None = {"error_code": 0, "api_keys": [
                        {"api_key": k, "min_version": lo, "max_version": hi}
                        for k, (lo, hi) in self._api_ranges().items()]}
                else:
                    if header.api_key in self.delay:
                        await asyncio.sleep(self.delay[header.api_key])
                    result = self.handlers[header.api_key](header.api_version, request)
                    fields = await result if asyncio.iscoroutine(result) else result
                if fields is None:
                    continue
                fields.setdefault("throttle_time", 0)  # build() zero-fills these with ints
                fields.setdefault("error_code", 0)
                body = build(response_class(header.api_key, header.api_version), **fields)
                writer.write(encode_response(header.api_key, header.api_version,
                                             header.correlation_id, body))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
