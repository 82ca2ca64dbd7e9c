"""JoinGroup (11) v0-9: join or rejoin a classic group; answered when the join phase ends."""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from core.broker.api import RequestContext, api
from core.protocol.build import build
from core.protocol.codec import response_class


@api(key=11, min_version=0, max_version=9)
async def handle_join_group(ctx: RequestContext, request: Any) -> Any:
    cls = response_class(11, ctx.version)
    coordinator = ctx.broker.group_coordinator
    if coordinator is None:
        return build(cls, throttle_time=0, error_code=ErrorCode.coordinator_not_available,
                     generation_id=-1, protocol_name=None if ctx.version >= 7 else "",
                     leader="", member_id=request.member_id, members=[])
    result = await coordinator.join_group(request, ctx.version, ctx.header.client_id or "",
                                          f"/{ctx.client_host}")
    members = result.members
    if result.skip_assignment and ctx.version < 9:
        members = ()  # an old leader cannot be told to skip assignment: it only syncs
    protocol_name = result.protocol_name
    if protocol_name is None and ctx.version < 7:
        protocol_name = ""
    return build(cls, throttle_time=0, error_code=result.error,
                 generation_id=result.generation_id, protocol_type=result.protocol_type,
                 protocol_name=protocol_name, leader=result.leader_id,
                 skip_assignment=result.skip_assignment, member_id=result.member_id,
                 members=[dict(member_id=m, group_instance_id=i, metadata=md)
                          for m, i, md in members])
