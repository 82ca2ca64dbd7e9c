"""SyncGroup (14) v0-5: the leader sends the assignment, every member receives its own."""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from core.broker.api import RequestContext, api
from core.protocol.build import build
from core.protocol.codec import response_class


@api(key=14, min_version=0, max_version=5)
async def handle_sync_group(ctx: RequestContext, request: Any) -> Any:
    cls = response_class(14, ctx.version)
    coordinator = ctx.broker.group_coordinator
    if coordinator is None:
        return build(cls, throttle_time=0, error_code=ErrorCode.coordinator_not_available,
                     assignment=b"")
    result = await coordinator.sync_group(request, ctx.version)
    return build(cls, throttle_time=0, error_code=result.error,
                 protocol_type=result.protocol_type, protocol_name=result.protocol_name,
                 assignment=result.assignment)
