"""WriteTxnMarkers (27) v1: the transaction coordinator asks a partition leader to append
COMMIT / ABORT control batches (and, on __consumer_offsets, to complete pending offsets)."""

from __future__ import annotations

from typing import Any

from core.broker.api import RequestContext, api
from core.broker.txn_store import write_markers_local
from core.common.types import TopicPartition
from core.protocol.build import build
from core.protocol.codec import response_class


@api(key=27, min_version=1, max_version=1)
async def handle_write_txn_markers(ctx: RequestContext, request: Any) -> Any:
    markers = []
    for marker in request.markers:
        tps = [TopicPartition(t.name, p) for t in marker.topics for p in t.partition_indexes]
        result = await write_markers_local(ctx.broker, marker.producer_id,
                                           marker.producer_epoch, marker.coordinator_epoch,
                                           bool(marker.transaction_result), tps)
        topics: dict[str, list[dict[str, Any]]] = {}
        for tp in tps:
            topics.setdefault(tp.topic, []).append(
                dict(partition_index=tp.partition, error_code=result[tp]))
        markers.append(dict(producer_id=marker.producer_id,
                            topics=[dict(name=t, partitions=p) for t, p in topics.items()]))
    return build(response_class(27, ctx.version), markers=markers)
