"""DescribeConfigs (32): topic and broker configs with Kafka's sources and synonyms.

A topic config's value is the topic override, else the broker's effective default (dynamic
per-broker, dynamic cluster-wide, static from server.properties, built-in default, in that
order of precedence, as Kafka resolves it). Synonyms list every level that is set, highest
precedence first, under their broker names (`log.retention.ms` for `retention.ms`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kio.schema.errors import ErrorCode

from core.broker.api import RequestContext, api
from core.common.config import BROKER_CONFIGS, TOPIC_CONFIGS, ConfigDef
from core.common.errors import KafkaError
from core.common.topics import validate_topic_name
from core.protocol.build import build
from core.protocol.codec import response_class

# ConfigResource.Type
TOPIC = 2
BROKER = 4
BROKER_LOGGER = 8

# DescribeConfigsResponse.ConfigSource
DYNAMIC_TOPIC_CONFIG = 1
DYNAMIC_BROKER_CONFIG = 2
DYNAMIC_DEFAULT_BROKER_CONFIG = 3
STATIC_BROKER_CONFIG = 4
DEFAULT_CONFIG = 5

# DescribeConfigsResponse.ConfigType
_CONFIG_TYPES = {"boolean": 1, "string": 2, "int": 3, "short": 4, "long": 5, "double": 6,
                 "list": 7, "class": 8, "password": 9}

#: broker configs Kafka lets AlterConfigs change at runtime (cluster-wide or per broker):
#: every broker default of a topic config, plus a few broker-wide ones
DYNAMIC_BROKER_CONFIGS = frozenset(
    {t.broker_name for t in TOPIC_CONFIGS.values() if t.broker_name}
    | {"log.cleaner.backoff.ms", "log.retention.check.interval.ms",
       "leader.replication.throttled.rate", "follower.replication.throttled.rate"}
) & frozenset(BROKER_CONFIGS)


def render(value: Any) -> str | None:
    """A parsed config value as Kafka prints it (booleans lower-case, lists comma-joined)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def broker_synonyms(broker: Any, name: str) -> list[tuple[str, str | None, int]]:
    """(name, value, source) for every level that sets broker config `name`, highest first."""
    image = broker.image
    definition = BROKER_CONFIGS.get(name)
    result: list[tuple[str, str | None, int]] = []
    per_broker: Mapping[str, str] = image.broker_configs.get(str(broker.node_id), {})
    cluster: Mapping[str, str] = image.broker_configs.get("", {})
    if name in per_broker:
        result.append((name, per_broker[name], DYNAMIC_BROKER_CONFIG))
    if name in cluster:
        result.append((name, cluster[name], DYNAMIC_DEFAULT_BROKER_CONFIG))
    raw = broker.config.raw
    if name in raw:
        result.append((name, raw[name], STATIC_BROKER_CONFIG))
    elif name == "log.retention.ms" and "log.retention.hours" in raw:
        result.append(("log.retention.hours", raw["log.retention.hours"], STATIC_BROKER_CONFIG))
    if definition is not None:
        result.append((name, definition.default, DEFAULT_CONFIG))
    return result


def topic_entry(broker: Any, definition: ConfigDef, overrides: Mapping[str, str]) -> dict:
    """One DescribeConfigs entry for a topic config, with its synonyms."""
    synonyms: list[tuple[str, str | None, int]] = []
    if definition.name in overrides:
        synonyms.append((definition.name, overrides[definition.name], DYNAMIC_TOPIC_CONFIG))
    if definition.broker_name:
        synonyms += broker_synonyms(broker, definition.broker_name)
    else:
        synonyms.append((definition.name, definition.default, DEFAULT_CONFIG))
    _, value, source = synonyms[0]
    return _entry(definition, value, source, False, synonyms)


def broker_entry(broker: Any, definition: ConfigDef) -> dict:
    """One DescribeConfigs entry for a broker config."""
    synonyms = broker_synonyms(broker, definition.name)
    _, value, source = synonyms[0]
    if source == DEFAULT_CONFIG:
        value = render(broker.config.get(definition.name))
    return _entry(definition, value, source, definition.name not in DYNAMIC_BROKER_CONFIGS,
                  synonyms)


def _entry(definition: ConfigDef, value: str | None, source: int, read_only: bool,
           synonyms: list[tuple[str, str | None, int]]) -> dict:
    return dict(name=definition.name, value=value, read_only=read_only, config_source=source,
                is_sensitive=False, is_default=source == DEFAULT_CONFIG,
                config_type=_CONFIG_TYPES.get(definition.type, 0),
                documentation=definition.doc or None,
                synonyms=[dict(name=n, value=v, source=s) for n, v, s in synonyms])


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
        if resource_name not in ("", str(broker.node_id)):
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
