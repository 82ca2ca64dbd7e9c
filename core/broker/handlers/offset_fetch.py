"""OffsetFetch (9) v1-9: committed offsets of a group (v8+: of several groups at once)."""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from core.broker.api import RequestContext, api
from core.coordinator.results import OffsetFetchResult, PartitionOffset
from core.protocol.build import build
from core.protocol.codec import response_class


async def _fetch(ctx: RequestContext, group_id: str, topics: Any,
                 require_stable: bool) -> OffsetFetchResult:
    wanted = None if topics is None else [(t.name, list(t.partition_indexes)) for t in topics]
    coordinator = ctx.broker.group_coordinator
    if coordinator is None:
        return OffsetFetchResult(ErrorCode.coordinator_not_available)
    return await coordinator.fetch_offsets(group_id, wanted, require_stable)


def _topics(result: OffsetFetchResult, requested: Any, version: int) -> list[dict[str, Any]]:
    partitions = list(result.partitions)
    if result.error != ErrorCode.none and version < 2 and requested:
        # v1 has no top-level error: every requested partition carries it
        partitions = [PartitionOffset(t.name, p, error=result.error)
                      for t in requested for p in t.partition_indexes]
    topics: dict[str, list[dict[str, Any]]] = {}
    for p in partitions:
        topics.setdefault(p.topic, []).append(dict(
            partition_index=p.partition, committed_offset=p.offset,
            committed_leader_epoch=p.leader_epoch,
            metadata=p.metadata if p.metadata is not None else "", error_code=p.error))
    return [dict(name=name, partitions=parts) for name, parts in topics.items()]


@api(key=9, min_version=1, max_version=9)
async def handle_offset_fetch(ctx: RequestContext, request: Any) -> Any:
    cls = response_class(9, ctx.version)
    require_stable = bool(getattr(request, "require_stable", False))
    if ctx.version >= 8:
        groups = []
        for g in request.groups:
            result = await _fetch(ctx, g.group_id, g.topics, require_stable)
            groups.append(dict(group_id=g.group_id, error_code=result.error,
                               topics=_topics(result, g.topics, ctx.version)))
        return build(cls, throttle_time=0, groups=groups)
    result = await _fetch(ctx, request.group_id, request.topics, require_stable)
    return build(cls, throttle_time=0, error_code=result.error,
                 topics=_topics(result, request.topics, ctx.version))
