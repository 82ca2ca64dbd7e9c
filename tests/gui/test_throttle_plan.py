"""gui.bridge.throttle's planning: Kafka's throttled-replica lists and rate configs."""

from __future__ import annotations

import pytest

from gui.bridge.backend import ThrottleSpec
from gui.bridge.throttle import (
    ThrottleError,
    rate_configs,
    reassignment_replicas,
    throttled_topics,
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


def test_all_replicas_throttle_covers_every_non_internal_topic():
    def topic(name, replicas, internal=False):
        return TopicInfo(name=name, internal=internal, partitions=tuple(
            PartitionInfo(name, i, leader=r[0], replicas=r) for i, r in enumerate(replicas)))

    topics = [topic("b", [(2, 3)]), topic("a", [(1, 2), (2, 3)]),
              topic("__consumer_offsets", [(1, 2)], internal=True)]
    # "b" has no replica on broker 1 yet; a reassignment may add one: it is covered too
    assert throttled_topics(topics) == ["a", "b"]
    assert throttled_topics([]) == []
