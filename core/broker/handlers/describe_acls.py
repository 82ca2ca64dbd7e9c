"""DescribeAcls (29): kaflab has no authorizer, so it answers as Kafka's AclApis does when
none is configured: SECURITY_DISABLED, no resources."""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from core.broker.api import RequestContext, api
from core.protocol.build import build
from core.protocol.codec import response_class

#: Kafka's message (AclApis.handleDescribeAcls without an authorizer)
NO_AUTHORIZER = "No Authorizer is configured on the broker"


@api(key=29, min_version=1, max_version=3)
async def handle_describe_acls(ctx: RequestContext, request: Any) -> Any:
    return build(response_class(29, ctx.version), throttle_time=0,
                 error_code=ErrorCode.security_disabled, error_message=NO_AUTHORIZER,
                 resources=[])
