"""CreatePartitions (37): add partitions to existing topics through the controller."""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from core.broker.api import RequestContext, api
from core.common.errors import KafkaError
from core.protocol.build import build
from core.protocol.codec import response_class


def _check_assignments(broker: Any, name: str, count: int,
                       assignments: list[list[int]]) -> None:
    """Kafka's checks of explicit replica assignments for the new partitions."""
    topic = broker.image.topics.get(name)
    if topic is None or not topic.partitions:
        return  # the controller answers UNKNOWN_TOPIC_OR_PARTITION
    current = len(topic.partitions)
    if count <= current:
        return  # the controller answers INVALID_PARTITIONS
    if len(assignments) != count - current:
        raise KafkaError(f"Increasing the number of partitions by {count - current} but "
                         f"{len(assignments)} assignments provided.",
                         ErrorCode.invalid_replica_assignment)
    rf = len(topic.partitions[min(topic.partitions)].replicas)
    for i, replicas in enumerate(assignments):
        partition = current + i
        if not replicas:
            raise KafkaError(f"The manual partition assignment includes an empty replica list "
                             f"for partition {partition}.", ErrorCode.invalid_replica_assignment)
        if len(set(replicas)) != len(replicas):
            raise KafkaError(f"The manual partition assignment includes the broker "
                             f"{replicas} more than once for partition {partition}.",
                             ErrorCode.invalid_replica_assignment)
        if len(replicas) != rf:
            raise KafkaError(f"The manual partition assignment includes a partition with "
                             f"{len(replicas)} replica(s), but this is not consistent with "
                             f"previous partitions, which have {rf} replica(s).",
                             ErrorCode.invalid_replica_assignment)
        unknown = [b for b in replicas if b not in broker.image.brokers]
        if unknown:
            raise KafkaError(f"The manual partition assignment includes broker {unknown[0]}, "
                             f"but no such broker is registered.",
                             ErrorCode.invalid_replica_assignment)


@api(key=37, min_version=0, max_version=3)
async def handle_create_partitions(ctx: RequestContext, request: Any) -> Any:
    broker = ctx.broker
    if not broker.is_controller():
        return await broker.forward_to_controller(ctx, request)
    seen: dict[str, int] = {}
    for t in request.topics:
        seen[t.name] = seen.get(t.name, 0) + 1
    results = []
    for t in request.topics:
        try:
            if seen[t.name] > 1:
                raise KafkaError("Duplicate topic in request.", ErrorCode.invalid_request)
            assignments = ([list(a.broker_ids) for a in t.assignments]
                           if t.assignments else None)
            if assignments:
                _check_assignments(broker, t.name, t.count, assignments)
            await broker.controller.create_partitions(t.name, t.count, assignments,
                                                      validate_only=request.validate_only)
            results.append(dict(name=t.name, error_code=0, error_message=None))
        except KafkaError as exc:
            results.append(dict(name=t.name, error_code=exc.code, error_message=str(exc)))
    return build(response_class(37, ctx.version), throttle_time=0, results=results)
