"""Metadata (3): brokers, controller and topics from the metadata image; auto-create topics."""

from __future__ import annotations

import uuid
from typing import Any

from kio.schema.errors import ErrorCode

from core.broker.api import RequestContext, api
from core.broker.handlers.describe_cluster import ALL_CLUSTER_OPERATIONS, OPERATIONS_OMITTED
from core.common.errors import KafkaError
from core.common.topics import is_internal, validate_topic_name
from core.protocol.build import build
from core.protocol.codec import response_class

_NULL_UUID = uuid.UUID(int=0)
#: every topic operation: READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS,
#: ALTER_CONFIGS (Kafka's AclEntry.supportedOperations(TOPIC); no authorizer: all allowed)
ALL_TOPIC_OPERATIONS = sum(1 << op for op in (3, 4, 5, 6, 7, 8, 10, 11))


@api(key=3, min_version=0, max_version=12)
async def handle_metadata(ctx: RequestContext, request: Any) -> Any:
    broker = ctx.broker
    image = broker.image
    version = ctx.version
    requested = request.topics
    if version == 0 and not requested:  # v0: empty list means all topics
        requested = None
    names: list[str | None]
    if requested is None:
        names = sorted(image.topics)
    else:
        names = []
        for t in requested:
            name = getattr(t, "name", None)
            topic_id = getattr(t, "topic_id", None)
            if name is None and topic_id not in (None, _NULL_UUID):
                found = image.topic_by_id(str(topic_id))
                name = found.name if found else None
            names.append(name)
    allow_auto = getattr(request, "allow_auto_topic_creation", True)
    unreachable = _unreachable(broker)
    topics = []
    for name in names:
        if name is None:
            # v10-11 responses cannot carry a null name: Kafka refuses a null name (or a
            # topic id) below v12 with INVALID_REQUEST
            topics.append(dict(error_code=ErrorCode.unknown_topic_id if version >= 12
                               else ErrorCode.invalid_request, name=None if version >= 12
                               else "", topic_id=_NULL_UUID, is_internal=False,
                               partitions=[]))
            continue
        if name not in image.topics and requested is not None:
            error = await _maybe_auto_create(ctx, name, allow_auto)
            image = broker.image
            if error is not None:
                topics.append(dict(error_code=error, name=name, topic_id=_NULL_UUID,
                                   is_internal=False, partitions=[]))
                continue
        topics.append(_describe_topic(image, name, unreachable))
    brokers = [dict(node_id=b.broker_id, host=b.host, port=b.port, rack=b.rack)
               for b in sorted(image.brokers.values(), key=lambda b: b.broker_id)
               if not b.fenced]
    # v8+: authorized operations when asked for, as Kafka's KafkaApis answers without an
    # authorizer (every supported operation); the cluster's only up to v10 (KIP-700)
    if getattr(request, "include_topic_authorized_operations", False):
        for topic in topics:
            topic["topic_authorized_operations"] = ALL_TOPIC_OPERATIONS
    cluster_operations = (ALL_CLUSTER_OPERATIONS
                          if getattr(request, "include_cluster_authorized_operations", False)
                          else OPERATIONS_OMITTED)
    return build(
        response_class(3, version),
        throttle_time=0,
        brokers=brokers,
        cluster_id=broker.cluster_id,
        controller_id=broker.controller_id,
        topics=topics,
        cluster_authorized_operations=cluster_operations,
    )


async def _maybe_auto_create(ctx: RequestContext, name: str, allow: bool) -> ErrorCode | None:
    broker = ctx.broker
    try:
        validate_topic_name(name)
    except KafkaError as exc:
        return exc.code
    if not (allow and broker.config["auto.create.topics.enable"]) or is_internal(name):
        return ErrorCode.unknown_topic_or_partition
    try:
        await broker.auto_create_topic(name)
    except KafkaError as exc:
        # Created meanwhile (by a client's CreateTopics, our image not caught up yet), not
        # placeable yet, or refused by the controller because it collides with an existing
        # topic's metric name ('.' vs '_'; the name is legal, checked above): Kafka answers
        # LEADER_NOT_AVAILABLE, as for a topic not there yet, never the controller's code.
        if exc.code in (ErrorCode.invalid_replication_factor, ErrorCode.topic_already_exists,
                        ErrorCode.invalid_topic_exception):
            return ErrorCode.leader_not_available
        return exc.code
    if name not in broker.image.topics:
        return ErrorCode.leader_not_available
    return None


def _unreachable(broker: Any) -> frozenset[int]:
    """Brokers whose advertised endpoint refuses connections (core.broker.peer_watch)."""
    watch = getattr(broker, "peer_watch", None)
    return watch.down_ids() if watch is not None else frozenset()


def _describe_topic(image: Any, name: str, unreachable: frozenset[int] = frozenset()
                    ) -> dict[str, Any]:
    """One topic's metadata. A leader in `unreachable` (its process is gone but the controller
    has not fenced it yet) is answered as Kafka answers a leader without a live endpoint:
    leader -1, LEADER_NOT_AVAILABLE, so clients keep asking instead of retrying a dead node."""
    topic = image.topics.get(name)
    if topic is None:
        return dict(error_code=ErrorCode.unknown_topic_or_partition, name=name,
                    topic_id=_NULL_UUID, is_internal=False, partitions=[])
    partitions = []
    for index in sorted(topic.partitions):
        reg = topic.partitions[index]
        offline = [b for b in reg.replicas
                   if b not in image.brokers or image.brokers[b].fenced or b in unreachable]
        leader = -1 if reg.leader in unreachable else reg.leader
        error = ErrorCode.leader_not_available if leader < 0 else ErrorCode.none
        partitions.append(dict(error_code=error, partition_index=index, leader_id=leader,
                               leader_epoch=reg.leader_epoch, replica_nodes=list(reg.replicas),
                               isr_nodes=list(reg.isr), offline_replicas=offline))
    return dict(error_code=ErrorCode.none, name=name, topic_id=uuid.UUID(topic.topic_id),
                is_internal=is_internal(name), partitions=partitions,
                topic_authorized_operations=OPERATIONS_OMITTED)
