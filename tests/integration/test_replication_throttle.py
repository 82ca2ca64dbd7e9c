"""Replication throttles (KIP-73) on a real 3-broker `serve` cluster, set the way
kafka-configs.sh / kafka-reassign-partitions.sh --throttle set them: IncrementalAlterConfigs
from confluent-kafka's AdminClient on the broker resource ("3", or "" for the cluster default)
and on the topic. A replica added by a reassignment catches up at about the throttle, then fast
once the throttle is removed; in-sync replication is never throttled.

The brokers run with Kafka's replication.quota.window.num=3 (instead of 11) and
replica.fetch.max.bytes=64 KiB so that the measured rate settles within seconds instead of
tens of seconds (Kafka's quota lets a burst of (window.num - 1) windows through first).
Every process is ended by PID (LocalCluster.stop).
"""

from __future__ import annotations

import asyncio
import os
import re
import time
import urllib.request
import uuid

import pytest
from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient as ConfluentAdmin
from confluent_kafka.admin import (
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    ResourceType,
)

from core.admin import reassign as ra
from core.admin.client import RESOURCE_BROKER, AdminClient
from core.cluster import read_cluster_json
from tests.fixtures import running_local_cluster, wait_for

pytestmark = pytest.mark.timeout(300)

THROTTLE = 100_000  # bytes/s
RECORD = 1000  # bytes of value per record


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    yield from running_local_cluster(tmp_path_factory, "throttle", {
        "replica.lag.time.max.ms": "3000", "offsets.topic.num.partitions": "3",
        "offsets.topic.replication.factor": "1", "group.initial.rebalance.delay.ms": "0",
        "replication.quota.window.num": "3", "replica.fetch.max.bytes": "65536"},
        spare_ports=1)


@pytest.fixture(scope="module")
def admin(cluster):
    return ConfluentAdmin({"bootstrap.servers": cluster.bootstrap})


def admin_call(cluster, fn):
    async def run():
        async with AdminClient(cluster.bootstrap) as client:
            return await fn(client)
    return asyncio.run(run())


def alter(admin: ConfluentAdmin, kind: ResourceType, name: str,
          **configs: str | None) -> None:
    """IncrementalAlterConfigs: SET each value, DELETE each None (names use _ for .)."""
    entries = [ConfigEntry(k.replace("_", "."), v,
                           incremental_operation=AlterConfigOpType.DELETE if v is None
                           else AlterConfigOpType.SET) for k, v in configs.items()]
    resource = ConfigResource(kind, name, incremental_configs=entries)
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(timeout=30)


def alter_cluster_default(cluster, **configs: str | None) -> None:
    """The cluster-wide default (broker resource ""), with core.admin's client: librdkafka
    and kafka-python refuse an empty broker name (the Java admin and kafka-configs.sh
    --entity-default send exactly this IncrementalAlterConfigs)."""
    names = {k.replace("_", "."): v for k, v in configs.items()}
    admin_call(cluster, lambda client: client.incremental_alter_configs(
        RESOURCE_BROKER, "", set_={k: v for k, v in names.items() if v is not None},
        delete=[k for k, v in names.items() if v is None]))


def metrics(cluster, broker_id: int) -> str:
    doc = read_cluster_json(cluster.data_dir)
    port = next(b["metrics_port"] for b in doc["brokers"] if b["id"] == broker_id)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        return resp.read().decode()


def metric(text: str, name: str, **labels: str) -> float | None:
    """The value of `name` whose labels include `labels` in Prometheus text, or None."""
    for line in text.splitlines():
        m = re.match(rf"{re.escape(name)}(?:\{{(.*)\}})? (\S+)$", line)
        if not m:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(m.group(2))
    return None


def log_size(cluster, broker_id: int, topic: str) -> float:
    value = metric(metrics(cluster, broker_id), "kafka_log_log_size", topic=topic,
                   partition="0")
    return value or 0.0


def produce(cluster, topic: str, count: int) -> float:
    """Produce `count` incompressible records with acks=all; returns the seconds it took."""
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all",
                         "batch.size": 16384, "linger.ms": 5,
                         "enable.idempotence": True})
    errors: list[object] = []
    start = time.monotonic()
    for i in range(count):
        while True:
            try:
                producer.produce(topic, os.urandom(RECORD), key=str(i).encode(),
                                 partition=0,
                                 on_delivery=lambda err, _m: err and errors.append(err))
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    assert producer.flush(120) == 0
    assert not errors, errors[:3]
    return time.monotonic() - start


def create(cluster, topic: str, replicas: list[int]) -> None:
    async def fn(client):
        await client.create_topic(topic, assignments={0: replicas})
    admin_call(cluster, fn)

    def led_everywhere():
        return all(metric(metrics(cluster, b), "kafka_log_log_logendoffset", topic=topic,
                          partition="0") is not None for b in replicas)
    wait_for(led_everywhere, 30, f"{topic} on brokers {replicas}")


def rate_limit(cluster, broker_id: int, side: str) -> float | None:
    return metric(metrics(cluster, broker_id), "kafka_server_replication_throttled_rate_limit",
                  side=side)


def test_added_replica_catches_up_at_the_throttle_then_fast_once_removed(cluster, admin):
    # a fresh topic per attempt: a rerun after a failure retries instead of stopping at
    # TOPIC_ALREADY_EXISTS (the reassignment leaves the first attempt's topic behind)
    topic = f"throttled-move-{uuid.uuid4().hex[:6]}"
    create(cluster, topic, [1, 2])
    produce(cluster, topic, 3000)  # ~3 MB
    total = log_size(cluster, 1, topic)
    assert total > 2_900_000
    # kafka-reassign-partitions --throttle: leader side on the current replicas, follower
    # side on the one being added; the rates on the brokers involved
    alter(admin, ResourceType.TOPIC, topic,
          leader_replication_throttled_replicas="0:1,0:2",
          follower_replication_throttled_replicas="0:3")
    alter(admin, ResourceType.BROKER, "3", follower_replication_throttled_rate=str(THROTTLE))
    wait_for(lambda: rate_limit(cluster, 3, "follower") == THROTTLE, 30,
             "the follower rate applied on broker 3")
    targets = {(topic, 0): [1, 2, 3]}
    admin_call(cluster, lambda client: ra.submit(client, targets))
    try:
        wait_for(lambda: log_size(cluster, 3, topic) > 400_000, 60, "the first 400 kB")
        t0, s0 = time.monotonic(), log_size(cluster, 3, topic)
        time.sleep(8)
        t1, s1 = time.monotonic(), log_size(cluster, 3, topic)
        throttled_rate = (s1 - s0) / (t1 - t0)
        print(f"throttled catch-up: {throttled_rate / 1000:.0f} kB/s "
              f"(throttle {THROTTLE / 1000:.0f} kB/s)")
        assert 0.3 * THROTTLE < throttled_rate < 2.0 * THROTTLE
        assert s1 < total  # still behind: the throttle, not the end of the data, stopped it
        text = metrics(cluster, 3)
        measured = metric(text, "kafka_server_replication_throttled_byte_rate",
                          side="follower")
        assert measured is not None and 0 < measured < 3 * THROTTLE
        throttled_bytes = metric(text, "kafka_server_replication_throttled_bytes_total",
                                 side="follower")
        assert throttled_bytes is not None and throttled_bytes >= s1 * 0.9
    finally:
        alter(admin, ResourceType.BROKER, "3", follower_replication_throttled_rate=None)
    t2, s2 = time.monotonic(), log_size(cluster, 3, topic)
    wait_for(lambda: log_size(cluster, 3, topic) >= total, 60, "broker 3 caught up")
    fast_rate = (total - s2) / (time.monotonic() - t2)
    print(f"unthrottled catch-up: {fast_rate / 1000:.0f} kB/s for {(total - s2) / 1e6:.1f} MB")
    assert fast_rate > 4 * THROTTLE
    moves = admin_call(cluster, lambda client: ra.wait_for(client, targets, timeout=60))
    assert set(moves[0].isr) == {1, 2, 3}
    alter(admin, ResourceType.TOPIC, topic, leader_replication_throttled_replicas=None,
          follower_replication_throttled_replicas=None)


def test_in_sync_replication_is_not_throttled(cluster, admin):
    topic = "throttled-in-sync"
    create(cluster, topic, [1, 2, 3])
    baseline = produce(cluster, topic, 1000)
    tiny = 10_000  # 1 MB at 10 kB/s would take 100 s
    alter(admin, ResourceType.TOPIC, topic, leader_replication_throttled_replicas="*",
          follower_replication_throttled_replicas="*")
    alter_cluster_default(cluster, leader_replication_throttled_rate=str(tiny),
                          follower_replication_throttled_rate=str(tiny))
    try:
        for b in (1, 2, 3):
            wait_for(lambda b=b: rate_limit(cluster, b, "follower") == tiny, 30,
                     f"the cluster-default rate on broker {b}")
        throttled = produce(cluster, topic, 1000)
        print(f"1 MB acks=all, RF 3: {baseline:.2f} s unthrottled, {throttled:.2f} s with a "
              f"{tiny / 1000:.0f} kB/s throttle on every replica")
        assert throttled < 3 * baseline + 5
        moves = admin_call(cluster, lambda client: ra.status(client, {(topic, 0): [1, 2, 3]}))
        assert set(moves[0].isr) == {1, 2, 3}
        # the bytes were counted against the quota all the same, as Kafka does
        recorded = metric(metrics(cluster, 2), "kafka_server_replication_throttled_bytes_total",
                          side="follower")
        assert recorded is not None and recorded >= 1_000_000
    finally:
        alter_cluster_default(cluster, leader_replication_throttled_rate=None,
                              follower_replication_throttled_rate=None)
    for b in (1, 2, 3):
        wait_for(lambda b=b: rate_limit(cluster, b, "follower") == float("inf"), 30,
                 f"the rate removed on broker {b}")


def test_throttle_configs_are_validated_and_described(cluster, admin):
    with pytest.raises(KafkaException, match="INVALID_CONFIG"):
        alter(admin, ResourceType.BROKER, "1", leader_replication_throttled_rate="-1")
    topic = "throttled-validate"
    create(cluster, topic, [1])
    with pytest.raises(KafkaException, match="INVALID_CONFIG"):
        alter(admin, ResourceType.TOPIC, topic, leader_replication_throttled_replicas="0-1")
    alter(admin, ResourceType.BROKER, "1", leader_replication_throttled_rate="12345")
    try:
        wait_for(lambda: rate_limit(cluster, 1, "leader") == 12345, 30, "the rate on broker 1")
        resource = ConfigResource(ResourceType.BROKER, "1")
        described = admin.describe_configs([resource])[resource].result(timeout=30)
        entry = described["leader.replication.throttled.rate"]
        assert entry.value == "12345"
        assert entry.source in (ConfigSource.DYNAMIC_BROKER_CONFIG,
                                ConfigSource.DYNAMIC_BROKER_CONFIG.value)
        assert not entry.is_read_only
        assert rate_limit(cluster, 2, "leader") == float("inf")  # broker 1's only
    finally:
        alter(admin, ResourceType.BROKER, "1", leader_replication_throttled_rate=None)


def test_leader_throttle_bounds_what_the_leader_sends(cluster, admin):
    topic = "throttled-leader"
    create(cluster, topic, [1, 2])
    produce(cluster, topic, 3000)
    total = log_size(cluster, 1, topic)
    alter(admin, ResourceType.TOPIC, topic, leader_replication_throttled_replicas="0:1")
    alter(admin, ResourceType.BROKER, "1", leader_replication_throttled_rate=str(THROTTLE))
    wait_for(lambda: rate_limit(cluster, 1, "leader") == THROTTLE, 30, "the leader rate")
    targets = {(topic, 0): [1, 2, 3]}
    admin_call(cluster, lambda client: ra.submit(client, targets))
    try:
        wait_for(lambda: log_size(cluster, 3, topic) > 400_000, 60, "the first 400 kB")
        t0, s0 = time.monotonic(), log_size(cluster, 3, topic)
        time.sleep(8)
        rate = (log_size(cluster, 3, topic) - s0) / (time.monotonic() - t0)
        print(f"leader-throttled catch-up: {rate / 1000:.0f} kB/s "
              f"(throttle {THROTTLE / 1000:.0f} kB/s)")
        assert 0.3 * THROTTLE < rate < 2.0 * THROTTLE
    finally:
        alter(admin, ResourceType.BROKER, "1", leader_replication_throttled_rate=None)
    wait_for(lambda: log_size(cluster, 3, topic) >= total, 60, "broker 3 caught up")
    admin_call(cluster, lambda client: ra.wait_for(client, targets, timeout=60))


def test_dynamic_broker_default_reaches_topics_without_override(cluster):
    """Not only the throttle: a cluster-wide dynamic min.insync.replicas=2 makes acks=all on
    an RF-1 topic fail with NOT_ENOUGH_REPLICAS until it is deleted again."""
    topic = "dynamic-min-isr"
    create(cluster, topic, [1])

    def produce_one() -> str | None:
        producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all",
                             "retries": 0, "enable.idempotence": False,
                             "message.timeout.ms": 10000})
        outcome: list[object] = []
        producer.produce(topic, b"v", partition=0,
                         on_delivery=lambda err, _m: outcome.append(err))
        producer.flush(15)
        assert outcome, "no delivery report"
        return outcome[0].name() if outcome[0] is not None else None

    assert produce_one() is None
    alter_cluster_default(cluster, min_insync_replicas="2")
    try:
        wait_for(lambda: produce_one() == "NOT_ENOUGH_REPLICAS", 30,
                 "min.insync.replicas=2 applied on broker 1")
    finally:
        alter_cluster_default(cluster, min_insync_replicas=None)
    wait_for(lambda: produce_one() is None, 30, "min.insync.replicas back to 1")
