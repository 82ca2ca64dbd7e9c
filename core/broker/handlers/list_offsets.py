"""ListOffsets (2): earliest, latest, by timestamp and max-timestamp, from partition leaders."""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from core.broker.api import RequestContext, api
from core.common.errors import KafkaError
from core.common.types import EARLIEST_TIMESTAMP, LATEST_TIMESTAMP, TopicPartition
from core.protocol.build import build
from core.protocol.codec import response_class


@api(key=2, min_version=1, max_version=7)
async def handle_list_offsets(ctx: RequestContext, request: Any) -> Any:
    broker = ctx.broker
    topics = []
    for t in request.topics:
        parts = []
        for p in t.partitions:
            tp = TopicPartition(t.name, p.partition_index)
            try:
                partition = broker.replicas.leader_partition(tp, broker.image)
                partition.check_leader_epoch(getattr(p, "current_leader_epoch", -1))
                offset, timestamp, epoch = _lookup(
                    partition, p.timestamp, request.replica_id >= 0,
                    getattr(request, "isolation_level", 0) == 1)
                parts.append(dict(partition_index=p.partition_index, error_code=0,
                                  timestamp=timestamp, offset=offset, leader_epoch=epoch,
                                  old_style_offsets=[offset]))
            except KafkaError as exc:
                parts.append(dict(partition_index=p.partition_index, error_code=exc.code,
                                  timestamp=-1, offset=-1, leader_epoch=-1))
        topics.append(dict(name=t.name, partitions=parts))
    return build(response_class(2, ctx.version), throttle_time=0, topics=topics)


def _lookup(partition: Any, timestamp: int, from_replica: bool,
            read_committed: bool = False) -> tuple[int, int, int]:
    log = partition.log
    epoch = partition.leader_epoch
    visible = log.last_stable_offset if read_committed else log.high_watermark
    if timestamp == LATEST_TIMESTAMP:
        if from_replica:
            return log.log_end_offset, -1, epoch
        _check_hw_caught_up(partition)
        return visible, -1, epoch
    if timestamp == EARLIEST_TIMESTAMP:
        # the epoch the first offset was written in (Kafka's epochForOffset), -1 if unknown
        return log.log_start_offset, -1, log.epoch_cache.epoch_for_offset(log.log_start_offset)
    found = log.offset_for_timestamp(timestamp)
    if found is not None and (from_replica or found[0] < visible):
        offset, ts, found_epoch = found
        return offset, ts, found_epoch if found_epoch is not None and found_epoch >= 0 else epoch
    if not from_replica:
        _check_hw_caught_up(partition)
    return -1, -1, -1


def _check_hw_caught_up(partition: Any) -> None:
    """Kafka's Partition.fetchOffsetForTimestamp: a client asking a new leader whose high
    watermark still trails the offset its epoch began at gets OFFSET_NOT_AVAILABLE
    (retriable), not a latest offset that is already stale."""
    log = partition.log
    start = log.epoch_cache.start_offset_of(partition.leader_epoch)
    if start is None:  # nothing appended in this epoch yet: it begins at the log end
        start = log.log_end_offset
    if start > log.high_watermark:
        raise KafkaError(
            f"Failed to fetch offsets for partition {partition.tp} with leader epoch "
            f"{partition.leader_epoch} as this partition's high watermark "
            f"({log.high_watermark}) is lagging behind the start offset from the beginning "
            f"of this epoch ({start}).", ErrorCode.offset_not_available)
