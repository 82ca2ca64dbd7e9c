"""The API registry: api key -> supported versions -> handler.

Each module in core/broker/handlers registers its handler with `@api(...)`. ApiVersions is built
from this registry, so a client is only ever offered what is implemented.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from core.protocol.codec import RequestHeader

if TYPE_CHECKING:
    from core.broker.server import BrokerServer


@dataclass(slots=True)
class RequestContext:
    """What a handler knows about the request besides its body."""

    header: RequestHeader
    client_host: str
    client_port: int
    broker: BrokerServer
    #: set by a handler (Produce acks=0) when no response must be sent
    no_response: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def version(self) -> int:
        return self.header.api_version


Handler = Callable[[RequestContext, Any], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class ApiSpec:
    key: int
    min_version: int
    max_version: int
    handler: Handler


REGISTRY: dict[int, ApiSpec] = {}


def api(key: int, min_version: int, max_version: int) -> Callable[[Handler], Handler]:
    """Register `handler` for api `key`, versions min..max inclusive."""

    def register(handler: Handler) -> Handler:
        REGISTRY[key] = ApiSpec(key, min_version, max_version, handler)
        return handler

    return register
