"""EndTxn (26) v0-3: commit or abort the producer's transaction (markers are written after
the answer, as Kafka does once PrepareCommit/PrepareAbort is durable)."""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from core.broker.api import RequestContext, api
from core.protocol.build import build
from core.protocol.codec import response_class


@api(key=26, min_version=0, max_version=3)
async def handle_end_txn(ctx: RequestContext, request: Any) -> Any:
    coordinator = getattr(ctx.broker, "transaction_coordinator", None)
    if coordinator is None:
        error = ErrorCode.coordinator_not_available
    else:
        error = await coordinator.end_txn(request.transactional_id, request.producer_id,
                                          request.producer_epoch, bool(request.committed))
    if error == ErrorCode.producer_fenced and ctx.version < 2:
        error = ErrorCode.invalid_producer_epoch
    return build(response_class(26, ctx.version), throttle_time=0, error_code=error)
