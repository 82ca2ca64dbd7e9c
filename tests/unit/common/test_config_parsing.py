"""Config values are parsed as Kafka's ConfigDef.parseType does, with its messages: what a
client (and the console's error dialog) shows for a bad value."""

from __future__ import annotations

import pytest

from core.common.config import BROKER_CONFIGS, TOPIC_CONFIGS
from core.common.errors import InvalidConfigError


@pytest.mark.parametrize(("name", "raw", "message"), [
    ("retention.ms", "abc", "Invalid value abc for configuration retention.ms: "
                            "Not a number of type LONG"),
    ("retention.ms", "1.5", "Not a number of type LONG"),
    ("retention.ms", str(2**63), "Not a number of type LONG"),
    ("segment.bytes", str(2**31), "Not a number of type INT"),
    ("min.cleanable.dirty.ratio", "half", "Not a number of type DOUBLE"),
    ("unclean.leader.election.enable", "yes", "Expected value to be either true or false"),
    ("segment.bytes", "-5", "Value must be at least"),
    ("cleanup.policy", "delete,shred", "String must be one of: delete, compact"),
])
def test_bad_topic_values_get_kafkas_messages(name: str, raw: str, message: str) -> None:
    with pytest.raises(InvalidConfigError) as info:
        TOPIC_CONFIGS[name].parse(raw)
    assert message in str(info.value)
    assert "invalid literal" not in str(info.value)


def test_good_values_parse_trimmed_and_at_the_type_limits() -> None:
    assert TOPIC_CONFIGS["retention.ms"].parse(" 604800000 ") == 604800000
    assert TOPIC_CONFIGS["retention.ms"].parse(str(2**63 - 1)) == 2**63 - 1
    assert TOPIC_CONFIGS["segment.bytes"].parse(str(2**31 - 1)) == 2**31 - 1
    assert TOPIC_CONFIGS["min.cleanable.dirty.ratio"].parse("0.25") == 0.25
    assert TOPIC_CONFIGS["unclean.leader.election.enable"].parse(" TRUE ") is True
    assert BROKER_CONFIGS["num.partitions"].parse("3") == 3
    assert TOPIC_CONFIGS["cleanup.policy"].parse("compact, delete") == ["compact", "delete"]
