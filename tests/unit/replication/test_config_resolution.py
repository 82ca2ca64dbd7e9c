"""Dynamic broker config resolution (core.common.config): topic override > dynamic per-broker
> dynamic cluster default > server.properties > Kafka's default, applied by the ReplicaManager
to running logs and to logs created later, and reported by DescribeConfigs from the same
resolution (it must never show a value the logs do not run with)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from core.broker.handlers.describe_configs import (
    broker_entry,
    cluster_default_entries,
    render,
    topic_entry,
)
from core.common.config import (
    BROKER_CONFIGS,
    DYNAMIC_BROKER_CONFIGS,
    TOPIC_CONFIGS,
    WEEK_MS,
    BrokerConfig,
    ConfigSource,
    broker_config_synonyms,
    effective_topic_config,
    topic_config_synonyms,
)
from core.common.types import TopicPartition
from core.metadata.image import MetadataImage
from core.metadata.records import ConfigChanged, PartitionCreated, RegisterBroker, TopicCreated
from core.replication.replica_manager import ReplicaManager
from core.storage.log_manager import LogManager

S = ConfigSource


def _resolve(static: dict[str, str], cluster: dict[str, str], own: dict[str, str],
             name: str) -> tuple[object, list]:
    config = BrokerConfig(static).resolve(cluster, own)
    return config[name], broker_config_synonyms(name, static, cluster, own)


def test_precedence_per_broker_over_cluster_default_over_static_over_default() -> None:
    static = {"log.retention.ms": "4000"}
    cluster = {"log.retention.ms": "3000"}
    own = {"log.retention.ms": "2000"}
    value, synonyms = _resolve(static, cluster, own, "log.retention.ms")
    assert value == 2000
    assert synonyms == [("log.retention.ms", "2000", S.DYNAMIC_BROKER_CONFIG),
                        ("log.retention.ms", "3000", S.DYNAMIC_DEFAULT_BROKER_CONFIG),
                        ("log.retention.ms", "4000", S.STATIC_BROKER_CONFIG),
                        ("log.retention.ms", str(WEEK_MS), S.DEFAULT_CONFIG)]
    # removing a level falls back to the next one
    assert _resolve(static, cluster, {}, "log.retention.ms")[0] == 3000
    assert _resolve(static, {}, {}, "log.retention.ms")[0] == 4000
    assert _resolve({}, {}, {}, "log.retention.ms")[0] == WEEK_MS
    assert _resolve({}, {}, {}, "log.retention.ms")[1][0][2] == S.DEFAULT_CONFIG


def test_topic_override_beats_every_broker_level() -> None:
    static = {"log.segment.bytes": "5000"}
    cluster = {"log.segment.bytes": "4000"}
    own = {"log.segment.bytes": "3000"}
    effective = BrokerConfig(static).resolve(cluster, own)
    definition = TOPIC_CONFIGS["segment.bytes"]
    assert effective_topic_config(effective, {"segment.bytes": "2000"})["segment.bytes"] == 2000
    assert effective_topic_config(effective, {})["segment.bytes"] == 3000
    synonyms = topic_config_synonyms(definition, {"segment.bytes": "2000"}, static, cluster,
                                     own)
    assert [(n, s) for n, _, s in synonyms] == [
        ("segment.bytes", S.DYNAMIC_TOPIC_CONFIG),
        ("log.segment.bytes", S.DYNAMIC_BROKER_CONFIG),
        ("log.segment.bytes", S.DYNAMIC_DEFAULT_BROKER_CONFIG),
        ("log.segment.bytes", S.STATIC_BROKER_CONFIG),
        ("log.segment.bytes", S.DEFAULT_CONFIG)]


@pytest.mark.parametrize("stored", ["", "  ", "soon", "-5"])
def test_empty_or_bad_stored_values_are_skipped_by_both(stored: str) -> None:
    """A dynamic value that does not parse (or is empty) applies nowhere: neither the logs
    nor DescribeConfigs see it (segment.bytes must be >= 14, so "-5" is refused too)."""
    cluster = {"log.segment.bytes": "4000"}
    own = {"log.segment.bytes": stored}
    value, synonyms = _resolve({}, cluster, own, "log.segment.bytes")
    assert value == 4000
    assert synonyms[0] == ("log.segment.bytes", "4000", S.DYNAMIC_DEFAULT_BROKER_CONFIG)


def test_an_empty_list_value_is_no_value() -> None:
    """"" parses as an empty list: stored as a dynamic log.cleanup.policy it would stop both
    deletion and compaction, so it counts as unset (the handlers turn it into a DELETE)."""
    value, synonyms = _resolve({}, {"log.cleanup.policy": "compact"},
                               {"log.cleanup.policy": ""}, "log.cleanup.policy")
    assert value == ["compact"]
    assert synonyms[0][2] == S.DYNAMIC_DEFAULT_BROKER_CONFIG


@pytest.mark.parametrize("name,raw", [
    ("log.retention.check.interval.ms", "1000"),  # read-only in Kafka
    ("log.retention.hours", "1"),  # only log.retention.ms is dynamic
    ("num.partitions", "7"),
    ("node.id", "9"),
    ("log.dirs", "/elsewhere"),
])
def test_non_dynamic_configs_stored_in_the_image_never_apply(name: str, raw: str) -> None:
    static = BrokerConfig({"node.id": "1"})
    value, synonyms = _resolve({"node.id": "1"}, {name: raw}, {name: raw}, name)
    assert value == static[name]
    assert all(s not in (S.DYNAMIC_BROKER_CONFIG, S.DYNAMIC_DEFAULT_BROKER_CONFIG)
               for _, _, s in synonyms)


def test_dynamic_broker_configs_are_kafkas() -> None:
    # DynamicLogConfig: the broker synonym of every topic config
    for definition in TOPIC_CONFIGS.values():
        if definition.broker_name:
            assert definition.broker_name in DYNAMIC_BROKER_CONFIGS, definition.broker_name
    for name in ("log.retention.ms", "log.retention.bytes", "log.segment.bytes", "log.roll.ms",
                 "log.cleanup.policy", "log.flush.interval.ms", "log.flush.interval.messages",
                 "log.index.interval.bytes", "log.message.timestamp.type", "message.max.bytes",
                 "log.cleaner.delete.retention.ms", "log.cleaner.min.compaction.lag.ms",
                 "log.cleaner.backoff.ms", "leader.replication.throttled.rate"):
        assert name in DYNAMIC_BROKER_CONFIGS, name
    for name in ("log.retention.check.interval.ms", "log.retention.hours", "log.dirs",
                 "log.cleaner.enable", "num.partitions", "listeners",
                 "log.flush.offset.checkpoint.interval.ms", "replica.lag.time.max.ms"):
        assert name not in DYNAMIC_BROKER_CONFIGS, name
    assert DYNAMIC_BROKER_CONFIGS.issubset(BROKER_CONFIGS)


def test_static_hours_synonym_and_dynamic_ms_over_it() -> None:
    static = {"log.retention.hours": "1"}
    value, synonyms = _resolve(static, {}, {}, "log.retention.ms")
    assert value == 3600 * 1000
    assert synonyms[0] == ("log.retention.hours", "1", S.STATIC_BROKER_CONFIG)
    value, synonyms = _resolve(static, {"log.retention.ms": "5000"}, {}, "log.retention.ms")
    assert value == 5000
    assert synonyms[0][2] == S.DYNAMIC_DEFAULT_BROKER_CONFIG


# ReplicaManager + DescribeConfigs over real logs ---------------------------------------------
BASE = [RegisterBroker(b, "127.0.0.1", 9000 + b, None, 1, "x") for b in (1, 2)] + [
    TopicCreated("plain", "00000000-0000-0000-0000-000000000001"),
    PartitionCreated("plain", 0, [1, 2], [1, 2], 1),
    TopicCreated("pinned", "00000000-0000-0000-0000-000000000002"),
    ConfigChanged("topic", "pinned", "retention.ms", "86400000"),
    PartitionCreated("pinned", 0, [1, 2], [1, 2], 1),
]
PLAIN, PINNED = TopicPartition("plain", 0), TopicPartition("pinned", 0)


def _image(*records) -> MetadataImage:
    image = MetadataImage()
    for i, record in enumerate(records):
        image = image.apply(record, i)
    return image


@pytest.fixture
def rm(tmp_path: Path):
    static = BrokerConfig({"node.id": "1", "log.retention.ms": "600000"})
    logs = LogManager(tmp_path, static.topic_defaults())
    manager = ReplicaManager(1, static, logs)
    manager.apply_image(_image(*BASE))
    yield manager
    logs.close()


def _retention(rm: ReplicaManager, tp: TopicPartition) -> int:
    return rm.partitions[tp].log.config["retention.ms"]


def test_running_logs_follow_the_image(rm: ReplicaManager) -> None:
    assert _retention(rm, PLAIN) == 600000
    rm.apply_image(_image(*BASE, ConfigChanged("broker", "", "log.retention.ms", "3000")))
    assert _retention(rm, PLAIN) == 3000  # cluster default reaches a running log
    assert _retention(rm, PINNED) == 86400000  # the topic override keeps winning
    cluster = ConfigChanged("broker", "", "log.retention.ms", "3000")
    rm.apply_image(_image(*BASE, cluster,
                          ConfigChanged("broker", "2", "log.retention.ms", "1000")))
    assert _retention(rm, PLAIN) == 3000  # broker 2's own value is not ours
    rm.apply_image(_image(*BASE, cluster,
                          ConfigChanged("broker", "1", "log.retention.ms", "2000")))
    assert _retention(rm, PLAIN) == 2000  # ours beats the cluster default
    rm.apply_image(_image(*BASE, cluster))  # ours deleted: the cluster default again
    assert _retention(rm, PLAIN) == 3000
    rm.apply_image(_image(*BASE))  # both deleted: server.properties again
    assert _retention(rm, PLAIN) == 600000


def test_logs_created_later_get_the_dynamic_defaults(rm: ReplicaManager) -> None:
    cluster = ConfigChanged("broker", "", "message.max.bytes", "2000")
    rm.apply_image(_image(*BASE, cluster))
    later = [TopicCreated("later", "00000000-0000-0000-0000-000000000003"),
             PartitionCreated("later", 0, [1, 2], [1, 2], 1)]
    rm.apply_image(_image(*BASE, cluster, *later))
    assert rm.partitions[TopicPartition("later", 0)].log.config["max.message.bytes"] == 2000
    assert rm.logs.default_config["max.message.bytes"] == 2000


def _describer(rm: ReplicaManager, image: MetadataImage) -> SimpleNamespace:
    return SimpleNamespace(replicas=rm, image=image, node_id=1, config=rm.static_config)


def test_describe_reports_exactly_what_the_logs_run_with(rm: ReplicaManager) -> None:
    image = _image(*BASE,
                   ConfigChanged("broker", "", "log.retention.ms", "3000"),
                   ConfigChanged("broker", "", "log.segment.bytes", "70000"),
                   ConfigChanged("broker", "1", "log.segment.bytes", "80000"),
                   ConfigChanged("broker", "1", "log.cleanup.policy", "compact,delete"),
                   ConfigChanged("broker", "", "message.max.bytes", "bogus"),
                   ConfigChanged("broker", "", "log.retention.check.interval.ms", "1"))
    rm.apply_image(image)
    broker = _describer(rm, image)
    for tp in (PLAIN, PINNED):
        overrides = image.topics[tp.topic].configs
        running = rm.partitions[tp].log.config
        for name, definition in TOPIC_CONFIGS.items():
            entry = topic_entry(broker, definition, overrides)
            parsed = definition.parse(entry["value"]) if entry["value"] is not None else None
            assert parsed == running[name], (tp, name, entry["value"], running[name])
    plain = {d.name: topic_entry(broker, d, {}) for d in TOPIC_CONFIGS.values()}
    assert plain["retention.ms"]["config_source"] == S.DYNAMIC_DEFAULT_BROKER_CONFIG
    assert plain["segment.bytes"]["config_source"] == S.DYNAMIC_BROKER_CONFIG
    assert plain["segment.bytes"]["value"] == "80000"
    assert plain["max.message.bytes"]["config_source"] == S.DEFAULT_CONFIG  # bogus skipped
    pinned = topic_entry(broker, TOPIC_CONFIGS["retention.ms"], {"retention.ms": "86400000"})
    assert pinned["config_source"] == S.DYNAMIC_TOPIC_CONFIG
    interval = broker_entry(broker, BROKER_CONFIGS["log.retention.check.interval.ms"])
    assert interval["read_only"] and interval["config_source"] == S.DEFAULT_CONFIG
    segment = broker_entry(broker, BROKER_CONFIGS["log.segment.bytes"])
    assert (segment["value"], segment["config_source"]) == ("80000", S.DYNAMIC_BROKER_CONFIG)
    assert render(rm.config["log.segment.bytes"]) == segment["value"]
    # the cluster-default resource lists the dynamic defaults that apply, nothing else
    defaults = {e["name"]: e for e in cluster_default_entries(broker, None)}
    assert set(defaults) == {"log.retention.ms", "log.segment.bytes"}
    assert defaults["log.segment.bytes"]["value"] == "70000"
    assert [s["source"] for s in defaults["log.segment.bytes"]["synonyms"]] == [
        S.DYNAMIC_DEFAULT_BROKER_CONFIG, S.DEFAULT_CONFIG]
