"""AlterPartition (56): a partition leader asks the controller to shrink or expand the ISR."""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from core.broker.api import RequestContext, api
from core.common.errors import KafkaError
from core.protocol.build import build
from core.protocol.codec import response_class


@api(key=56, min_version=2, max_version=2)
async def handle_alter_partition(ctx: RequestContext, request: Any) -> Any:
    cls = response_class(56, ctx.version)
    broker = ctx.broker
    if not broker.is_controller():
        return build(cls, throttle_time=0, error_code=ErrorCode.not_controller, topics=[])
    topics = []
    for t in request.topics:
        topic = broker.image.topic_by_id(str(t.topic_id))
        parts = []
        for p in t.partitions:
            if topic is None:
                parts.append(dict(partition_index=p.partition_index,
                                  error_code=ErrorCode.unknown_topic_id))
                continue
            try:
                reg = await broker.controller.alter_partition(
                    topic.name, p.partition_index, request.broker_id, p.leader_epoch,
                    p.partition_epoch, list(p.new_isr))
            except KafkaError as exc:
                parts.append(dict(partition_index=p.partition_index, error_code=exc.code))
                continue
            parts.append(dict(partition_index=p.partition_index, error_code=0,
                              leader_id=reg.leader, leader_epoch=reg.leader_epoch,
                              isr=list(reg.isr), partition_epoch=reg.partition_epoch))
        topics.append(dict(topic_id=t.topic_id, partitions=parts))
    return build(cls, throttle_time=0, error_code=0, topics=topics)
