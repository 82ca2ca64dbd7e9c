"""Produce (0): validate and append record batches as bytes; acks 0 / 1 / all."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from kio.schema.errors import ErrorCode

from core.broker.api import RequestContext, api
from core.common.errors import KafkaError, RecordValidationError
from core.common.topics import is_internal
from core.common.types import TopicPartition
from core.protocol.build import build, timedelta_to_ms
from core.protocol.codec import response_class

#: the client id Kafka lets append to its internal topics (AdminUtils.ADMIN_CLIENT_ID)
ADMIN_CLIENT_ID = "__admin_client"


@api(key=0, min_version=3, max_version=9)
async def handle_produce(ctx: RequestContext, request: Any) -> Any:
    broker = ctx.broker
    acks = request.acks
    if acks == 0:
        ctx.no_response = True
    timeout_s = max(0, timedelta_to_ms(request.timeout)) / 1000.0
    results: dict[tuple[str, int], dict[str, Any]] = {}
    waits: list[asyncio.Future[Any]] = []
    internal_allowed = ctx.header.client_id == ADMIN_CLIENT_ID
    for topic_data in request.topic_data:
        topic = topic_data.name
        # Kafka's ReplicaManager refuses client appends to __consumer_offsets and
        # __transaction_state: only the coordinators write them
        refused = is_internal(topic) and not internal_allowed
        for pdata in topic_data.partition_data:
            key = (topic, pdata.index)
            if acks not in (0, 1, -1):
                results[key] = _error(pdata.index, ErrorCode.invalid_required_acks)
                continue
            if refused:
                broker.metrics.failed_produce.labels(topic).inc()
                results[key] = _error(pdata.index, ErrorCode.invalid_topic_exception,
                                      f"Cannot append to internal topic {topic}")
                continue
            try:
                partition = broker.replicas.leader_partition(
                    TopicPartition(topic, pdata.index), broker.image)
                records = pdata.records or b""
                result = partition.append_as_leader(records, acks)
            except RecordValidationError as exc:
                # Kafka's RecordValidationException: which records refused the batch (v8+)
                broker.metrics.failed_produce.labels(topic).inc()
                results[key] = _error(pdata.index, exc.code, str(exc), exc.record_errors,
                                      exc.log_start_offset)
                continue
            except KafkaError as exc:
                broker.metrics.failed_produce.labels(topic).inc()
                results[key] = _error(pdata.index, exc.code, str(exc))
                continue
            if not result.duplicate:
                broker.metrics.record_produce(topic, result.last_offset - result.first_offset + 1,
                                              len(records))
            results[key] = dict(index=pdata.index, error_code=0, base_offset=result.first_offset,
                                log_append_time=result.log_append_time_ms,
                                log_start_offset=result.log_start_offset, record_errors=[])
            if acks == -1:
                waits.append(asyncio.ensure_future(
                    _await_replication(partition, result.last_offset, timeout_s, results, key)))
    if waits:
        await asyncio.gather(*waits)
    if acks == 0:
        failed = {key: r["error_code"] for key, r in results.items() if r["error_code"]}
        if failed:
            # Kafka's KafkaApis closes the connection when an acks=0 produce fails: the
            # producer gets no response, so the disconnect is its only sign to refresh its
            # metadata (a moved leader) instead of losing every later record silently
            raise ConnectionAbortedError(f"acks=0 produce failed: {_describe(failed)}")
        return None
    by_topic: dict[str, list[dict[str, Any]]] = {}
    for (topic, _), value in results.items():
        by_topic.setdefault(topic, []).append(value)
    return build(response_class(0, ctx.version), throttle_time=0,
                 responses=[dict(name=t, partition_responses=parts)
                            for t, parts in by_topic.items()])


async def _await_replication(partition: Any, last_offset: int, timeout_s: float,
                             results: dict[tuple[str, int], dict[str, Any]],
                             key: tuple[str, int]) -> None:
    try:
        await partition.wait_for_hw(last_offset, timeout_s)
    except KafkaError as exc:
        results[key] = _error(key[1], exc.code, str(exc))


def _describe(failed: dict[tuple[str, int], ErrorCode]) -> str:
    return ", ".join(f"{topic}-{index} {ErrorCode(code).name}"
                     for (topic, index), code in sorted(failed.items()))


def _error(index: int, code: ErrorCode, message: str | None = None,
           record_errors: Sequence[tuple[int, str | None]] = (),
           log_start_offset: int = -1) -> dict[str, Any]:
    """A failed partition's response; ``record_errors`` are (batch index, message) pairs."""
    return dict(index=index, error_code=code, base_offset=-1, log_append_time=-1,
                log_start_offset=log_start_offset,
                record_errors=[dict(batch_index=i, batch_index_error_message=m)
                               for i, m in record_errors],
                error_message=message)
