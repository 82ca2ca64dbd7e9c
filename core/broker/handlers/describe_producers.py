"""DescribeProducers (61): the active idempotent/transactional producers of led partitions."""

from __future__ import annotations

from typing import Any

from core.broker.api import RequestContext, api
from core.common.errors import KafkaError
from core.common.types import TopicPartition
from core.protocol.build import build
from core.protocol.codec import response_class


def active_producers(log: Any) -> list[dict[str, Any]]:
    """The producer state of one log as DescribeProducers entries."""
    result = []
    for entry in sorted(log.producer_state.producers.values(), key=lambda e: e.producer_id):
        txn_start = entry.current_txn_first_offset
        result.append(dict(producer_id=entry.producer_id, producer_epoch=entry.epoch,
                           last_sequence=entry.last_seq, last_timestamp=entry.last_timestamp,
                           coordinator_epoch=entry.coordinator_epoch,
                           current_txn_start_offset=-1 if txn_start is None else txn_start))
    return result


@api(key=61, min_version=0, max_version=0)
async def handle_describe_producers(ctx: RequestContext, request: Any) -> Any:
    broker = ctx.broker
    topics = []
    for t in request.topics:
        parts = []
        for index in t.partition_indexes:
            tp = TopicPartition(t.name, index)
            try:
                partition = broker.replicas.leader_partition(tp, broker.image)
                parts.append(dict(partition_index=index, error_code=0, error_message=None,
                                  active_producers=active_producers(partition.log)))
            except KafkaError as exc:
                parts.append(dict(partition_index=index, error_code=exc.code,
                                  error_message=str(exc), active_producers=[]))
        topics.append(dict(name=t.name, partitions=parts))
    return build(response_class(61, ctx.version), throttle_time=0, topics=topics)
