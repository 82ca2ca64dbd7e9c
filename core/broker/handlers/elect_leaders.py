"""ElectLeaders (43): preferred or unclean leader election through the controller.

Null topic_partitions means every partition; then, as in Kafka, partitions that already have
the desired leader (ELECTION_NOT_NEEDED) are left out of the answer.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from core.broker.api import RequestContext, api
from core.protocol.build import build
from core.protocol.codec import response_class

PREFERRED, UNCLEAN = 0, 1

_MESSAGES = {
    ErrorCode.election_not_needed: "Leader election not needed for topic partition.",
    ErrorCode.preferred_leader_not_available:
        "Failed to elect leader for partition: the preferred replica is not available.",
    ErrorCode.eligible_leaders_not_available:
        "Failed to elect leader for partition: no live replica is eligible.",
    ErrorCode.unknown_topic_or_partition: "This server does not host this topic-partition.",
}


@api(key=43, min_version=0, max_version=2)
async def handle_elect_leaders(ctx: RequestContext, request: Any) -> Any:
    broker = ctx.broker
    if not broker.is_controller():
        return await broker.forward_to_controller(ctx, request)
    election_type = getattr(request, "election_type", PREFERRED)
    if election_type not in (PREFERRED, UNCLEAN):
        return build(response_class(43, ctx.version), throttle_time=0,
                     error_code=ErrorCode.invalid_request, replica_election_results=[])
    everything = request.topic_partitions is None
    if everything:
        wanted = [(t.name, p) for t in broker.image.topics.values() for p in t.partitions]
    else:
        wanted = list(dict.fromkeys((t.topic, p) for t in request.topic_partitions
                                    for p in t.partitions))
    results = await broker.controller.elect_leaders(wanted, unclean=election_type == UNCLEAN)
    by_topic: dict[str, list[dict[str, Any]]] = {}
    for (topic, p), code in results.items():
        if everything and code == ErrorCode.election_not_needed:
            continue
        by_topic.setdefault(topic, []).append(dict(
            partition_id=p, error_code=code, error_message=_MESSAGES.get(code)))
    return build(response_class(43, ctx.version), throttle_time=0, error_code=0,
                 replica_election_results=[dict(topic=t, partition_result=parts)
                                           for t, parts in by_topic.items()])
