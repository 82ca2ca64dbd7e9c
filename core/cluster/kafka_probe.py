"""The few Kafka requests the supervisor sends: ApiVersions, Metadata and BrokerHeartbeat.

A tiny private client over a plain asyncio connection (one request in flight), built on
core.protocol.codec with kio's schemas. Every call is bounded by a timeout.
"""

from __future__ import annotations

import asyncio
import itertools
import struct
from typing import Any

from core.protocol.build import build
from core.protocol.codec import decode_response, encode_request, kio_versions, request_class

API_VERSIONS = 18
METADATA = 3
BROKER_HEARTBEAT = 63
CLIENT_ID = "kaflab-supervisor"

_correlation = itertools.count(1)


class ProbeError(Exception):
    """The broker did not answer (refused, closed, timed out, or an error code)."""


class KafkaProbe:
    """One short-lived connection to a broker; use `async with KafkaProbe(host, port)`."""

    def __init__(self, host: str, port: int, timeout: float = 2.0) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self.api_ranges: dict[int, tuple[int, int]] = {}

    async def __aenter__(self) -> KafkaProbe:
        try:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port), self.timeout)
        except (OSError, TimeoutError) as exc:
            raise ProbeError(f"{self.host}:{self.port}: {exc or type(exc).__name__}") from None
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._writer is not None:
            self._writer.close()
            try:
                await self._writer.wait_closed()
            except (OSError, ConnectionError):
                pass

    async def request(self, api_key: int, version: int, body: Any) -> Any:
        """Send one request and return the decoded response body."""
        assert self._reader is not None and self._writer is not None
        correlation_id = next(_correlation) & 0x7FFFFFFF
        try:
            self._writer.write(encode_request(api_key, version, correlation_id, CLIENT_ID, body))
            await asyncio.wait_for(self._writer.drain(), self.timeout)
            size_bytes = await asyncio.wait_for(self._reader.readexactly(4), self.timeout)
            (size,) = struct.unpack(">i", size_bytes)
            if size < 4 or size > 64 * 1024 * 1024:
                raise ProbeError(f"bad response size {size}")
            frame = await asyncio.wait_for(self._reader.readexactly(size), self.timeout)
        except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
            raise ProbeError(f"{self.host}:{self.port}: {exc or type(exc).__name__}") from None
        try:
            got, response = decode_response(api_key, version, frame)
        except Exception as exc:
            raise ProbeError(f"undecodable response to api {api_key} v{version}: {exc}") from None
        if got != correlation_id:
            raise ProbeError(f"correlation id {got} != {correlation_id}")
        return response

    async def api_versions(self) -> dict[int, tuple[int, int]]:
        """ApiVersions v3; returns and remembers {api_key: (min, max)}."""
        body = build(request_class(API_VERSIONS, 3), client_software_name="kaflab",
                     client_software_version="0.1.0")
        response = await self.request(API_VERSIONS, 3, body)
        if int(response.error_code) != 0:
            raise ProbeError(f"ApiVersions error {response.error_code!r}")
        self.api_ranges = {int(k.api_key): (int(k.min_version), int(k.max_version))
                           for k in response.api_keys}
        return self.api_ranges

    async def controller_id(self) -> int:
        """Metadata v12 with no topics; the controller id the broker reports (-1 if none)."""
        body = build(request_class(METADATA, 12), topics=(), allow_auto_topic_creation=False)
        response = await self.request(METADATA, 12, body)
        return int(response.controller_id)

    def pick_version(self, api_key: int) -> int:
        """Highest version both kio and the broker (per its ApiVersions) support; else kio's min."""
        low, high = kio_versions(api_key)
        if api_key in self.api_ranges:
            b_low, b_high = self.api_ranges[api_key]
            if max(low, b_low) <= min(high, b_high):
                return min(high, b_high)
        return low


async def probe_api_versions(host: str, port: int, timeout: float = 1.0) -> bool:
    """True when the broker at host:port answers an ApiVersions request."""
    try:
        async with KafkaProbe(host, port, timeout) as probe:
            await probe.api_versions()
        return True
    except ProbeError:
        return False


async def probe_controller(host: str, port: int, timeout: float = 1.0) -> int | None:
    """The controller id the broker at host:port reports, or None if it did not answer."""
    try:
        async with KafkaProbe(host, port, timeout) as probe:
            return await probe.controller_id()
    except ProbeError:
        return None


async def fence_broker(host: str, port: int, dead_broker_id: int, timeout: float = 2.0) -> None:
    """Tell the active controller at host:port that broker `dead_broker_id` died.

    A BrokerHeartbeat (api key 63) on the dead broker's behalf with broker_epoch=-1 and
    want_fence=True: the controller fences it at once, so partition leadership moves without
    waiting for the broker session timeout. Raises ProbeError if the controller refuses.
    """
    async with KafkaProbe(host, port, timeout) as probe:
        try:
            await probe.api_versions()
        except ProbeError:
            probe.api_ranges = {}
        version = probe.pick_version(BROKER_HEARTBEAT)
        body = build(request_class(BROKER_HEARTBEAT, version), broker_id=dead_broker_id,
                     broker_epoch=-1, current_metadata_offset=-1, want_fence=True,
                     want_shut_down=False)
        response = await probe.request(BROKER_HEARTBEAT, version, body)
    if int(response.error_code) != 0:
        raise ProbeError(f"BrokerHeartbeat(fence {dead_broker_id}) error {response.error_code!r}")
