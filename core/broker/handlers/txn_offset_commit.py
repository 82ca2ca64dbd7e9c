"""TxnOffsetCommit (28) v0-3: offsets committed inside a transaction (KIP-98 / KIP-447),
visible once the transaction commits."""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from core.broker.api import RequestContext, api
from core.broker.handlers.offset_commit import split_unknown_partitions
from core.coordinator.results import PartitionResult
from core.protocol.build import build
from core.protocol.codec import response_class


@api(key=28, min_version=0, max_version=3)
async def handle_txn_offset_commit(ctx: RequestContext, request: Any) -> Any:
    coordinator = ctx.broker.group_coordinator
    request, results = split_unknown_partitions(getattr(ctx.broker, "image", None), request)
    if not request.topics:
        pass  # Kafka answers without asking the coordinator when nothing is left
    elif coordinator is None:
        results += [PartitionResult(t.name, p.partition_index,
                                    ErrorCode.coordinator_not_available)
                    for t in request.topics for p in t.partitions]
    else:
        results += await coordinator.txn_commit_offsets(request, ctx.version)
    topics: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        error = r.error
        if error == ErrorCode.producer_fenced and ctx.version < 2:
            error = ErrorCode.invalid_producer_epoch
        topics.setdefault(r.topic, []).append(dict(partition_index=r.partition,
                                                   error_code=error))
    return build(response_class(28, ctx.version), throttle_time=0,
                 topics=[dict(name=name, partitions=parts) for name, parts in topics.items()])
