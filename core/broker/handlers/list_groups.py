"""ListGroups (16) v0-5: the groups this broker coordinates (v4+: state filter, v5: type)."""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from core.broker.api import RequestContext, api
from core.protocol.build import build
from core.protocol.codec import response_class


@api(key=16, min_version=0, max_version=5)
async def handle_list_groups(ctx: RequestContext, request: Any) -> Any:
    cls = response_class(16, ctx.version)
    coordinator = ctx.broker.group_coordinator
    if coordinator is None:
        return build(cls, throttle_time=0, error_code=ErrorCode.coordinator_not_available,
                     groups=[])
    error, groups = coordinator.list_groups(getattr(request, "states_filter", ()),
                                            getattr(request, "types_filter", ()))
    return build(cls, throttle_time=0, error_code=error, groups=[
        dict(group_id=g.group_id, protocol_type=g.protocol_type, group_state=g.state,
             group_type=g.group_type) for g in groups])
