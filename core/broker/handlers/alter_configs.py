"""AlterConfigs (33): the legacy replace-all config update, for topics and brokers.

Every config of the resource not named in the request returns to its default, as in Kafka.
The shared validation here is also used by IncrementalAlterConfigs (44).

On a broker resource ("<id>" or the cluster default "") only DYNAMIC_BROKER_CONFIGS may be
set (others: INVALID_REQUEST "Cannot update these configs dynamically", as Kafka answers),
and an empty value removes the dynamic value, so the broker falls back to the next level.
The brokers apply the stored values as soon as their metadata image has them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from kio.schema.errors import ErrorCode

from core.broker.api import RequestContext, api
from core.broker.handlers.describe_configs import BROKER, BROKER_LOGGER, TOPIC
from core.common.config import BROKER_CONFIGS, DYNAMIC_BROKER_CONFIGS, TOPIC_CONFIGS
from core.common.errors import KafkaError
from core.common.topics import validate_topic_name
from core.protocol.build import build
from core.protocol.codec import response_class

#: config name -> new value, or None to delete the override
Changes = dict[str, str | None]


def resource_kind(broker: Any, resource_type: int, resource_name: str) -> str:
    """Validate the resource and return "topic" or "broker" (KafkaError as Kafka answers)."""
    if resource_type == TOPIC:
        validate_topic_name(resource_name)
        return "topic"
    if resource_type == BROKER:
        if resource_name != "":
            try:
                int(resource_name)
            except ValueError:
                raise KafkaError(f"Illegal broker id {resource_name!r}",
                                 ErrorCode.invalid_request) from None
        return "broker"
    if resource_type == BROKER_LOGGER:
        raise KafkaError("Broker loggers are not supported by this broker",
                         ErrorCode.invalid_request)
    raise KafkaError(f"Unsupported resource type {resource_type}", ErrorCode.invalid_request)


def broker_deletes_for_empty(kind: str, changes: Changes) -> Changes:
    """On a broker resource an empty value deletes the dynamic value (falls back)."""
    if kind != "broker":
        return changes
    return {name: None if value is not None and not value.strip() else value
            for name, value in changes.items()}


def validate_changes(kind: str, changes: Changes) -> None:
    """Names and values as Kafka's config validators check them (values: set ones only)."""
    if kind == "topic":
        unknown = [name for name in changes if name not in TOPIC_CONFIGS]
        if unknown:
            raise KafkaError(f"Unknown topic config name: {unknown[0]}", ErrorCode.invalid_config)
        return  # the controller parses topic values
    static = sorted(name for name in changes if name not in DYNAMIC_BROKER_CONFIGS)
    if static:
        raise KafkaError(f"Cannot update these configs dynamically: {static}",
                         ErrorCode.invalid_request)
    for name, value in changes.items():
        if value is not None:
            BROKER_CONFIGS[name].parse(value)


async def alter_resources(ctx: RequestContext, resources: Iterable[Any],
                          plan: Callable[[str, Any], Changes], *, replace_all: bool,
                          validate_only: bool) -> list[dict[str, Any]]:
    """Run `plan(kind, resource)` -> changes through the controller for each resource."""
    broker = ctx.broker
    resources = list(resources)
    counts: dict[tuple[int, str], int] = {}
    for r in resources:
        key = (r.resource_type, r.resource_name)
        counts[key] = counts.get(key, 0) + 1
    results = []
    for r in resources:
        result = dict(resource_type=r.resource_type, resource_name=r.resource_name,
                      error_code=0, error_message=None)
        try:
            if counts[(r.resource_type, r.resource_name)] > 1:
                raise KafkaError(f"Duplicate resource {r.resource_name!r} in the request",
                                 ErrorCode.invalid_request)
            kind = resource_kind(broker, r.resource_type, r.resource_name)
            changes = broker_deletes_for_empty(kind, plan(kind, r))
            validate_changes(kind, changes)
            await broker.controller.alter_configs(kind, r.resource_name, changes,
                                                  replace_all=replace_all,
                                                  validate_only=validate_only)
        except KafkaError as exc:
            result.update(error_code=exc.code, error_message=str(exc))
        results.append(result)
    return results


def _legacy_plan(kind: str, resource: Any) -> Changes:
    changes: Changes = {}
    for config in resource.configs:
        if config.name in changes:
            raise KafkaError(f"Error due to duplicate config keys: {config.name}",
                             ErrorCode.invalid_request)
        changes[config.name] = config.value
    if kind == "topic":
        nulls = [name for name, value in changes.items() if value is None]
        if nulls:
            raise KafkaError(f"Null value not supported for topic configs: {nulls[0]}",
                             ErrorCode.invalid_request)
    return changes


@api(key=33, min_version=0, max_version=2)
async def handle_alter_configs(ctx: RequestContext, request: Any) -> Any:
    if not ctx.broker.is_controller():
        return await ctx.broker.forward_to_controller(ctx, request)
    responses = await alter_resources(ctx, request.resources, _legacy_plan, replace_all=True,
                                      validate_only=request.validate_only)
    return build(response_class(33, ctx.version), throttle_time=0, responses=responses)
