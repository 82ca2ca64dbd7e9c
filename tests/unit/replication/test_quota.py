"""Replication throttles (KIP-73): the sampled rate, the quotas, their configs, the leader-side
read filter on a real Partition/Log, and dynamic broker configs applied by the ReplicaManager."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from core.common.config import LONG_MAX, BrokerConfig, validate_topic_configs
from core.common.errors import InvalidConfigError
from core.common.types import TopicPartition
from core.metadata.image import MetadataImage
from core.metadata.records import ConfigChanged, PartitionCreated, RegisterBroker, TopicCreated
from core.records.batch import build_batch
from core.replication.quota import (
    ALL_REPLICAS,
    ReplicationQuota,
    SampledRate,
    parse_throttled_replicas,
)
from core.replication.replica_manager import ReplicaManager
from core.storage.log_manager import LogManager


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rate_divides_by_at_least_samples_minus_one_windows() -> None:
    clock = Clock()
    rate = SampledRate(samples=11, window_s=1.0, clock=clock)
    assert rate.measure() == 0.0
    rate.record(1000)
    assert rate.measure() == pytest.approx(100.0)  # 1000 bytes over the minimum 10 s
    for _ in range(20):  # a steady 500 B/s for 20 s: the rate converges to it
        clock.now += 1.0
        rate.record(500)
    assert rate.measure() == pytest.approx(500.0, rel=0.1)


def test_rate_forgets_windows_older_than_the_sample_span() -> None:
    clock = Clock()
    rate = SampledRate(samples=3, window_s=1.0, clock=clock)
    rate.record(10_000)
    clock.now += 3.5
    assert rate.measure() == 0.0


def test_throttled_replicas_are_filtered_to_this_broker() -> None:
    assert parse_throttled_replicas(["0:1", "1:2", "2:1"], node_id=1) == frozenset({0, 2})
    assert parse_throttled_replicas(["0:3"], node_id=1) == frozenset()
    assert parse_throttled_replicas(["*"], node_id=7) == ALL_REPLICAS


def test_quota_unlimited_by_default_and_exceeded_above_its_bound() -> None:
    clock = Clock()
    quota = ReplicationQuota("follower", 1, samples=11, window_s=1.0, clock=clock)
    quota.update_topic("t", ["0:1"])
    assert quota.is_throttled(TopicPartition("t", 0))
    assert not quota.is_throttled(TopicPartition("t", 1))
    assert not quota.is_throttled(TopicPartition("u", 0))
    quota.record(10**9)
    assert quota.bound == math.inf and not quota.is_quota_exceeded()
    quota.set_bound(LONG_MAX)
    assert not quota.is_quota_exceeded()
    quota = ReplicationQuota("follower", 1, samples=11, window_s=1.0, clock=clock)
    quota.set_bound(100_000)
    quota.record(900_000)  # 90 kB/s over the 10 s minimum window: within the bound
    assert not quota.is_quota_exceeded()
    quota.record(200_000)
    assert quota.is_quota_exceeded()
    clock.now += 12.0  # the samples age out
    assert not quota.is_quota_exceeded()
    assert quota.bytes_total == 1_100_000
    quota.update_topic("t", [])
    assert not quota.is_throttled(TopicPartition("t", 0))


@pytest.mark.parametrize("value", ["-1", "abc"])
def test_negative_or_bad_rate_is_invalid_config(value: str) -> None:
    with pytest.raises(InvalidConfigError, match=r"follower\.replication\.throttled\.rate"):
        BrokerConfig({"follower.replication.throttled.rate": value})


@pytest.mark.parametrize("value", ["0:1,1:2", "*", "", " 3 : 4 "])
def test_valid_throttled_replica_lists(value: str) -> None:
    validate_topic_configs({"leader.replication.throttled.replicas": value,
                            "follower.replication.throttled.replicas": value})


@pytest.mark.parametrize("value", ["0", "a:1", "0:1,*", "1:-2", "0:1:2"])
def test_invalid_throttled_replica_lists(value: str) -> None:
    with pytest.raises(InvalidConfigError, match="must be the literal"):
        validate_topic_configs({"leader.replication.throttled.replicas": value})


def test_with_dynamic_overlays_and_skips_bad_values() -> None:
    static = BrokerConfig({"log.retention.ms": "1000"})
    config = static.with_dynamic({"log.retention.ms": "2000", "node.id": "x",
                                  "leader.replication.throttled.rate": "5"})
    assert config["log.retention.ms"] == 2000
    assert config["leader.replication.throttled.rate"] == 5
    assert config["node.id"] == static["node.id"]
    assert static["log.retention.ms"] == 1000


def _image(*records) -> MetadataImage:
    image = MetadataImage()
    for i, record in enumerate(records):
        image = image.apply(record, i)
    return image


BASE = [RegisterBroker(b, "127.0.0.1", 9000 + b, None, 1, "x") for b in (1, 2, 3)] + [
    TopicCreated("t", "00000000-0000-0000-0000-000000000001"),
    PartitionCreated("t", 0, [1, 2, 3], [1, 2], 1),
    PartitionCreated("t", 1, [1, 2, 3], [1, 2, 3], 1),
]


@pytest.fixture
def logs(tmp_path: Path):
    manager = LogManager(tmp_path, BrokerConfig({"node.id": "1"}).topic_defaults())
    yield manager
    manager.close()


def test_replica_manager_applies_dynamic_broker_configs(logs: LogManager) -> None:
    config = BrokerConfig({"node.id": "1"})
    rm = ReplicaManager(1, config, logs)
    rm.apply_image(_image(*BASE))
    log_ = rm.partitions[TopicPartition("t", 0)].log
    assert log_.config["retention.ms"] == config["log.retention.ms"]
    assert rm.quotas.leader.bound == math.inf
    image = _image(*BASE,
                   ConfigChanged("broker", "", "log.retention.ms", "5000"),
                   ConfigChanged("broker", "", "leader.replication.throttled.rate", "10"),
                   ConfigChanged("broker", "1", "leader.replication.throttled.rate", "20"),
                   ConfigChanged("broker", "2", "follower.replication.throttled.rate", "30"),
                   ConfigChanged("topic", "t", "leader.replication.throttled.replicas",
                                 "0:1,1:2"))
    rm.apply_image(image)
    assert log_.config["retention.ms"] == 5000  # cluster default reaches a topic without override
    assert rm.quotas.leader.bound == 20  # per-broker beats the cluster default
    assert rm.quotas.follower.bound == math.inf  # broker 2's setting is not ours
    assert rm.quotas.leader.is_throttled(TopicPartition("t", 0))
    assert not rm.quotas.leader.is_throttled(TopicPartition("t", 1))
    rm.apply_image(_image(*BASE))  # configs deleted: back to the static values
    assert log_.config["retention.ms"] == config["log.retention.ms"]
    assert rm.quotas.leader.bound == math.inf
    assert not rm.quotas.leader.is_throttled(TopicPartition("t", 0))


def test_leader_side_throttle_spares_the_isr_and_consumers(logs: LogManager) -> None:
    config = BrokerConfig({"node.id": "1"})
    rm = ReplicaManager(1, config, logs)
    rm.apply_image(_image(*BASE,
                          ConfigChanged("broker", "1", "leader.replication.throttled.rate", "1"),
                          ConfigChanged("topic", "t", "leader.replication.throttled.replicas",
                                        "*")))
    partition = rm.partitions[TopicPartition("t", 0)]
    assert partition.is_leader
    data = build_batch([(b"k", b"v" * 100, [])], timestamp_ms=1)
    # first read is served and recorded; then the quota (1 B/s) is exceeded
    assert partition.throttle_replica_read(3, data) == data
    assert rm.quotas.leader.bytes_total == len(data)
    assert partition.throttle_replica_read(3, data) == b""  # replica 3 is outside the ISR
    assert partition.throttle_replica_read(2, data) == data  # in sync: never throttled
    assert partition.throttle_replica_read(-1, data) == data  # a consumer
    assert rm.quotas.leader.bytes_total == 2 * len(data)  # in-sync bytes still count


def test_delay_is_the_time_until_the_rate_is_back_within_the_bound() -> None:
    clock = Clock()
    quota = ReplicationQuota("follower", 1, samples=3, window_s=1.0, clock=clock)
    assert quota.delay_s(1.0) == 0.0  # unlimited
    quota.set_bound(100_000)
    assert quota.delay_s(1.0) == 0.0
    quota.record(300_000)  # 150 kB/s over the 2 s minimum
    assert quota.is_quota_exceeded()
    assert quota.delay_s(1.0) == 1.0  # capped by replica.fetch.backoff.ms
    # Kafka's Rate divides by the elapsed time plus the missing whole windows (2.99 s just
    # before 1 s, 2 s again at 1 s), so 300 kB stay above 100 kB/s until 3 s have passed
    delay = quota.delay_s(5.0)
    assert 2.9 <= delay <= 3.1
    clock.now += 2.5
    assert quota.is_quota_exceeded()
    clock.now += delay - 2.5
    clock.now += delay
    assert not quota.is_quota_exceeded()
