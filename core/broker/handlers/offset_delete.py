"""OffsetDelete (47) v0: delete a group's committed offsets of partitions it does not consume."""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from core.broker.api import RequestContext, api
from core.broker.handlers.offset_commit import split_unknown_partitions
from core.coordinator.results import OffsetDeleteResult
from core.protocol.build import build
from core.protocol.codec import response_class


@api(key=47, min_version=0, max_version=0)
async def handle_offset_delete(ctx: RequestContext, request: Any) -> Any:
    coordinator = ctx.broker.group_coordinator
    # as Kafka's KafkaApis: partitions missing from the metadata are answered
    # UNKNOWN_TOPIC_OR_PARTITION, the rest go to the coordinator (a group error wins)
    request, unknown = split_unknown_partitions(ctx.broker.image, request)
    wanted = [(t.name, [p.partition_index for p in t.partitions]) for t in request.topics]
    if coordinator is None:
        result = OffsetDeleteResult(ErrorCode.coordinator_not_available)
    else:
        result = await coordinator.delete_offsets(request.group_id, wanted)
    partitions = list(result.partitions)
    if result.error == ErrorCode.none:
        partitions += unknown
    topics: dict[str, list[dict[str, Any]]] = {}
    for p in partitions:
        topics.setdefault(p.topic, []).append(dict(partition_index=p.partition,
                                                   error_code=p.error))
    return build(response_class(47, ctx.version), throttle_time=0, error_code=result.error,
                 topics=[dict(name=n, partitions=parts) for n, parts in topics.items()])
