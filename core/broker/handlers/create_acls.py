"""CreateAcls (30): kaflab has no authorizer, so every creation gets SECURITY_DISABLED, as
Kafka's AclApis answers when none is configured (CreateAclsRequest.getErrorResponse)."""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from core.broker.api import RequestContext, api
from core.protocol.build import build
from core.protocol.codec import response_class

#: Kafka's SecurityDisabledException message for CreateAcls / DeleteAcls without an authorizer
NO_AUTHORIZER = "No Authorizer is configured."


@api(key=30, min_version=1, max_version=3)
async def handle_create_acls(ctx: RequestContext, request: Any) -> Any:
    return build(response_class(30, ctx.version), throttle_time=0,
                 results=[dict(error_code=ErrorCode.security_disabled,
                               error_message=NO_AUTHORIZER) for _ in request.creations])
