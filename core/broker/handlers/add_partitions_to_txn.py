"""AddPartitionsToTxn (24) v0-4: partitions join a producer's ongoing transaction.

v0-3 (clients) carry one transaction; v4 (KIP-890, broker to coordinator) a batch of them,
each optionally `verify_only`.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from core.broker.api import RequestContext, api
from core.common.types import TopicPartition
from core.protocol.build import build
from core.protocol.codec import response_class


async def _add(ctx: RequestContext, transactional_id: str, producer_id: int,
               producer_epoch: int, topics: Any, verify_only: bool = False,
               ) -> dict[TopicPartition, ErrorCode]:
    tps = [TopicPartition(t.name, p) for t in topics for p in t.partitions]
    coordinator = getattr(ctx.broker, "transaction_coordinator", None)
    if coordinator is None:
        return dict.fromkeys(tps, ErrorCode.coordinator_not_available)
    result = await coordinator.add_partitions(transactional_id, producer_id, producer_epoch,
                                              tps, verify_only)
    if ctx.version < 2:
        result = {tp: ErrorCode.invalid_producer_epoch if e == ErrorCode.producer_fenced else e
                  for tp, e in result.items()}
    return result


def _by_topic(result: dict[TopicPartition, ErrorCode]) -> list[dict[str, Any]]:
    topics: dict[str, list[dict[str, Any]]] = {}
    for tp, error in result.items():
        topics.setdefault(tp.topic, []).append(
            dict(partition_index=tp.partition, partition_error_code=error))
    return [dict(name=t, results_by_partition=parts) for t, parts in topics.items()]


@api(key=24, min_version=0, max_version=4)
async def handle_add_partitions_to_txn(ctx: RequestContext, request: Any) -> Any:
    cls = response_class(24, ctx.version)
    if ctx.version >= 4:
        results = []
        for txn in request.transactions:
            result = await _add(ctx, txn.transactional_id, txn.producer_id,
                                txn.producer_epoch, txn.topics, txn.verify_only)
            results.append(dict(transactional_id=txn.transactional_id,
                                topic_results=_by_topic(result)))
        return build(cls, throttle_time=0, error_code=0, results_by_transaction=results)
    result = await _add(ctx, request.v3_and_below_transactional_id,
                        request.v3_and_below_producer_id, request.v3_and_below_producer_epoch,
                        request.v3_and_below_topics)
    return build(cls, throttle_time=0, results_by_topic_v3_and_below=_by_topic(result))
