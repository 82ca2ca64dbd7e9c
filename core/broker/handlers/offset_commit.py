"""OffsetCommit (8) v2-9: commit offsets for group members and simple consumers."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

from kio.schema.errors import ErrorCode

from core.broker.api import RequestContext, api
from core.common.types import TopicPartition
from core.coordinator.results import PartitionResult
from core.protocol.build import build
from core.protocol.codec import response_class

#: a GroupCoordinator method committing offsets: (coordinator, request, version) -> results
CommitMethod = Callable[[Any, Any, int], Awaitable[list[PartitionResult]]]


@api(key=8, min_version=2, max_version=9)
async def handle_offset_commit(ctx: RequestContext, request: Any) -> Any:
    results = await commit_known_partitions(
        ctx, request, lambda coordinator, r, v: coordinator.commit_offsets(r, v))
    topics: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        topics.setdefault(r.topic, []).append(
            dict(partition_index=r.partition, error_code=r.error))
    return build(response_class(8, ctx.version), throttle_time=0,
                 topics=[dict(name=name, partitions=parts) for name, parts in topics.items()])


async def commit_known_partitions(ctx: RequestContext, request: Any,
                                  commit: CommitMethod) -> list[PartitionResult]:
    """What OffsetCommit and TxnOffsetCommit share (Kafka's KafkaApis): partitions missing
    from the broker's metadata get UNKNOWN_TOPIC_OR_PARTITION, the rest go to `commit` on the
    group coordinator (COORDINATOR_NOT_AVAILABLE without one); the coordinator is not asked
    when nothing is left. Returns every partition's result, the unknown ones first."""
    request, results = split_unknown_partitions(ctx.broker.image, request)
    coordinator = ctx.broker.group_coordinator
    if not request.topics:
        return results
    if coordinator is None:
        return results + [PartitionResult(t.name, p.partition_index,
                                          ErrorCode.coordinator_not_available)
                          for t in request.topics for p in t.partitions]
    return results + await commit(coordinator, request, ctx.version)


def split_unknown_partitions(image: Any, request: Any) -> tuple[Any, list[PartitionResult]]:
    """Kafka's KafkaApis checks an OffsetCommit / TxnOffsetCommit / OffsetDelete against the
    metadata before the coordinator sees it: a partition of an unknown topic, or one the topic
    does not have, gets UNKNOWN_TOPIC_OR_PARTITION and is left to no one. Returns the request
    without them (`request.topics[*].partitions[*].partition_index`) and their results."""
    unknown: list[PartitionResult] = []
    topics = []
    for topic in request.topics:
        known = []
        for p in topic.partitions:
            if image.partition(TopicPartition(topic.name, p.partition_index)) is None:
                unknown.append(PartitionResult(topic.name, p.partition_index,
                                               ErrorCode.unknown_topic_or_partition))
            else:
                known.append(p)
        if known:
            topics.append(topic if len(known) == len(topic.partitions)
                          else dataclasses.replace(topic, partitions=tuple(known)))
    if not unknown:
        return request, []
    return dataclasses.replace(request, topics=tuple(topics)), unknown
