"""DeleteGroups (42) v0-2: delete Empty groups with their committed offsets."""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from core.broker.api import RequestContext, api
from core.protocol.build import build
from core.protocol.codec import response_class


@api(key=42, min_version=0, max_version=2)
async def handle_delete_groups(ctx: RequestContext, request: Any) -> Any:
    coordinator = ctx.broker.group_coordinator
    if coordinator is None:
        results = [(g, ErrorCode.coordinator_not_available) for g in request.groups_names]
    else:
        results = await coordinator.delete_groups(list(request.groups_names))
    return build(response_class(42, ctx.version), throttle_time=0,
                 results=[dict(group_id=g, error_code=e) for g, e in results])
