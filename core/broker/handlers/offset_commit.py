"""OffsetCommit (8) v2-9: commit offsets for group members and simple consumers."""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from core.broker.api import RequestContext, api
from core.coordinator.results import PartitionResult
from core.protocol.build import build
from core.protocol.codec import response_class


@api(key=8, min_version=2, max_version=9)
async def handle_offset_commit(ctx: RequestContext, request: Any) -> Any:
    coordinator = ctx.broker.group_coordinator
    if coordinator is None:
        results = [PartitionResult(t.name, p.partition_index, ErrorCode.coordinator_not_available)
                   for t in request.topics for p in t.partitions]
    else:
        results = await coordinator.commit_offsets(request, ctx.version)
    topics: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        topics.setdefault(r.topic, []).append(
            dict(partition_index=r.partition, error_code=r.error))
    return build(response_class(8, ctx.version), throttle_time=0,
                 topics=[dict(name=name, partitions=parts) for name, parts in topics.items()])
