"""gui.bridge.throttle's planning: Kafka's throttled-replica lists and rate configs."""

from __future__ import annotations

import pytest

from gui.bridge.backend import ThrottleSpec
from gui.bridge.throttle import (
    ThrottleError,
    rate_configs,
    reassignment_replicas,
    topics_on_broker,
)
from gui.bridge.types import PartitionInfo, TopicInfo


def test_reassignment_lists_follow_kafka_reassign_partitions():
    # orders-0 moves from [1,2,3] to [1,2,4]: replicas (during the move) 1,2,3,4; adding 4
    moving = {("orders", 0): ((1, 2, 3, 4), (4,), (3,)),
              ("orders", 2): ((2, 3, 1), (1,), (2,)),
              ("audit", 1): ((3, 1), (), ())}
    assert reassignment_replicas(moving) == {
        "audit": ("1:3,1:1", ""),
        "orders": ("0:1,0:2,0:3,2:2,2:3", "0:4,2:1"),
    }
    assert reassignment_replicas({}) == {}


def test_rate_configs_set_and_delete():
    assert rate_configs(ThrottleSpec(10_000_000, None)) == (
        {"leader.replication.throttled.rate": "10000000"},
        ["follower.replication.throttled.rate"])
    assert rate_configs(ThrottleSpec(1, 2))[1] == []
    with pytest.raises(ThrottleError):
        rate_configs(ThrottleSpec(None, None))
    with pytest.raises(ThrottleError):
        rate_configs(ThrottleSpec(0, 5))


def test_topics_on_broker_skips_internal_and_absent():
    def topic(name, replicas, internal=False):
        return TopicInfo(name=name, internal=internal, partitions=tuple(
            PartitionInfo(name, i, leader=r[0], replicas=r) for i, r in enumerate(replicas)))

    topics = [topic("a", [(1, 2), (2, 3)]), topic("b", [(2, 3)]),
              topic("__consumer_offsets", [(1, 2)], internal=True)]
    assert topics_on_broker(topics, 1) == ["a"]
    assert topics_on_broker(topics, 3) == ["a", "b"]
    assert topics_on_broker(topics, 9) == []
