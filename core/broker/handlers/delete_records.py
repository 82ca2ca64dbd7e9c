"""DeleteRecords (21): move a partition's log start offset forward, on its leader.

Offset -1 means the high watermark; an offset past it is OFFSET_OUT_OF_RANGE. The answer is the
new low watermark (log start offset). A compact-only topic refuses with POLICY_VIOLATION.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from core.broker.api import RequestContext, api
from core.common.errors import KafkaError
from core.common.types import TopicPartition
from core.protocol.build import build
from core.protocol.codec import response_class

HIGH_WATERMARK = -1


def delete_before(broker: Any, tp: TopicPartition, offset: int) -> int:
    """Delete the records of `tp` below `offset`; returns the new low watermark."""
    partition = broker.replicas.leader_partition(tp, broker.image)
    log = partition.log
    policy = log.config.get("cleanup.policy", ["delete"])
    if isinstance(policy, str):
        policy = [p.strip() for p in policy.split(",")]
    if "delete" not in policy:
        raise KafkaError(f"Records of partition {tp.topic}-{tp.partition} can not be deleted "
                         f"due to the configured policy", ErrorCode.policy_violation)
    if offset == HIGH_WATERMARK:
        offset = log.high_watermark
    if offset < 0 or offset > log.high_watermark:
        raise KafkaError(f"Cannot delete records of {tp.topic}-{tp.partition} before offset "
                         f"{offset}: the high watermark is {log.high_watermark}",
                         ErrorCode.offset_out_of_range)
    return log.delete_records_before(offset)


@api(key=21, min_version=0, max_version=2)
async def handle_delete_records(ctx: RequestContext, request: Any) -> Any:
    topics = []
    for t in request.topics:
        parts = []
        for p in t.partitions:
            try:
                low = delete_before(ctx.broker, TopicPartition(t.name, p.partition_index),
                                    p.offset)
                parts.append(dict(partition_index=p.partition_index, low_watermark=low,
                                  error_code=0))
            except KafkaError as exc:
                parts.append(dict(partition_index=p.partition_index, low_watermark=-1,
                                  error_code=exc.code))
        topics.append(dict(name=t.name, partitions=parts))
    return build(response_class(21, ctx.version), throttle_time=0, topics=topics)
