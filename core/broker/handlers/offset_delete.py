"""OffsetDelete (47) v0: delete a group's committed offsets of partitions it does not consume."""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from core.broker.api import RequestContext, api
from core.common.types import TopicPartition
from core.coordinator.results import OffsetDeleteResult, PartitionResult
from core.protocol.build import build
from core.protocol.codec import response_class


@api(key=47, min_version=0, max_version=0)
async def handle_offset_delete(ctx: RequestContext, request: Any) -> Any:
    coordinator = ctx.broker.group_coordinator
    # as Kafka's KafkaApis: partitions missing from the metadata are answered
    # UNKNOWN_TOPIC_OR_PARTITION, the rest go to the coordinator (a group error wins)
    # (without a metadata image - the unit tests' fake brokers - nothing is checked)
    image = getattr(ctx.broker, "image", None)
    wanted: list[tuple[str, list[int]]] = []
    unknown: list[PartitionResult] = []
    for t in request.topics:
        known = []
        for p in t.partitions:
            if image is not None and \
                    image.partition(TopicPartition(t.name, p.partition_index)) is None:
                unknown.append(PartitionResult(t.name, p.partition_index,
                                               ErrorCode.unknown_topic_or_partition))
            else:
                known.append(p.partition_index)
        if known:
            wanted.append((t.name, known))
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
