"""AdminClient / Producer / Browser / SnapshotPoller against a real broker, cross-checked with
confluent-kafka (librdkafka) on the same cluster."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from core.admin.browser import Browser
from core.admin.client import AdminClient
from core.admin.poller import SnapshotPoller
from core.admin.producer import Producer, ProducerRecord, default_partition
from core.common.errors import KafkaError, TopicAlreadyExistsError, UnknownTopicOrPartitionError

ck = pytest.importorskip("confluent_kafka")
from confluent_kafka.admin import AdminClient as CkAdmin  # noqa: E402

pytestmark = pytest.mark.timeout(60)


def _name(prefix: str = "adm") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def run(coro):
    return asyncio.run(coro)


def _ck_produce(bootstrap: str, topic: str, records: list[tuple[bytes | None, bytes]]) -> None:
    producer = ck.Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random",
                            "linger.ms": 5})
    for key, value in records:
        producer.produce(topic, value=value, key=key)
    assert producer.flush(15) == 0


def test_metadata_and_topics_match_confluent(kafka_broker):
    topic = _name()

    async def main():
        async with AdminClient(kafka_broker.bootstrap) as admin:
            await admin.create_topic(topic, partitions=3, replication_factor=1,
                                     configs={"retention.ms": "3600000"})
            with pytest.raises(TopicAlreadyExistsError, match="already exists"):
                await admin.create_topic(topic, partitions=3, replication_factor=1)
            md = await admin.metadata()
            configs = await admin.describe_topic_configs(topic)
            cluster = await admin.describe_cluster()
            return md, configs, cluster

    md, configs, cluster = run(main())
    ck_md = CkAdmin({"bootstrap.servers": kafka_broker.bootstrap}).list_topics(timeout=10)
    assert md.cluster_id == ck_md.cluster_id == cluster.cluster_id
    assert md.controller_id == ck_md.controller_id
    assert {b.id: (b.host, b.port) for b in md.brokers} == {
        b.id: (b.host, b.port) for b in ck_md.brokers.values()}
    assert topic in md.topics and topic in ck_md.topics
    for name, t in ck_md.topics.items():
        ours = md.topics[name]
        assert [p.partition for p in ours.partitions] == sorted(t.partitions)
        for p in ours.partitions:
            theirs = t.partitions[p.partition]
            assert (p.leader, list(p.replicas), list(p.isr)) == (
                theirs.leader, theirs.replicas, theirs.isrs)
    assert configs["retention.ms"].value == "3600000"
    assert not configs["retention.ms"].is_default


def test_produce_ours_read_confluent_and_offsets(kafka_broker):
    topic = _name()
    records = [ProducerRecord(f"v{i}".encode(), f"k{i}".encode(), [("h", b"1")])
               for i in range(30)]

    async def main():
        async with AdminClient(kafka_broker.bootstrap) as admin:
            await admin.create_topic(topic, partitions=3, replication_factor=1)
            reports = await Producer(admin).send_many(topic, records)
            latest = await admin.list_offsets([(topic, p) for p in range(3)], "latest")
            earliest = await admin.list_offsets([(topic, p) for p in range(3)], "earliest")
            return reports, latest, earliest

    reports, latest, earliest = run(main())
    assert all(r.ok for r in reports)
    for r in reports:  # Java client's default partitioner
        assert r.partition == default_partition(r.key, 3)
    counts = {p: sum(1 for r in reports if r.partition == p) for p in range(3)}
    consumer = ck.Consumer({"bootstrap.servers": kafka_broker.bootstrap, "group.id": _name("g"),
                            "enable.auto.commit": False})
    try:
        for p in range(3):
            low, high = consumer.get_watermark_offsets(ck.TopicPartition(topic, p), timeout=10)
            assert (low, high) == (earliest[(topic, p)].offset, latest[(topic, p)].offset)
            assert high == counts[p]
        consumer.assign([ck.TopicPartition(topic, p, 0) for p in range(3)])
        seen = {}
        while len(seen) < len(records):
            msg = consumer.poll(10)
            assert msg is not None, f"only {len(seen)} records consumed"
            assert msg.error() is None
            seen[msg.key()] = (msg.value(), msg.partition(), msg.offset(), msg.headers())
    finally:
        consumer.close()
    by_key = {r.key: r for r in reports}
    for key, (value, partition, offset, headers) in seen.items():
        assert by_key[key].value == value
        assert (by_key[key].partition, by_key[key].offset) == (partition, offset)
        assert headers == [("h", b"1")]


def test_produce_confluent_browse_ours(kafka_broker):
    topic = _name()
    CkAdmin({"bootstrap.servers": kafka_broker.bootstrap})

    async def create():
        async with AdminClient(kafka_broker.bootstrap) as admin:
            await admin.create_topic(topic, partitions=2, replication_factor=1)

    run(create())
    _ck_produce(kafka_broker.bootstrap, topic, [(f"k{i}".encode(), f"v{i}".encode())
                                                for i in range(40)])

    async def main():
        async with Browser(kafka_broker.bootstrap) as browser:
            everything = await browser.read(topic, start="earliest", limit=1000)
            last2 = await browser.read(topic, [0], start=("latest_n", 2))
            from_offset = await browser.read(topic, [1], start=("offset", 3), limit=2)
            future = await browser.read(topic, start=("timestamp", 2**42))
            tail = browser.tail(topic, start="latest")
            got = []

            async def collect():
                async for r in tail:
                    got.append(r)
                    if len(got) == 2:
                        return

            task = asyncio.ensure_future(collect())
            await asyncio.sleep(0.3)
            await Producer(browser.admin).send_many(topic, [(None, b"t1"), (None, b"t2")])
            await asyncio.wait_for(task, 10)
            return everything, last2, from_offset, future, got

    everything, last2, from_offset, future, got = run(main())
    assert sorted(r.value for r in everything) == sorted(f"v{i}".encode() for i in range(40))
    for r in everything:
        assert r.partition == default_partition(r.key, 2)  # librdkafka murmur2 == ours
    assert len(last2) == 2 and last2[0].offset + 1 == last2[1].offset
    assert [r.offset for r in from_offset] == [3, 4]
    assert future == []
    assert sorted(r.value for r in got) == [b"t1", b"t2"]


def test_errors_delete_records_and_delete_topics(kafka_broker):
    topic = _name()

    async def main():
        async with AdminClient(kafka_broker.bootstrap) as admin:
            with pytest.raises(UnknownTopicOrPartitionError):
                await admin.list_offsets([("no-such-topic-x", 0)], "latest")
            await admin.create_topic(topic, partitions=1, replication_factor=1)
            await Producer(admin).send_many(topic, [(None, b"x")] * 10)
            low = await admin.delete_records({(topic, 0): 4})
            earliest = await admin.list_offsets([(topic, 0)], "earliest")
            dirs = await admin.describe_log_dirs(raise_errors=False)
            deleted = await admin.delete_topics([topic, "no-such-topic-y"])
            return low, earliest, dirs, deleted

    try:
        low, earliest, dirs, deleted = run(main())
    except KafkaError as exc:
        if "does not support" in str(exc):
            pytest.skip(f"broker lacks an API: {exc}")
        raise
    assert low == {(topic, 0): 4}
    assert earliest[(topic, 0)].offset == 4
    assert deleted[topic] is None
    assert isinstance(deleted["no-such-topic-y"], UnknownTopicOrPartitionError)
    sizes = [size for d in dirs.values() if isinstance(d, list) for ld in d
             for (t, _p), (size, _lag, _f) in ld.partitions.items() if t == topic]
    assert sizes and sizes[0] > 0


def test_groups_lag_reset_and_delete(kafka_broker):
    topic = _name()
    group = _name("grp")

    async def prepare():
        async with AdminClient(kafka_broker.bootstrap) as admin:
            conn = await admin.any_connection()
            if not (conn.supports(10) and conn.supports(8) and conn.supports(9)):
                return False
            await admin.create_topic(topic, partitions=2, replication_factor=1)
            await Producer(admin).send_many(topic, [ProducerRecord(b"v", partition=p)
                                                    for p in (0, 0, 0, 1)])
            return True

    if not run(prepare()):
        pytest.skip("broker has no group coordinator yet")
    consumer = ck.Consumer({"bootstrap.servers": kafka_broker.bootstrap, "group.id": group,
                            "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    try:
        consumer.subscribe([topic])
        got = 0
        while got < 2:
            msg = consumer.poll(10)
            assert msg is not None
            if msg.error() is None and msg.partition() == 0:
                got += 1
                consumer.commit(msg, asynchronous=False)

        async def while_member():
            async with AdminClient(kafka_broker.bootstrap) as admin:
                groups = await admin.list_groups()
                return groups, await admin.group_lag(group)

        groups, info = run(while_member())
    finally:
        consumer.close()
    assert group in [g.group_id for g in groups]
    assert info.state == "Stable" and info.protocol_type == "consumer"
    assert len(info.members) == 1
    assert set(info.members[0].assignment) == {(topic, 0), (topic, 1)}
    rows = {o.partition: o for o in info.offsets}
    assert rows[0].committed == 2 and rows[0].log_end_offset == 3 and rows[0].lag == 1
    assert rows[0].owner == info.members[0].member_id

    ck_admin = CkAdmin({"bootstrap.servers": kafka_broker.bootstrap})  # keep the handle alive
    ck_offsets = ck_admin.list_consumer_group_offsets(
        [ck.ConsumerGroupTopicPartitions(group)])[group].result(timeout=15)
    assert {(tp.topic, tp.partition): tp.offset for tp in ck_offsets.topic_partitions
            if tp.offset >= 0} == {(topic, 0): 2}

    async def after():
        async with AdminClient(kafka_broker.bootstrap) as admin:
            reset = await admin.reset_consumer_group_offsets(group, topic, "latest")
            offsets = await admin.list_consumer_group_offsets(group)
            earliest = await admin.reset_consumer_group_offsets(group, topic, ("offset", 1), [0])
            deleted = await admin.delete_groups([group])
            return reset, offsets, earliest, deleted

    reset, offsets, earliest, deleted = run(after())
    assert reset == {(topic, 0): 3, (topic, 1): 1}
    assert {tp: c.offset for tp, c in offsets.items()} == reset
    assert earliest == {(topic, 0): 1}
    assert deleted == {group: None}


def test_poller_snapshot(kafka_broker):
    topic = _name()

    async def main():
        urls = {}
        if getattr(kafka_broker, "metrics_port", None):
            urls = {1: f"http://127.0.0.1:{kafka_broker.metrics_port}/metrics"}
        poller = SnapshotPoller(kafka_broker.bootstrap, interval_s=0.2,
                                metrics_urls=lambda: urls,
                                process_info=lambda: {1: (kafka_broker.pid, "running")})
        try:
            await poller.admin.create_topic(topic, partitions=2, replication_factor=1)
            producer = Producer(poller.admin)
            snaps = []
            async for snap in poller.snapshots():
                snaps.append(snap)
                await producer.send_many(topic, [ProducerRecord(b"x" * 100, partition=0)] * 20)
                if len(snaps) == 3:
                    break
            return snaps
        finally:
            await poller.close()

    snaps = run(main())
    last = snaps[-1]
    assert last.cluster_id and last.controller_id == 1
    [broker] = [b for b in last.brokers if b.id == 1]
    assert broker.state == "online" and broker.is_controller and broker.pid == kafka_broker.pid
    assert broker.memory_bytes and broker.partitions_led >= 2
    t = last.topic(topic)
    assert t is not None and len(t.partitions) == 2
    p0 = t.partitions[0]
    assert p0.high_watermark == 40 and p0.log_start_offset == 0 and t.records == 40
    assert p0.lag_by_replica == {1: 0}
    assert snaps[0] != snaps[-1] and hash(last)
    if t.size_bytes is not None:
        assert t.size_bytes > 0
    assert snaps[-1].poll_duration_s < 5
