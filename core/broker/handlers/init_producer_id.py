"""InitProducerId (22): ids and epochs for idempotent producers (KIP-360 epoch bumps) and,
with a transactional id, from the transaction coordinator (fencing older instances)."""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from core.broker.api import RequestContext, api
from core.protocol.build import build, timedelta_to_ms
from core.protocol.codec import response_class

MAX_EPOCH = 32767


@api(key=22, min_version=0, max_version=4)
async def handle_init_producer_id(ctx: RequestContext, request: Any) -> Any:
    cls = response_class(22, ctx.version)
    pid = getattr(request, "producer_id", -1)
    epoch = getattr(request, "producer_epoch", -1)
    if request.transactional_id:
        coordinator = getattr(ctx.broker, "transaction_coordinator", None)
        if coordinator is None:
            return build(cls, throttle_time=0, error_code=ErrorCode.coordinator_not_available,
                         producer_id=-1, producer_epoch=-1)
        error, new_pid, new_epoch = await coordinator.init_producer_id(
            request.transactional_id, timedelta_to_ms(request.transaction_timeout), pid, epoch)
        if error == ErrorCode.producer_fenced and ctx.version < 4:
            error = ErrorCode.invalid_producer_epoch  # older clients do not know the code
        return build(cls, throttle_time=0, error_code=error, producer_id=new_pid,
                     producer_epoch=new_epoch)
    if pid >= 0 and 0 <= epoch < MAX_EPOCH - 1:  # KIP-360: bump the epoch of a known id
        return build(cls, throttle_time=0, error_code=0, producer_id=pid,
                     producer_epoch=epoch + 1)
    new_pid = await ctx.broker.producer_ids.next_id()
    return build(cls, throttle_time=0, error_code=0, producer_id=new_pid, producer_epoch=0)
