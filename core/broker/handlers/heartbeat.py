"""Heartbeat (12) v0-4: keeps a member alive; REBALANCE_IN_PROGRESS asks it to rejoin."""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from core.broker.api import RequestContext, api
from core.protocol.build import build
from core.protocol.codec import response_class


@api(key=12, min_version=0, max_version=4)
async def handle_heartbeat(ctx: RequestContext, request: Any) -> Any:
    coordinator = ctx.broker.group_coordinator
    if coordinator is None:
        error = ErrorCode.coordinator_not_available
    else:
        error = await coordinator.heartbeat(request, ctx.version)
    return build(response_class(12, ctx.version), throttle_time=0, error_code=error)
