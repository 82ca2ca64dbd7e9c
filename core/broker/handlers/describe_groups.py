"""DescribeGroups (15) v0-5: state, protocol and members (with metadata and assignment when
Stable) of groups this broker coordinates."""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from core.broker.api import RequestContext, api
from core.coordinator.results import GroupDescription
from core.protocol.build import build
from core.protocol.codec import response_class

#: authorized_operations when not requested (Integer.MIN_VALUE)
OPERATIONS_OMITTED = -2**31
#: READ, DELETE, DESCRIBE: everything a group allows (there is no authorizer)
ALL_GROUP_OPERATIONS = (1 << 3) | (1 << 6) | (1 << 8)


@api(key=15, min_version=0, max_version=5)
async def handle_describe_groups(ctx: RequestContext, request: Any) -> Any:
    coordinator = ctx.broker.group_coordinator
    operations = (ALL_GROUP_OPERATIONS if getattr(request, "include_authorized_operations", False)
                  else OPERATIONS_OMITTED)
    groups = []
    for group_id in request.groups:
        if coordinator is None:
            d = GroupDescription(group_id, ErrorCode.coordinator_not_available, state="")
        else:
            d = coordinator.describe_group(group_id)
        groups.append(dict(
            error_code=d.error, group_id=d.group_id, group_state=d.state,
            protocol_type=d.protocol_type, protocol_data=d.protocol,
            authorized_operations=operations,
            members=[dict(member_id=m.member_id, group_instance_id=m.group_instance_id,
                          client_id=m.client_id, client_host=m.client_host,
                          member_metadata=m.metadata, member_assignment=m.assignment)
                     for m in d.members]))
    return build(response_class(15, ctx.version), throttle_time=0, groups=groups)
