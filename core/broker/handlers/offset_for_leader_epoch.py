"""OffsetForLeaderEpoch (23): the end offset of a leader epoch, for log truncation checks.

Consumers (replica_id < 0) must ask the leader; a replica (replica_id >= 0) may ask any host of
the partition. current_leader_epoch is checked as Kafka does (FENCED / UNKNOWN_LEADER_EPOCH).
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from core.broker.api import RequestContext, api
from core.common.errors import KafkaError
from core.common.types import TopicPartition
from core.protocol.build import build
from core.protocol.codec import response_class

CONSUMER_REPLICA_ID = -1


def end_offset(broker: Any, tp: TopicPartition, current_leader_epoch: int, leader_epoch: int,
               from_replica: bool) -> tuple[int, int]:
    """(leader_epoch, end_offset) for `tp`, or raise the KafkaError to answer with."""
    partition = broker.replicas.partitions.get(tp)
    if partition is None:
        if broker.image.partition(tp) is None:
            raise KafkaError("This server does not host this topic-partition.",
                             ErrorCode.unknown_topic_or_partition)
        raise KafkaError(f"{tp}: broker {broker.node_id} is not a replica",
                         ErrorCode.not_leader_or_follower)
    partition.check_leader_epoch(current_leader_epoch, need_leader=not from_replica)
    return partition.log.end_offset_for_epoch(leader_epoch)


@api(key=23, min_version=2, max_version=4)
async def handle_offset_for_leader_epoch(ctx: RequestContext, request: Any) -> Any:
    from_replica = getattr(request, "replica_id", CONSUMER_REPLICA_ID) >= 0
    topics = []
    for t in request.topics:
        parts = []
        for p in t.partitions:
            try:
                epoch, offset = end_offset(ctx.broker, TopicPartition(t.topic, p.partition),
                                           p.current_leader_epoch, p.leader_epoch,
                                           from_replica)
                parts.append(dict(error_code=0, partition=p.partition, leader_epoch=epoch,
                                  end_offset=offset))
            except KafkaError as exc:
                parts.append(dict(error_code=exc.code, partition=p.partition,
                                  leader_epoch=-1, end_offset=-1))
        topics.append(dict(topic=t.topic, partitions=parts))
    return build(response_class(23, ctx.version), throttle_time=0, topics=topics)
