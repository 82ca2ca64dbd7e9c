"""DescribeTransactions (65) v0: state, producer, timeout and partitions of transactional ids."""

from __future__ import annotations

import datetime
from typing import Any

from kio.schema.errors import ErrorCode

from core.broker.api import RequestContext, api
from core.protocol.build import build
from core.protocol.codec import response_class

#: "no transaction started". Kafka sends -1, but kio (our admin client and console) cannot
#: decode a negative timestamp, so the epoch (0) stands for it.
_NO_TIME = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


def _time(ms: int) -> Any:
    return ms if ms >= 0 else _NO_TIME


@api(key=65, min_version=0, max_version=0)
async def handle_describe_transactions(ctx: RequestContext, request: Any) -> Any:
    coordinator = getattr(ctx.broker, "transaction_coordinator", None)
    states = []
    for tid in request.transactional_ids:
        if coordinator is None:
            states.append(dict(error_code=ErrorCode.coordinator_not_available,
                               transactional_id=tid, transaction_state="",
                               transaction_timeout=0, transaction_start_time=_NO_TIME,
                               producer_id=-1, producer_epoch=-1, topics=[]))
            continue
        d = coordinator.describe(tid)
        topics: dict[str, list[int]] = {}
        for tp in d.partitions:
            topics.setdefault(tp.topic, []).append(tp.partition)
        states.append(dict(error_code=d.error, transactional_id=tid,
                           transaction_state=d.state, transaction_timeout=d.timeout_ms,
                           transaction_start_time=_time(d.start_ms), producer_id=d.producer_id,
                           producer_epoch=d.producer_epoch,
                           topics=[dict(topic=t, partitions=p) for t, p in topics.items()]))
    return build(response_class(65, ctx.version), throttle_time=0, transaction_states=states)
