"""The domain types and pure rules the rest of gui/ may use, re-exported from core.

Inside gui/ only gui.bridge imports core; models and views import these names from here.
"""

from __future__ import annotations

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
    "INTERNAL_TOPICS",
    "MAX_NAME_LENGTH",
    "TOPIC_CONFIGS",
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
    "frozen_items",
    "is_internal",
    "topic_config_error",
    "topic_name_error",
    "validate_topic_name",
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
