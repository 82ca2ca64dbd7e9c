"""Broker and topic configuration, with Kafka's names, defaults and validation.

A topic config (`retention.ms`) falls back to its broker default (`log.retention.ms`), as in Kafka.
Values are stored as strings on the wire and parsed here, once.

Dynamic broker configs (AlterConfigs on the broker resource "<id>" or the cluster default "")
are resolved here, in one place, for the running logs and for DescribeConfigs alike: a topic
config is its topic override, else the broker config it falls back to, whose value is the
dynamic per-broker value, else the dynamic cluster default, else server.properties, else
Kafka's default (DescribeConfigs' sources 1, 2, 3, 4, 5). Only DYNAMIC_BROKER_CONFIGS are read
from the dynamic levels; a stored value that is empty or no longer parses is skipped there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from core.common.errors import InvalidConfigError

Parser = Callable[[str], Any]


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered not in ("true", "false"):
        raise ValueError("Expected value to be either true or false")
    return lowered == "true"


def _integer(kind: str, bits: int) -> Parser:
    """Kafka's INT / LONG parsing: a trimmed decimal within the type's range, else the
    message of ConfigDef.parseType ("Not a number of type LONG")."""
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1

    def parse(value: str) -> int:
        try:
            number = int(value.strip())
        except ValueError:
            raise ValueError(f"Not a number of type {kind}") from None
        if not low <= number <= high:
            raise ValueError(f"Not a number of type {kind}")
        return number
    return parse


def _double(value: str) -> float:
    try:
        return float(value.strip())
    except ValueError:
        raise ValueError("Not a number of type DOUBLE") from None


_PARSERS: dict[str, Parser] = {
    "int": _integer("INT", 32), "long": _integer("LONG", 64), "double": _double,
    "boolean": _bool, "string": str,
}


def _list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


@dataclass(frozen=True)
class ConfigDef:
    """One configuration key: Kafka's name, type, default and allowed values."""

    name: str
    type: str  # "int", "long", "double", "boolean", "string", "list"
    default: str | None
    doc: str = ""
    min: float | None = None
    choices: tuple[str, ...] | None = None
    broker_name: str | None = None  # for topic configs: the broker default it falls back to
    validator: Callable[[Any], None] | None = None  # extra check of the parsed value

    def parse(self, raw: str) -> Any:
        """Parse and validate a raw string value, raising InvalidConfigError as Kafka does."""
        try:
            value = _list(raw) if self.type == "list" else _PARSERS[self.type](raw)
        except (ValueError, TypeError) as exc:
            raise InvalidConfigError(
                f"Invalid value {raw} for configuration {self.name}: {exc}"
            ) from None
        if self.min is not None and value < self.min:
            raise InvalidConfigError(
                f"Invalid value {raw} for configuration {self.name}: "
                f"Value must be at least {self.min:g}"
            )
        if self.choices is not None:
            items = value if isinstance(value, list) else [value]
            for item in items:
                if item not in self.choices:
                    raise InvalidConfigError(
                        f"Invalid value {raw} for configuration {self.name}: "
                        f"String must be one of: {', '.join(self.choices)}"
                    )
        if self.validator is not None:
            try:
                self.validator(value)
            except ValueError as exc:
                raise InvalidConfigError(
                    f"Invalid value {raw} for configuration {self.name}: {exc}") from None
        return value


def _throttled_replicas(items: list[str]) -> None:
    """Kafka's ThrottledReplicaListValidator: `*` or `partitionId:brokerId` pairs."""
    if items == ["*"]:
        return
    for item in items:
        partition, sep, broker = item.partition(":")
        if not (sep and partition.strip().isdigit() and broker.strip().isdigit()):
            raise ValueError("must be the literal '*' or a list of replicas in the following "
                             "format: [partitionId]:[brokerId],[partitionId]:[brokerId],...")


MB = 1024 * 1024
WEEK_MS = 7 * 24 * 3600 * 1000
LONG_MAX = 2**63 - 1

TOPIC_CONFIGS: dict[str, ConfigDef] = {
    c.name: c
    for c in [
        ConfigDef("cleanup.policy", "list", "delete", choices=("delete", "compact"),
                  broker_name="log.cleanup.policy"),
        ConfigDef("compression.type", "string", "producer",
                  choices=("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"),
                  broker_name="compression.type"),
        ConfigDef("delete.retention.ms", "long", "86400000", min=0,
                  broker_name="log.cleaner.delete.retention.ms"),
        ConfigDef("file.delete.delay.ms", "long", "60000", min=0,
                  broker_name="log.segment.delete.delay.ms"),
        ConfigDef("flush.messages", "long", str(2**63 - 1), min=1,
                  broker_name="log.flush.interval.messages"),
        ConfigDef("flush.ms", "long", str(2**63 - 1), min=0, broker_name="log.flush.interval.ms"),
        ConfigDef("follower.replication.throttled.replicas", "list", "",
                  doc="Replicas (partitionId:brokerId, or *) whose replication the follower "
                      "throttles to follower.replication.throttled.rate (KIP-73)",
                  validator=_throttled_replicas),
        ConfigDef("index.interval.bytes", "int", "4096", min=0,
                  broker_name="log.index.interval.bytes"),
        ConfigDef("leader.replication.throttled.replicas", "list", "",
                  doc="Replicas (partitionId:brokerId, or *) whose replication the leader "
                      "throttles to leader.replication.throttled.rate (KIP-73)",
                  validator=_throttled_replicas),
        ConfigDef("max.compaction.lag.ms", "long", str(2**63 - 1), min=1,
                  broker_name="log.cleaner.max.compaction.lag.ms"),
        ConfigDef("max.message.bytes", "int", str(MB + 12), min=0,
                  broker_name="message.max.bytes"),
        ConfigDef("message.timestamp.type", "string", "CreateTime",
                  choices=("CreateTime", "LogAppendTime"),
                  broker_name="log.message.timestamp.type"),
        ConfigDef("min.cleanable.dirty.ratio", "double", "0.5", min=0,
                  broker_name="log.cleaner.min.cleanable.ratio"),
        ConfigDef("min.compaction.lag.ms", "long", "0", min=0,
                  broker_name="log.cleaner.min.compaction.lag.ms"),
        ConfigDef("min.insync.replicas", "int", "1", min=1, broker_name="min.insync.replicas"),
        ConfigDef("preallocate", "boolean", "false", broker_name="log.preallocate"),
        ConfigDef("retention.bytes", "long", "-1", broker_name="log.retention.bytes"),
        ConfigDef("retention.ms", "long", str(WEEK_MS), min=-1, broker_name="log.retention.ms"),
        ConfigDef("segment.bytes", "int", str(1024 * MB), min=14, broker_name="log.segment.bytes"),
        ConfigDef("segment.index.bytes", "int", str(10 * MB), min=4,
                  broker_name="log.index.size.max.bytes"),
        ConfigDef("segment.jitter.ms", "long", "0", min=0, broker_name="log.roll.jitter.ms"),
        ConfigDef("segment.ms", "long", str(WEEK_MS), min=1, broker_name="log.roll.ms"),
        ConfigDef("unclean.leader.election.enable", "boolean", "false",
                  broker_name="unclean.leader.election.enable"),
    ]
}

BROKER_CONFIGS: dict[str, ConfigDef] = {
    c.name: c
    for c in [
        ConfigDef("node.id", "int", "1", min=0),
        ConfigDef("broker.id", "int", "-1"),
        ConfigDef("listeners", "string", "PLAINTEXT://127.0.0.1:9092"),
        ConfigDef("advertised.listeners", "string", None),
        ConfigDef("log.dirs", "string", "/tmp/kaflab-logs"),
        ConfigDef("log.dir", "string", "/tmp/kaflab-logs"),
        ConfigDef("metrics.port", "int", "0", min=0),
        ConfigDef("controller.quorum.voters", "string", ""),
        ConfigDef("controller.quorum.election.timeout.ms", "int", "1000", min=1,
                  doc="Time without a leader before a voter starts an election (plus jitter)"),
        ConfigDef("controller.quorum.fetch.timeout.ms", "int", "2000", min=1,
                  doc="Time without a successful fetch from the leader before a voter "
                      "considers it gone"),
        ConfigDef("controller.quorum.election.backoff.max.ms", "int", "1000", min=1,
                  doc="Upper bound of the randomised exponential backoff after a lost election"),
        ConfigDef("metadata.log.max.record.bytes.between.snapshots", "long", str(20 * MB), min=1,
                  doc="Metadata record bytes applied after which a metadata snapshot is taken"),
        ConfigDef("auto.create.topics.enable", "boolean", "true"),
        ConfigDef("num.partitions", "int", "1", min=1),
        ConfigDef("default.replication.factor", "int", "1", min=1),
        ConfigDef("offsets.topic.num.partitions", "int", "50", min=1),
        ConfigDef("offsets.topic.replication.factor", "int", "3", min=1),
        ConfigDef("offsets.retention.minutes", "int", "10080", min=1),
        ConfigDef("offsets.retention.check.interval.ms", "long", "600000", min=1),
        ConfigDef("transaction.state.log.num.partitions", "int", "50", min=1),
        ConfigDef("group.initial.rebalance.delay.ms", "int", "3000", min=0),
        ConfigDef("group.min.session.timeout.ms", "int", "6000"),
        ConfigDef("group.max.session.timeout.ms", "int", "1800000"),
        ConfigDef("group.max.size", "int", str(2**31 - 1), min=1),
        ConfigDef("socket.request.max.bytes", "int", str(100 * MB), min=1),
        ConfigDef("connections.max.idle.ms", "long", "600000"),
        ConfigDef("replica.lag.time.max.ms", "long", "30000"),
        ConfigDef("replica.fetch.max.bytes", "int", str(MB), min=0),
        ConfigDef("replica.fetch.wait.max.ms", "int", "500"),
        ConfigDef("replica.fetch.backoff.ms", "int", "1000", min=0),
        ConfigDef("leader.replication.throttled.rate", "long", str(LONG_MAX), min=0,
                  doc="Bytes/s this broker sends to throttled followers (dynamic)"),
        ConfigDef("follower.replication.throttled.rate", "long", str(LONG_MAX), min=0,
                  doc="Bytes/s this broker fetches for throttled replicas (dynamic)"),
        ConfigDef("replication.quota.window.num", "int", "11", min=1),
        ConfigDef("replication.quota.window.size.seconds", "int", "1", min=1),
        ConfigDef("broker.session.timeout.ms", "int", "9000"),
        ConfigDef("broker.heartbeat.interval.ms", "int", "2000"),
        ConfigDef("auto.leader.rebalance.enable", "boolean", "true"),
        ConfigDef("log.retention.check.interval.ms", "long", "300000", min=1),
        ConfigDef("log.retention.hours", "int", "168"),
        ConfigDef("log.flush.offset.checkpoint.interval.ms", "int", "60000", min=0),
        ConfigDef("log.cleaner.enable", "boolean", "true"),
        ConfigDef("log.cleaner.backoff.ms", "long", "15000", min=0),
        ConfigDef("transaction.max.timeout.ms", "int", "900000", min=1),
        ConfigDef("transactional.id.expiration.ms", "int", "604800000", min=1),
        ConfigDef("producer.id.expiration.ms", "int", "86400000", min=1),
        ConfigDef("delete.topic.enable", "boolean", "true"),
        *(ConfigDef(t.broker_name, t.type, t.default, min=t.min, choices=t.choices)
          for t in TOPIC_CONFIGS.values() if t.broker_name),
    ]
}


class ConfigSource(IntEnum):
    """Where a config value comes from (DescribeConfigsResponse.ConfigSource), in Kafka's
    order of precedence: a lower number wins."""

    DYNAMIC_TOPIC_CONFIG = 1
    DYNAMIC_BROKER_CONFIG = 2
    DYNAMIC_DEFAULT_BROKER_CONFIG = 3
    STATIC_BROKER_CONFIG = 4
    DEFAULT_CONFIG = 5


#: Kafka's DynamicLogConfig.ReconfigurableConfigs: the broker config each topic config falls
#: back to (ServerTopicConfigSynonyms.TOPIC_CONFIG_SYNONYMS values); update mode cluster-wide
DYNAMIC_LOG_CONFIGS = frozenset(t.broker_name for t in TOPIC_CONFIGS.values() if t.broker_name)

#: broker configs AlterConfigs may change at runtime, per broker or as the cluster default:
#: Kafka's DynamicBrokerConfig.AllDynamicConfigs restricted to the configs this broker knows
#: (the log defaults, LogCleaner's log.cleaner.backoff.ms, the replication throttle rates of
#: DynamicConfig.Broker). Everything else is read-only, as in Kafka: log.retention.hours,
#: log.retention.check.interval.ms, log.cleaner.enable, log.dirs, num.partitions, ...
DYNAMIC_BROKER_CONFIGS = (DYNAMIC_LOG_CONFIGS | frozenset({
    "log.cleaner.backoff.ms",
    "leader.replication.throttled.rate", "follower.replication.throttled.rate",
})) & frozenset(BROKER_CONFIGS)

#: a broker config's names, highest precedence first (DynamicBrokerConfig.brokerConfigSynonyms)
BROKER_SYNONYMS: dict[str, tuple[str, ...]] = {
    "log.retention.ms": ("log.retention.ms", "log.retention.hours"),
}

#: (name, raw value, source): one level that sets a config, as DescribeConfigs lists synonyms
Synonym = tuple[str, str | None, ConfigSource]


def usable_dynamic_value(name: str, raw: str | None) -> bool:
    """Whether a dynamic broker config stored in the metadata applies: a dynamic config
    with a value that parses (an empty or stale value is skipped, so a bad stored value
    never stops a broker; Kafka likewise drops invalid dynamic configs with a warning)."""
    if name not in DYNAMIC_BROKER_CONFIGS or raw is None or raw.strip() == "":
        return False
    try:
        BROKER_CONFIGS[name].parse(raw)
    except InvalidConfigError:
        return False
    return True


def dynamic_overrides(cluster_default: Mapping[str, str],
                      per_broker: Mapping[str, str]) -> dict[str, str]:
    """The dynamic values that apply on a broker: its own over the cluster default."""
    merged = {n: v for n, v in cluster_default.items() if usable_dynamic_value(n, v)}
    merged.update((n, v) for n, v in per_broker.items() if usable_dynamic_value(n, v))
    return merged


def broker_config_synonyms(name: str, static_raw: Mapping[str, str],
                           cluster_default: Mapping[str, str],
                           per_broker: Mapping[str, str]) -> list[Synonym]:
    """Every level that sets broker config `name`, highest precedence first; the first is
    where its effective value comes from. The built-in default is always last."""
    result: list[Synonym] = []
    levels = ((per_broker, ConfigSource.DYNAMIC_BROKER_CONFIG),
              (cluster_default, ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG),
              (static_raw, ConfigSource.STATIC_BROKER_CONFIG))
    for props, source in levels:
        for synonym in BROKER_SYNONYMS.get(name, (name,)):
            raw = props.get(synonym)
            if raw is None:
                continue
            if source != ConfigSource.STATIC_BROKER_CONFIG and \
                    not usable_dynamic_value(synonym, raw):
                continue
            result.append((synonym, raw, source))
    definition = BROKER_CONFIGS.get(name)
    if definition is not None:
        result.append((name, definition.default, ConfigSource.DEFAULT_CONFIG))
    return result


def topic_config_synonyms(definition: ConfigDef, overrides: Mapping[str, str],
                          static_raw: Mapping[str, str], cluster_default: Mapping[str, str],
                          per_broker: Mapping[str, str]) -> list[Synonym]:
    """Every level that sets topic config `definition`, highest precedence first: the topic
    override, then its broker config's levels under the broker name (`log.retention.ms`)."""
    result: list[Synonym] = []
    if definition.name in overrides:
        result.append((definition.name, overrides[definition.name],
                       ConfigSource.DYNAMIC_TOPIC_CONFIG))
    if definition.broker_name:
        result += broker_config_synonyms(definition.broker_name, static_raw,
                                         cluster_default, per_broker)
    else:
        result.append((definition.name, definition.default, ConfigSource.DEFAULT_CONFIG))
    return result


class BrokerConfig:
    """The parsed broker configuration: Kafka property names to typed values."""

    def __init__(self, props: Mapping[str, str] | None = None) -> None:
        self.raw: dict[str, str] = dict(props or {})
        self._values: dict[str, Any] = {}
        for name, definition in BROKER_CONFIGS.items():
            raw = self.raw.get(name, definition.default)
            self._values[name] = None if raw is None else definition.parse(raw)
        if "log.retention.ms" not in self.raw and "log.retention.hours" in self.raw:
            self._values["log.retention.ms"] = self._values["log.retention.hours"] * 3600 * 1000
        if "node.id" not in self.raw and self._values["broker.id"] >= 0:
            self._values["node.id"] = self._values["broker.id"]

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def get(self, name: str, default: Any = None) -> Any:
        return self._values.get(name, default)

    def is_default(self, name: str) -> bool:
        return name not in self.raw

    def with_dynamic(self, overrides: Mapping[str, str]) -> BrokerConfig:
        """This static config with dynamic broker configs laid over it (cluster default
        first, then this broker's, as the caller merges them). Only DYNAMIC_BROKER_CONFIGS
        apply, and a value that is empty or no longer parses is skipped, so a bad stored
        override never stops a broker (see usable_dynamic_value)."""
        props = dict(self.raw)
        props.update((n, v) for n, v in overrides.items() if usable_dynamic_value(n, v))
        return BrokerConfig(props)

    def resolve(self, cluster_default: Mapping[str, str],
                per_broker: Mapping[str, str]) -> BrokerConfig:
        """The effective config of a broker whose static config this is, given the dynamic
        cluster default ("") and its own dynamic configs ("<id>") from the metadata image."""
        return self.with_dynamic(dynamic_overrides(cluster_default, per_broker))

    def topic_defaults(self) -> dict[str, Any]:
        """Every topic config's effective default on this broker."""
        return {t.name: self._values[t.broker_name] for t in TOPIC_CONFIGS.values()
                if t.broker_name}


def validate_topic_configs(configs: Mapping[str, str | None]) -> dict[str, Any]:
    """Check topic overrides as Kafka's CreateTopics/AlterConfigs does; return parsed values."""
    parsed: dict[str, Any] = {}
    for name, raw in configs.items():
        definition = TOPIC_CONFIGS.get(name)
        if definition is None:
            raise InvalidConfigError(f"Unknown topic config name: {name}")
        if raw is None:
            raise InvalidConfigError(f"Null value not supported for topic configs: {name}")
        parsed[name] = definition.parse(raw)
    return parsed


def effective_topic_config(
    broker: BrokerConfig, overrides: Mapping[str, str]
) -> dict[str, Any]:
    """The full topic configuration: broker defaults with the topic's overrides applied."""
    values = broker.topic_defaults()
    values.update(validate_topic_configs(overrides))
    return values


def load_properties(path: str) -> dict[str, str]:
    """Read a Java-style .properties file (key=value, # comments)."""
    props: dict[str, str] = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if not line or line.startswith(("#", "!")):
                continue
            key, sep, value = line.partition("=")
            if not sep:
                key, _, value = line.partition(":")
            props[key.strip()] = value.strip()
    return props
