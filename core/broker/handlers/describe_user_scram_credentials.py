"""DescribeUserScramCredentials (50): kaflab stores no SCRAM credentials (its listeners are
PLAINTEXT), so this is Kafka's ScramImage.describe over an empty image: all users -> no
results; a named user -> RESOURCE_NOT_FOUND; a user named twice -> DUPLICATE_RESOURCE."""

from __future__ import annotations

from collections import Counter
from typing import Any

from kio.schema.errors import ErrorCode

from core.broker.api import RequestContext, api
from core.protocol.build import build
from core.protocol.codec import response_class


@api(key=50, min_version=0, max_version=0)
async def handle_describe_user_scram_credentials(ctx: RequestContext, request: Any) -> Any:
    counts = Counter(u.name for u in request.users or ())
    results = []
    for user, count in counts.items():
        if count > 1:
            error = ErrorCode.duplicate_resource
            message = ("Cannot describe SCRAM credentials for the same user twice in a single "
                       f"request: {user}")
        else:
            error = ErrorCode.resource_not_found
            message = f"attemptToDescribeUserThatDoesNotExist: {user}"
        results.append(dict(user=user, error_code=error, error_message=message,
                            credential_infos=[]))
    return build(response_class(50, ctx.version), throttle_time=0, error_code=ErrorCode.none,
                 error_message=None, results=results)
