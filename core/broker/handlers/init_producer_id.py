"""InitProducerId (22): ids and epochs for idempotent producers (KIP-360 epoch bumps).

Transactional ids need the transaction coordinator, which is not built yet: those requests get
COORDINATOR_NOT_AVAILABLE, as a broker without one would answer.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from core.broker.api import RequestContext, api
from core.protocol.build import build
from core.protocol.codec import response_class

MAX_EPOCH = 32767


@api(key=22, min_version=0, max_version=4)
async def handle_init_producer_id(ctx: RequestContext, request: Any) -> Any:
    cls = response_class(22, ctx.version)
    if request.transactional_id is not None:
        return build(cls, throttle_time=0, error_code=ErrorCode.coordinator_not_available,
                     producer_id=-1, producer_epoch=-1)
    pid = getattr(request, "producer_id", -1)
    epoch = getattr(request, "producer_epoch", -1)
    if pid >= 0 and 0 <= epoch < MAX_EPOCH - 1:  # KIP-360: bump the epoch of a known id
        return build(cls, throttle_time=0, error_code=0, producer_id=pid,
                     producer_epoch=epoch + 1)
    new_pid = await ctx.broker.producer_ids.next_id()
    return build(cls, throttle_time=0, error_code=0, producer_id=new_pid, producer_epoch=0)
