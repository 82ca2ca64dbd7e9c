"""OffsetCommit (8) v2-9: commit offsets for group members and simple consumers."""

from __future__ import annotations

import dataclasses
from typing import Any

from kio.schema.errors import ErrorCode

from core.broker.api import RequestContext, api
from core.common.types import TopicPartition
from core.coordinator.results import PartitionResult
from core.protocol.build import build
from core.protocol.codec import response_class


@api(key=8, min_version=2, max_version=9)
async def handle_offset_commit(ctx: RequestContext, request: Any) -> Any:
    coordinator = ctx.broker.group_coordinator
    request, results = split_unknown_partitions(getattr(ctx.broker, "image", None), request)
    if not request.topics:
        pass  # Kafka answers without asking the coordinator when nothing is left
    elif coordinator is None:
        results += [PartitionResult(t.name, p.partition_index,
                                    ErrorCode.coordinator_not_available)
                    for t in request.topics for p in t.partitions]
    else:
        results += await coordinator.commit_offsets(request, ctx.version)
    topics: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        topics.setdefault(r.topic, []).append(
            dict(partition_index=r.partition, error_code=r.error))
    return build(response_class(8, ctx.version), throttle_time=0,
                 topics=[dict(name=name, partitions=parts) for name, parts in topics.items()])


def split_unknown_partitions(image: Any, request: Any) -> tuple[Any, list[PartitionResult]]:
    """Kafka's KafkaApis checks an OffsetCommit / TxnOffsetCommit against the metadata before
    the coordinator sees it: a partition of an unknown topic, or one the topic does not have,
    gets UNKNOWN_TOPIC_OR_PARTITION and is not committed. Returns the request without them
    and their results. Without a metadata image (the unit tests' fake brokers) nothing is
    checked."""
    if image is None:
        return request, []
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
