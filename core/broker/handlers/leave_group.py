"""LeaveGroup (13) v0-5: members leave (v3+: a batch, by member id or group.instance.id)."""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from core.broker.api import RequestContext, api
from core.protocol.build import build
from core.protocol.codec import response_class


@api(key=13, min_version=0, max_version=5)
async def handle_leave_group(ctx: RequestContext, request: Any) -> Any:
    cls = response_class(13, ctx.version)
    coordinator = ctx.broker.group_coordinator
    if coordinator is None:
        return build(cls, throttle_time=0, error_code=ErrorCode.coordinator_not_available,
                     members=[])
    result = await coordinator.leave_group(request, ctx.version)
    if ctx.version < 3:
        # one member: its outcome is the response's error
        error = result.error if result.error != ErrorCode.none else result.members[0][2]
        return build(cls, throttle_time=0, error_code=error)
    members = [] if result.error != ErrorCode.none else [
        dict(member_id=m, group_instance_id=i, error_code=e) for m, i, e in result.members]
    return build(cls, throttle_time=0, error_code=result.error, members=members)
