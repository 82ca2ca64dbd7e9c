"""AlterPartition (56): a partition leader asks the controller to shrink or expand the ISR.

v2 names the ISR by broker ids; v3 (KIP-903) names each member with the broker epoch the
leader knows for it. The sender's own BrokerEpoch is checked for the whole request: a stale
one gets a top-level STALE_BROKER_EPOCH and no topics, as Kafka's controller answers.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from core.broker.api import RequestContext, api
from core.common.errors import KafkaError
from core.metadata.controller import NO_BROKER_EPOCH, IsrProposal
from core.protocol.build import build
from core.protocol.codec import response_class


def _isr_with_epochs(partition: Any, version: int) -> tuple[tuple[int, int], ...]:
    if version >= 3:
        return tuple((int(m.broker_id), int(m.broker_epoch))
                     for m in partition.new_isr_with_epochs)
    return tuple((int(b), NO_BROKER_EPOCH) for b in partition.new_isr)


@api(key=56, min_version=2, max_version=3)
async def handle_alter_partition(ctx: RequestContext, request: Any) -> Any:
    cls = response_class(56, ctx.version)
    broker = ctx.broker
    if not broker.is_controller():
        return build(cls, throttle_time=0, error_code=ErrorCode.not_controller, topics=[])
    proposals: list[IsrProposal] = []
    # per requested partition: (partition index, its proposal's index or None if refused here)
    rows: list[list[tuple[int, int | None]]] = []
    for t in request.topics:
        topic = broker.image.topic_by_id(str(t.topic_id))
        row: list[tuple[int, int | None]] = []
        for p in t.partitions:
            if topic is None:
                row.append((p.partition_index, None))
                continue
            row.append((p.partition_index, len(proposals)))
            proposals.append(IsrProposal(topic.name, p.partition_index, p.leader_epoch,
                                         p.partition_epoch, _isr_with_epochs(p, ctx.version)))
        rows.append(row)
    try:
        results = await broker.controller.alter_partitions(request.broker_id,
                                                           request.broker_epoch, proposals)
    except KafkaError as exc:  # STALE_BROKER_EPOCH, NOT_CONTROLLER: the whole request
        return build(cls, throttle_time=0, error_code=exc.code, topics=[])
    topics = []
    for t, row in zip(request.topics, rows, strict=True):
        parts = []
        for index, slot in row:
            outcome = results[slot] if slot is not None else None
            if outcome is None:
                parts.append(dict(partition_index=index, error_code=ErrorCode.unknown_topic_id))
            elif isinstance(outcome, KafkaError):
                parts.append(dict(partition_index=index, error_code=outcome.code))
            else:
                parts.append(dict(partition_index=index, error_code=0, leader_id=outcome.leader,
                                  leader_epoch=outcome.leader_epoch, isr=list(outcome.isr),
                                  partition_epoch=outcome.partition_epoch))
        topics.append(dict(topic_id=t.topic_id, partitions=parts))
    return build(cls, throttle_time=0, error_code=0, topics=topics)
