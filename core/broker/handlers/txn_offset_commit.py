"""TxnOffsetCommit (28) v0-3: offsets committed inside a transaction (KIP-98 / KIP-447),
visible once the transaction commits."""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from core.broker.api import RequestContext, api
from core.broker.handlers.offset_commit import commit_known_partitions
from core.protocol.build import build
from core.protocol.codec import response_class


@api(key=28, min_version=0, max_version=3)
async def handle_txn_offset_commit(ctx: RequestContext, request: Any) -> Any:
    results = await commit_known_partitions(
        ctx, request, lambda coordinator, r, v: coordinator.txn_commit_offsets(r, v))
    topics: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        error = r.error
        if error == ErrorCode.producer_fenced and ctx.version < 2:
            error = ErrorCode.invalid_producer_epoch
        topics.setdefault(r.topic, []).append(dict(partition_index=r.partition,
                                                   error_code=error))
    return build(response_class(28, ctx.version), throttle_time=0,
                 topics=[dict(name=name, partitions=parts) for name, parts in topics.items()])
