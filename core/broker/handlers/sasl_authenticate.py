"""SaslAuthenticate (36): not in SASL authentication here, answered as Kafka's KafkaApis does."""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from core.broker.api import RequestContext, api
from core.protocol.build import build
from core.protocol.codec import response_class


@api(key=36, min_version=0, max_version=2)
async def handle_sasl_authenticate(ctx: RequestContext, request: Any) -> Any:
    return build(response_class(36, ctx.version), error_code=ErrorCode.illegal_sasl_state,
                 error_message="SaslAuthenticate request received after successful "
                               "authentication",
                 auth_bytes=b"", session_lifetime=0)
