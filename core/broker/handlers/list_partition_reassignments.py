"""ListPartitionReassignments (46): the reassignments in progress (all, or the partitions
asked for), with the full replica set and the replicas being added and removed."""

from __future__ import annotations

from typing import Any

from core.broker.api import RequestContext, api
from core.protocol.build import build
from core.protocol.codec import response_class


@api(key=46, min_version=0, max_version=0)
async def handle_list_partition_reassignments(ctx: RequestContext, request: Any) -> Any:
    broker = ctx.broker
    if not broker.is_controller():
        return await broker.forward_to_controller(ctx, request)
    wanted = None
    if request.topics is not None:
        wanted = [(t.name, int(p)) for t in request.topics for p in t.partition_indexes]
    ongoing = broker.controller.ongoing_reassignments(wanted)
    by_topic: dict[str, list[dict[str, Any]]] = {}
    for (topic, p), part in sorted(ongoing.items()):
        by_topic.setdefault(topic, []).append(dict(
            partition_index=p, replicas=list(part.replicas),
            adding_replicas=list(part.adding_replicas),
            removing_replicas=list(part.removing_replicas)))
    return build(response_class(46, ctx.version), throttle_time=0, error_code=0,
                 error_message=None,
                 topics=[dict(name=t, partitions=ps) for t, ps in by_topic.items()])
