"""The controller.quorum.* timing configs: Kafka's names and defaults, validated, and handed to
the Raft node."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.broker.raft_io import RaftMetadataLog
from core.common.config import BrokerConfig
from core.common.errors import InvalidConfigError


def test_defaults_are_kafkas() -> None:
    config = BrokerConfig({})
    assert config["controller.quorum.election.timeout.ms"] == 1000
    assert config["controller.quorum.fetch.timeout.ms"] == 2000
    assert config["controller.quorum.election.backoff.max.ms"] == 1000


@pytest.mark.parametrize("name", ["controller.quorum.election.timeout.ms",
                                  "controller.quorum.fetch.timeout.ms",
                                  "controller.quorum.election.backoff.max.ms"])
@pytest.mark.parametrize("value", ["0", "-5", "soon"])
def test_bad_values_are_refused(name: str, value: str) -> None:
    with pytest.raises(InvalidConfigError):
        BrokerConfig({name: value})


def test_the_raft_node_gets_them(tmp_path: Path) -> None:
    log = RaftMetadataLog(1, {1: ("127.0.0.1", 1), 2: ("127.0.0.1", 2)}, tmp_path, "c",
                          election_timeout_ms=700, fetch_timeout_ms=1400,
                          election_backoff_max_ms=250)
    assert log.node.election_timeout_ms == 700
    assert log.node.election_backoff_max_ms == 250
