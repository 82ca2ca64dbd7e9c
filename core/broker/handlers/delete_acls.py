"""DeleteAcls (31): kaflab has no authorizer, so every filter gets SECURITY_DISABLED and no
matching ACLs, as Kafka's AclApis answers when none is configured
(DeleteAclsRequest.getErrorResponse)."""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from core.broker.api import RequestContext, api
from core.broker.handlers.create_acls import NO_AUTHORIZER
from core.protocol.build import build
from core.protocol.codec import response_class


@api(key=31, min_version=1, max_version=3)
async def handle_delete_acls(ctx: RequestContext, request: Any) -> Any:
    return build(response_class(31, ctx.version), throttle_time=0,
                 filter_results=[dict(error_code=ErrorCode.security_disabled,
                                      error_message=NO_AUTHORIZER, matching_acls=[])
                                 for _ in request.filters])
