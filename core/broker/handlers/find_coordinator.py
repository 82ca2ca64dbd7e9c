"""FindCoordinator (10) v0-4: which broker coordinates a group (key_type 0) or a
transactional id (key_type 1); v4+ answers a batch of keys."""

from __future__ import annotations

import inspect
from typing import Any

from kio.schema.errors import ErrorCode

from core.broker.api import RequestContext, api
from core.protocol.build import build
from core.protocol.codec import response_class

GROUP, TRANSACTION = 0, 1


async def _lookup(ctx: RequestContext, key_type: int, key: str) -> tuple[int, int, str, int]:
    if key_type not in (GROUP, TRANSACTION):
        return int(ErrorCode.invalid_request), -1, "", -1
    if key_type == TRANSACTION:
        from core.broker.txn_store import coordinator_for_transaction
        return await coordinator_for_transaction(ctx.broker, key)
    lookup = getattr(ctx.broker, "coordinator_for", None)
    if lookup is None:
        return int(ErrorCode.coordinator_not_available), -1, "", -1
    answer = lookup(key_type, key)
    if inspect.isawaitable(answer):
        answer = await answer
    return answer


def _message(code: int) -> str | None:
    return None if code == 0 else ErrorCode(code).name.upper()


@api(key=10, min_version=0, max_version=4)
async def handle_find_coordinator(ctx: RequestContext, request: Any) -> Any:
    cls = response_class(10, ctx.version)
    key_type = int(getattr(request, "key_type", GROUP))
    if ctx.version >= 4:
        coordinators = []
        for key in request.coordinator_keys:
            code, node_id, host, port = await _lookup(ctx, key_type, key)
            coordinators.append(dict(key=key, node_id=node_id, host=host, port=port,
                                     error_code=code, error_message=_message(code)))
        return build(cls, throttle_time=0, coordinators=coordinators)
    code, node_id, host, port = await _lookup(ctx, key_type, request.key)
    return build(cls, throttle_time=0, error_code=code, error_message=_message(code),
                 node_id=node_id, host=host, port=port)
