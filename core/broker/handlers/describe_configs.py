"""DescribeConfigs (32): topic and broker configs with Kafka's sources and synonyms.

A topic config's value is the topic override, else the broker's effective default (dynamic
per-broker, dynamic cluster-wide, static from server.properties, built-in default, in that
order of precedence, as Kafka resolves it). Synonyms list every level that is set, highest
precedence first, under their broker names (`log.retention.ms` for `retention.ms`).

Values and sources come from core.common.config's resolution over the ReplicaManager's
effective config and dynamic levels: the very config the running logs were given.
The cluster-default resource (broker "") lists only the dynamic defaults that are set, as
Kafka's ConfigHelper does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kio.schema.errors import ErrorCode

from core.broker.api import RequestContext, api
from core.common.config import (
    BROKER_CONFIGS,
    DYNAMIC_BROKER_CONFIGS,
    TOPIC_CONFIGS,
    ConfigDef,
    ConfigSource,
    Synonym,
    broker_config_synonyms,
    topic_config_synonyms,
    usable_dynamic_value,
)
from core.common.errors import KafkaError
from core.common.topics import validate_topic_name
from core.protocol.build import build
from core.protocol.codec import response_class

__all__ = ["BROKER", "BROKER_LOGGER", "DYNAMIC_BROKER_CONFIGS", "TOPIC", "describe_resource",
           "render"]

# ConfigResource.Type
TOPIC = 2
BROKER = 4
BROKER_LOGGER = 8

# DescribeConfigsResponse.ConfigType
_CONFIG_TYPES = {"boolean": 1, "string": 2, "int": 3, "short": 4, "long": 5, "double": 6,
                 "list": 7, "class": 8, "password": 9}


def render(value: Any) -> str | None:
    """A parsed config value as Kafka prints it (booleans lower-case, lists comma-joined)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def _levels(broker: Any) -> tuple[Mapping[str, str], Mapping[str, str], Mapping[str, str]]:
    """(server.properties, dynamic cluster default, dynamic per-broker) as the logs got them."""
    replicas = broker.replicas
    return replicas.static_config.raw, replicas.dynamic_default, replicas.dynamic_broker


def topic_entry(broker: Any, definition: ConfigDef, overrides: Mapping[str, str]) -> dict:
    """One DescribeConfigs entry for a topic config, with its synonyms."""
    synonyms = topic_config_synonyms(definition, overrides, *_levels(broker))
    _, value, source = synonyms[0]
    if source != ConfigSource.DYNAMIC_TOPIC_CONFIG and definition.broker_name:
        # the broker's effective default, exactly as every log without an override has it
        value = render(broker.replicas.config.get(definition.broker_name))
    return _entry(definition, value, source, False, synonyms)


def broker_entry(broker: Any, definition: ConfigDef) -> dict:
    """One DescribeConfigs entry for a broker config of this broker."""
    synonyms = broker_config_synonyms(definition.name, *_levels(broker))
    source = synonyms[0][2]
    value = render(broker.replicas.config.get(definition.name))
    return _entry(definition, value, source, definition.name not in DYNAMIC_BROKER_CONFIGS,
                  synonyms)


def cluster_default_entries(broker: Any, keys: tuple[str, ...] | None) -> list[dict]:
    """The broker resource "": the dynamic cluster defaults that are set (and apply), with
    synonyms below the per-broker level, as Kafka describes it."""
    static, cluster, _ = _levels(broker)
    entries = []
    for name, raw in sorted(cluster.items()):
        if (keys is not None and name not in keys) or not usable_dynamic_value(name, raw):
            continue
        synonyms = broker_config_synonyms(name, static, cluster, {})
        entries.append(_entry(BROKER_CONFIGS[name], raw,
                              ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG, False, synonyms))
    return entries


def _entry(definition: ConfigDef, value: str | None, source: int, read_only: bool,
           synonyms: list[Synonym]) -> dict:
    return dict(name=definition.name, value=value, read_only=read_only,
                config_source=int(source), is_sensitive=False,
                is_default=source == ConfigSource.DEFAULT_CONFIG,
                config_type=_CONFIG_TYPES.get(definition.type, 0),
                documentation=definition.doc or None,
                synonyms=[dict(name=n, value=v, source=int(s)) for n, v, s in synonyms])


def describe_resource(broker: Any, resource_type: int, resource_name: str,
                      keys: tuple[str, ...] | None) -> list[dict]:
    """Every (or the named) config entry of one resource; raises KafkaError as Kafka does."""
    if resource_type == TOPIC:
        validate_topic_name(resource_name)
        topic = broker.image.topics.get(resource_name)
        if topic is None:
            raise KafkaError(f"The topic '{resource_name}' does not exist.",
                             ErrorCode.unknown_topic_or_partition)
        return [topic_entry(broker, d, topic.configs) for name, d in TOPIC_CONFIGS.items()
                if keys is None or name in keys]
    if resource_type == BROKER:
        if resource_name == "":
            return cluster_default_entries(broker, keys)
        if resource_name != str(broker.node_id):
            raise KafkaError(f"Unexpected broker id, expected {broker.node_id} or empty "
                             f"string, but received {resource_name}", ErrorCode.invalid_request)
        return [broker_entry(broker, d) for name, d in BROKER_CONFIGS.items()
                if keys is None or name in keys]
    if resource_type == BROKER_LOGGER:
        raise KafkaError("Broker loggers are not supported by this broker",
                         ErrorCode.invalid_request)
    raise KafkaError(f"Unsupported resource type {resource_type}", ErrorCode.invalid_request)


@api(key=32, min_version=1, max_version=4)
async def handle_describe_configs(ctx: RequestContext, request: Any) -> Any:
    results = []
    for resource in request.resources:
        keys = resource.configuration_keys
        keys = tuple(keys) if keys else None
        try:
            entries = describe_resource(ctx.broker, resource.resource_type,
                                        resource.resource_name, keys)
        except KafkaError as exc:
            results.append(dict(error_code=exc.code, error_message=str(exc),
                                resource_type=resource.resource_type,
                                resource_name=resource.resource_name, configs=[]))
            continue
        if not request.include_synonyms:
            for entry in entries:
                entry["synonyms"] = []
        if not getattr(request, "include_documentation", False):
            for entry in entries:
                entry["documentation"] = None
        results.append(dict(error_code=0, error_message=None,
                            resource_type=resource.resource_type,
                            resource_name=resource.resource_name, configs=entries))
    return build(response_class(32, ctx.version), throttle_time=0, results=results)
