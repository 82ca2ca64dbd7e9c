"""CreateTopics (19): validated by the controller with Kafka's rules and error codes."""

from __future__ import annotations

import logging
from typing import Any

from kio.schema.errors import ErrorCode

from core.broker.api import RequestContext, api
from core.common.config import TOPIC_CONFIGS
from core.common.errors import InvalidTopicError, KafkaError
from core.common.topics import colliding_topic, validate_topic_name
from core.protocol.build import build
from core.protocol.codec import response_class

log = logging.getLogger(__name__)


@api(key=19, min_version=2, max_version=5)
async def handle_create_topics(ctx: RequestContext, request: Any) -> Any:
    broker = ctx.broker
    if not broker.is_controller():
        log.info("forwarding CreateTopics %s to the controller",
                 [t.name for t in request.topics])
        return await broker.forward_to_controller(ctx, request)
    controller = broker.controller
    results = []
    seen: dict[str, int] = {}
    for t in request.topics:
        seen[t.name] = seen.get(t.name, 0) + 1
    for t in request.topics:
        if seen[t.name] > 1:
            results.append(dict(name=t.name, error_code=42,  # INVALID_REQUEST
                                error_message=f"Create topics request from client contains "
                                              f"multiple requests for the topic {t.name}",
                                num_partitions=-1, replication_factor=-1))
            continue
        assignments = {a.partition_index: list(a.broker_ids) for a in t.assignments} or None
        configs = {c.name: c.value for c in t.configs}
        try:
            if assignments and (t.num_partitions != -1 or t.replication_factor != -1):
                raise KafkaError("Both numPartitions or replicationFactor and "
                                 "replicasAssignments were set. Both cannot be used at the "
                                 "same time.", 42)
            if t.assignments:
                _check_assignments(broker, t.name, [(a.partition_index, list(a.broker_ids))
                                                    for a in t.assignments])
            _check_collision(broker, t.name)
            created = await controller.create_topic(
                t.name, t.num_partitions, t.replication_factor, assignments, configs,
                validate_only=request.validate_only)
        except KafkaError as exc:
            results.append(dict(name=t.name, error_code=exc.code, error_message=str(exc),
                                num_partitions=-1, replication_factor=-1))
            continue
        effective = broker.replicas.topic_config(t.name) if not request.validate_only else {}
        defaults = broker.config.topic_defaults()
        config_entries = []
        for name, definition in TOPIC_CONFIGS.items():
            value = configs.get(name, effective.get(name, defaults.get(name)))
            config_entries.append(dict(name=name, value=_render(value), read_only=False,
                                       config_source=1 if name in configs else 5,
                                       is_sensitive=False))
            del definition
        results.append(dict(name=t.name, topic_id=created.topic_id, error_code=0,
                            error_message=None, num_partitions=created.num_partitions,
                            replication_factor=created.replication_factor,
                            configs=config_entries))
    return build(response_class(19, ctx.version), throttle_time=0, topics=results)


def _check_collision(broker: Any, name: str) -> None:
    """Kafka's ReplicationControlManager.validateNewTopicNames: a new name that differs from
    an existing topic's only by '.' versus '_' is INVALID_TOPIC_EXCEPTION. An illegal or
    existing name is left to the controller."""
    topics = broker.image.topics
    if name in topics:
        return
    try:
        validate_topic_name(name)
    except KafkaError:
        return
    other = colliding_topic(name, topics)
    if other is not None:
        raise InvalidTopicError(f"Topic '{name}' collides with existing topic: {other}")


def _check_assignments(broker: Any, name: str,
                       assignments: list[tuple[int, list[int]]]) -> None:
    """Kafka's checks of a manual assignment (ReplicationControlManager.createTopic and
    validateManualPartitionAssignment), in its order, all INVALID_REPLICA_ASSIGNMENT. An
    illegal or existing name is left to the controller, which Kafka checks first."""
    try:
        validate_topic_name(name)
    except KafkaError:
        return
    image = broker.image
    if name in image.topics:
        return

    def invalid(message: str) -> KafkaError:
        return KafkaError(message, ErrorCode.invalid_replica_assignment)

    seen: set[int] = set()
    rf: int | None = None
    for partition, replicas in assignments:
        if partition in seen:
            raise invalid(f"Found multiple manual partition assignments for partition "
                          f"{partition}")
        seen.add(partition)
        if not replicas:
            raise invalid("The manual partition assignment includes an empty replica list.")
        previous = None
        for broker_id in sorted(replicas):
            if broker_id not in image.brokers:
                raise invalid(f"The manual partition assignment includes broker {broker_id}, "
                              "but no such broker is registered.")
            if broker_id == previous:
                raise invalid(f"The manual partition assignment includes the broker "
                              f"{broker_id} more than once.")
            previous = broker_id
        if rf is not None and len(replicas) != rf:
            raise invalid(f"The manual partition assignment includes a partition with "
                          f"{len(replicas)} replica(s), but this is not consistent with "
                          f"previous partitions, which have {rf} replica(s).")
        rf = len(replicas)
    if seen != set(range(len(seen))):
        raise invalid("partitions should be a consecutive 0-based integer sequence")


def _render(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return ",".join(value)
    return str(value)
