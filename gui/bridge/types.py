"""The domain types and pure rules the rest of gui/ may use, re-exported from core.

Inside gui/ only gui.bridge imports core; models and views import these names from here.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from core.admin.snapshot import (
    BrokerInfo,
    ClusterSnapshot,
    GroupInfo,
    GroupOffset,
    MemberInfo,
    PartitionInfo,
    QuorumInfo,
    QuorumVoter,
    TopicInfo,
    diff_keys,
    frozen_items,
)
from core.common.config import TOPIC_CONFIGS, ConfigDef
from core.common.errors import KafkaError
from core.common.topics import INTERNAL_TOPICS, MAX_NAME_LENGTH, is_internal, validate_topic_name

__all__ = [
    "FOLLOWER_THROTTLED_REPLICAS",
    "FOLLOWER_THROTTLE_RATE",
    "INTERNAL_TOPICS",
    "LEADER_THROTTLED_REPLICAS",
    "LEADER_THROTTLE_RATE",
    "MAX_NAME_LENGTH",
    "NETWORK_FAULTS",
    "TOPIC_CONFIGS",
    "BrokerFaults",
    "BrokerInfo",
    "ClusterSnapshot",
    "ConfigDef",
    "GroupInfo",
    "GroupOffset",
    "KafkaError",
    "MemberInfo",
    "PartitionInfo",
    "QuorumInfo",
    "QuorumVoter",
    "TopicInfo",
    "diff_keys",
    "fault_label",
    "frozen_items",
    "is_internal",
    "throttle_label",
    "topic_config_error",
    "topic_name_error",
    "validate_topic_name",
    "with_faults",
]


def topic_name_error(name: str) -> str | None:
    """Kafka's message for an illegal topic name, or None when the name is legal."""
    try:
        validate_topic_name(name)
    except KafkaError as exc:
        return str(exc)
    return None


def topic_config_error(name: str, value: str) -> str | None:
    """Kafka's message for a bad topic config value, or None when it is valid."""
    definition = TOPIC_CONFIGS.get(name)
    if definition is None:
        return f"Unknown topic config name: {name}"
    try:
        definition.parse(value)
    except KafkaError as exc:
        return str(exc)
    return None


# -- injected faults (issue #8): what the console shows on a broker's row -------------------

#: The supervisor's network fault kinds (ctl ``netfault``), "clear" aside.
NETWORK_FAULTS = ("latency", "drop", "blackhole", "isolate")
#: Kafka's dynamic broker configs for replication throttles (bytes/s).
LEADER_THROTTLE_RATE = "leader.replication.throttled.rate"
FOLLOWER_THROTTLE_RATE = "follower.replication.throttled.rate"
#: Kafka's topic configs naming the throttled replicas ("*" or "partition:broker,...").
LEADER_THROTTLED_REPLICAS = "leader.replication.throttled.replicas"
FOLLOWER_THROTTLED_REPLICAS = "follower.replication.throttled.replicas"


@dataclass(frozen=True, slots=True)
class BrokerFaults(BrokerInfo):
    """A BrokerInfo plus the faults injected into it, as the console knows them.

    ``network_mode`` is the supervisor's proxy mode for the broker (drop | blackhole |
    isolate, None when none) and ``network_latency_ms`` its added latency (None when none);
    the two combine, as in cluster.json's ``netfault``. The throttles are the broker's dynamic
    leader/follower.replication.throttled.rate in bytes/s (None when unset). A subclass, so
    every view that reads a BrokerInfo keeps working and snapshots still compare with ``==``.
    """

    network_mode: str | None = None
    network_latency_ms: float | None = None
    leader_throttle_bps: int | None = None
    follower_throttle_bps: int | None = None

    @property
    def has_network_fault(self) -> bool:
        return bool(self.network_mode or self.network_latency_ms)


def with_faults(broker: BrokerInfo, *, network_mode: str | None = None,
                network_latency_ms: float | None = None,
                leader_throttle_bps: int | None = None,
                follower_throttle_bps: int | None = None) -> BrokerFaults:
    """``broker`` as a :class:`BrokerFaults` carrying these faults."""
    base = {f.name: getattr(broker, f.name) for f in fields(BrokerInfo)}
    return BrokerFaults(**base, network_mode=network_mode if network_mode != "ok" else None,
                        network_latency_ms=network_latency_ms or None,
                        leader_throttle_bps=leader_throttle_bps,
                        follower_throttle_bps=follower_throttle_bps)


def fault_label(broker: object) -> str:
    """'isolated', 'dropping', 'blackhole', '+200 ms', 'isolated, +200 ms' or ''."""
    parts = []
    mode = getattr(broker, "network_mode", None)
    if mode:
        parts.append({"drop": "dropping", "isolate": "isolated"}.get(mode, mode))
    ms = getattr(broker, "network_latency_ms", None)
    if ms:
        parts.append(f"+{ms:g} ms")
    return ", ".join(parts)


def _mb(bps: int) -> str:
    mb = bps / 1_000_000
    return f"{mb:g}" if mb >= 0.01 else f"{mb:.2g}"


def throttle_label(broker: object) -> str:
    """'leader 10 · follower 5 MB/s', 'leader 10 MB/s' or '' (decimal MB, as Kafka's docs)."""
    parts = []
    leader = getattr(broker, "leader_throttle_bps", None)
    follower = getattr(broker, "follower_throttle_bps", None)
    if leader is not None:
        parts.append(f"leader {_mb(leader)}")
    if follower is not None:
        parts.append(f"follower {_mb(follower)}")
    return " \u00b7 ".join(parts) + " MB/s" if parts else ""
