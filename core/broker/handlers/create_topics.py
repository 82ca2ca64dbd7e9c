"""CreateTopics (19): validated by the controller with Kafka's rules and error codes."""

from __future__ import annotations

import logging
from typing import Any

from core.broker.api import RequestContext, api
from core.broker.handlers.describe_configs import topic_entry
from core.common.config import TOPIC_CONFIGS, ConfigDef
from core.common.errors import KafkaError
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
        # as the request lists them: the controller refuses a partition listed twice
        assignments = [(a.partition_index, list(a.broker_ids)) for a in t.assignments]
        configs = {c.name: c.value for c in t.configs}
        try:
            if assignments and (t.num_partitions != -1 or t.replication_factor != -1):
                raise KafkaError("Both numPartitions or replicationFactor and "
                                 "replicasAssignments were set. Both cannot be used at the "
                                 "same time.", 42)
            # the name (legal, colliding, existing), configs and a manual assignment are
            # checked by the controller, under its lock, against its own image
            created = await controller.create_topic(
                t.name, t.num_partitions, t.replication_factor, assignments or None, configs,
                validate_only=request.validate_only)
        except KafkaError as exc:
            results.append(dict(name=t.name, error_code=exc.code, error_message=str(exc),
                                num_partitions=-1, replication_factor=-1))
            continue
        config_entries = [_config_entry(broker, definition, created.configs)
                          for definition in TOPIC_CONFIGS.values()]
        results.append(dict(name=t.name, topic_id=created.topic_id, error_code=0,
                            error_message=None, num_partitions=created.num_partitions,
                            replication_factor=created.replication_factor,
                            configs=config_entries))
    return build(response_class(19, ctx.version), throttle_time=0, topics=results)


def _config_entry(broker: Any, definition: ConfigDef, overrides: dict[str, str]) -> dict:
    """The new topic's config as DescribeConfigs will describe it (Kafka's controller returns
    resolveEffectiveTopicConfigs): the request's override (source 1, DYNAMIC_TOPIC_CONFIG),
    else the broker default the topic's log gets from this broker's applied levels (dynamic
    per-broker 2, dynamic cluster default 3, server.properties 4, built-in 5); the same with
    validate_only, where nothing is created."""
    entry = topic_entry(broker, definition, overrides)
    return dict(name=entry["name"], value=entry["value"], read_only=False,
                config_source=entry["config_source"], is_sensitive=False)
