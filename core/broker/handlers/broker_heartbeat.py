"""BrokerHeartbeat (63): liveness, unfencing and controlled shutdown, on the controller.

The supervisor also sends one with broker_epoch -1 and want_fence when a broker process dies,
so the controller moves leadership at once instead of waiting for the session timeout.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from core.broker.api import RequestContext, api
from core.common.errors import KafkaError
from core.protocol.build import build
from core.protocol.codec import response_class


@api(key=63, min_version=0, max_version=0)
async def handle_broker_heartbeat(ctx: RequestContext, request: Any) -> Any:
    cls = response_class(63, ctx.version)
    broker = ctx.broker
    if not broker.is_controller():
        return build(cls, throttle_time=0, error_code=ErrorCode.not_controller,
                     is_caught_up=False, is_fenced=True, should_shut_down=False)
    try:
        fenced, shut_down = await broker.controller.heartbeat(
            request.broker_id, request.broker_epoch, want_fence=request.want_fence,
            want_shutdown=request.want_shut_down)
    except KafkaError as exc:
        return build(cls, throttle_time=0, error_code=exc.code, is_caught_up=False,
                     is_fenced=True, should_shut_down=False)
    caught_up = request.current_metadata_offset >= broker.image.offset - 1
    return build(cls, throttle_time=0, error_code=0, is_caught_up=caught_up, is_fenced=fenced,
                 should_shut_down=shut_down)
