"""AddOffsetsToTxn (25) v0-3: a group's __consumer_offsets partition joins the transaction."""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from core.broker.api import RequestContext, api
from core.common.errors import KafkaError
from core.protocol.build import build
from core.protocol.codec import response_class


@api(key=25, min_version=0, max_version=3)
async def handle_add_offsets_to_txn(ctx: RequestContext, request: Any) -> Any:
    coordinator = getattr(ctx.broker, "transaction_coordinator", None)
    if coordinator is None:
        error = ErrorCode.coordinator_not_available
    else:
        try:  # the group's partition must exist before it can join a transaction
            await ctx.broker.ensure_offsets_topic()
        except KafkaError:
            pass  # answered below as UNKNOWN_TOPIC_OR_PARTITION; the client retries
        error = await coordinator.add_offsets(request.transactional_id, request.producer_id,
                                              request.producer_epoch, request.group_id)
    if error == ErrorCode.producer_fenced and ctx.version < 2:
        error = ErrorCode.invalid_producer_epoch
    return build(response_class(25, ctx.version), throttle_time=0, error_code=error)
