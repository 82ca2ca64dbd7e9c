"""ListTransactions (66) v0-2: the transactional ids this broker coordinates."""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from core.broker.api import RequestContext, api
from core.protocol.build import build
from core.protocol.codec import response_class


@api(key=66, min_version=0, max_version=2)
async def handle_list_transactions(ctx: RequestContext, request: Any) -> Any:
    cls = response_class(66, ctx.version)
    coordinator = getattr(ctx.broker, "transaction_coordinator", None)
    if coordinator is None:
        return build(cls, throttle_time=0, error_code=ErrorCode.coordinator_not_available,
                     unknown_state_filters=[], transaction_states=[])
    error, found, unknown = coordinator.list_transactions(
        request.state_filters, request.producer_id_filters,
        int(getattr(request, "duration_filter", -1)),
        getattr(request, "transactional_id_pattern", None))
    return build(cls, throttle_time=0, error_code=error, unknown_state_filters=unknown,
                 transaction_states=[dict(transactional_id=d.transactional_id,
                                          producer_id=d.producer_id,
                                          transaction_state=d.state) for d in found])
