"""SaslHandshake (17): our listeners are PLAINTEXT, so answer as Kafka does on one.

Kafka's KafkaApis answers a handshake that reaches the request handlers (i.e. on a connection
that is not in SASL authentication) with ILLEGAL_SASL_STATE and no mechanisms.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from core.broker.api import RequestContext, api
from core.protocol.build import build
from core.protocol.codec import response_class


@api(key=17, min_version=0, max_version=1)
async def handle_sasl_handshake(ctx: RequestContext, request: Any) -> Any:
    return build(response_class(17, ctx.version), error_code=ErrorCode.illegal_sasl_state,
                 mechanisms=[])
