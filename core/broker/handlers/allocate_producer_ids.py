"""AllocateProducerIds (67): the controller hands a broker the next block of producer ids."""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from core.broker.api import RequestContext, api
from core.common.errors import KafkaError
from core.protocol.build import build
from core.protocol.codec import response_class


@api(key=67, min_version=0, max_version=0)
async def handle_allocate_producer_ids(ctx: RequestContext, request: Any) -> Any:
    cls = response_class(67, ctx.version)
    if not ctx.broker.is_controller():
        return build(cls, throttle_time=0, error_code=ErrorCode.not_controller,
                     producer_id_start=-1, producer_id_len=0)
    try:
        start, length = await ctx.broker.controller.allocate_producer_ids(
            request.broker_id, request.broker_epoch)
    except KafkaError as exc:
        return build(cls, throttle_time=0, error_code=exc.code, producer_id_start=-1,
                     producer_id_len=0)
    return build(cls, throttle_time=0, error_code=0, producer_id_start=start,
                 producer_id_len=length)
