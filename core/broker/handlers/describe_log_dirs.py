"""DescribeLogDirs (35): the broker's log dir with the size of every hosted partition."""

from __future__ import annotations

import shutil
from typing import Any

from core.broker.api import RequestContext, api
from core.protocol.build import build
from core.protocol.codec import response_class


def _wanted(request: Any) -> dict[str, set[int] | None] | None:
    """topic -> partitions (None: all) asked for, or None for every topic."""
    if request.topics is None:
        return None
    wanted: dict[str, set[int] | None] = {}
    for t in request.topics:
        wanted.setdefault(t.topic, set())
        parts = wanted[t.topic]
        if parts is not None:
            parts.update(t.partitions)
    return wanted


@api(key=35, min_version=1, max_version=4)
async def handle_describe_log_dirs(ctx: RequestContext, request: Any) -> Any:
    broker = ctx.broker
    wanted = _wanted(request)
    topics: dict[str, list[dict[str, Any]]] = {}
    for tp, partition in sorted(broker.replicas.partitions.items()):
        if wanted is not None:
            parts = wanted.get(tp.topic)
            if parts is None or tp.partition not in parts:
                continue
        log = partition.log
        if getattr(log, "is_offline", False):
            continue
        lag = max(0, log.high_watermark - log.log_end_offset)
        topics.setdefault(tp.topic, []).append(dict(
            partition_index=tp.partition, partition_size=log.size_bytes, offset_lag=lag,
            is_future_key=False))
    log_dir = str(broker.data_dir)
    try:
        usage = shutil.disk_usage(log_dir)
        total, usable = usage.total, usage.free
    except OSError:
        total = usable = -1
    result = dict(error_code=0, log_dir=log_dir, total_bytes=total, usable_bytes=usable,
                  topics=[dict(name=name, partitions=parts) for name, parts in topics.items()])
    return build(response_class(35, ctx.version), throttle_time=0, error_code=0,
                 results=[result])
