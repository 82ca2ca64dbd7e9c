"""AlterPartitionReassignments (45): start, replace or cancel (null replicas) reassignments.

As in Kafka (KIP-455) the request goes to the active controller (other brokers forward it);
the answer only says whether each reassignment was accepted: progress is visible through
ListPartitionReassignments and Metadata (replicas, ISR).
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from core.broker.api import RequestContext, api
from core.protocol.build import build
from core.protocol.codec import response_class


@api(key=45, min_version=0, max_version=0)
async def handle_alter_partition_reassignments(ctx: RequestContext, request: Any) -> Any:
    broker = ctx.broker
    if not broker.is_controller():
        return await broker.forward_to_controller(ctx, request)
    items: list[tuple[str, int, list[int] | None]] = []
    for t in request.topics:
        for p in t.partitions:
            replicas = None if p.replicas is None else [int(b) for b in p.replicas]
            items.append((t.name, int(p.partition_index), replicas))
    results = await broker.controller.alter_reassignments(items)
    by_topic: dict[str, list[dict[str, Any]]] = {}
    for (topic, p), error in results.items():
        by_topic.setdefault(topic, []).append(dict(
            partition_index=p, error_code=error.code if error is not None else ErrorCode.none,
            error_message=str(error) if error is not None else None))
    return build(response_class(45, ctx.version), throttle_time=0, error_code=0,
                 error_message=None,
                 responses=[dict(name=t, partitions=ps) for t, ps in by_topic.items()])
