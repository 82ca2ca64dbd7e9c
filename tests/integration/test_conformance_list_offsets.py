"""ListOffsets from a new leader whose high watermark still trails the start of its epoch,
as Apache Kafka answers it (Partition.fetchOffsetForTimestamp): OFFSET_NOT_AVAILABLE
(retriable) for a client's latest offset, until the high watermark catches up; never a
latest offset that is already stale (a consumer resetting to "latest" there would re-read
records). Real clients: kafka-python (topic, reassignment, election), confluent-kafka
(list_offsets) on a 3-broker cluster where one follower is paused (SIGSTOP), so the high
watermark cannot pass what it has.
"""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec
from kafka import TopicPartition as KTopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from tests.fixtures import running_local_cluster, wait_for

pytestmark = pytest.mark.timeout(180)

#: the paused follower must stay in the ISR and registered while the test looks
CONFIG = {"group.initial.rebalance.delay.ms": "0", "offsets.topic.num.partitions": "3",
          "auto.leader.rebalance.enable": "false", "replica.lag.time.max.ms": "120000",
          "broker.session.timeout.ms": "120000"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    yield from running_local_cluster(tmp_path_factory, "conformance-list-offsets", CONFIG)


def _latest(admin: AdminClient, topic: str) -> int | KafkaError:
    tp = TopicPartition(topic, 0)
    try:
        futures = admin.list_offsets({tp: OffsetSpec.latest()}, request_timeout=5)
        return futures[tp].result(10).offset
    except KafkaException as exc:
        return exc.args[0]


def test_latest_offset_from_a_leader_with_a_lagging_high_watermark(cluster):
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    controller = admin.describe_cluster().result(15).controller.id
    paused = next(b for b in (1, 2, 3) if b != controller)  # the quorum keeps its leader
    first, second = (b for b in (1, 2, 3) if b != paused)
    topic = f"lo-{uuid.uuid4().hex[:8]}"
    kadmin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap, request_timeout_ms=10000)
    try:
        kadmin.create_topics([NewTopic(topic, num_partitions=-1, replication_factor=-1,
                                       replica_assignments={0: [first, second, paused]})])
        wait_for(lambda: _latest(admin, topic) == 0, timeout=15, what=f"{topic} to be ready")
        producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all"})
        for i in range(5):
            producer.produce(topic, value=b"all-%d" % i, partition=0)
        producer.flush(15)
        assert _latest(admin, topic) == 5
        cluster.control.pause_sync(paused)
        try:
            producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": 1})
            for i in range(5):
                producer.produce(topic, value=b"one-%d" % i, partition=0)
            producer.flush(15)
            time.sleep(1.0)  # the other follower fetches them; the paused one cannot
            assert _latest(admin, topic) == 5  # the high watermark waits for the paused one
            kadmin.alter_partition_reassignments(
                {KTopicPartition(topic, 0): [second, first, paused]})
            wait_for(lambda: not kadmin.list_partition_reassignments(), timeout=30,
                     what="the reassignment to finish")
            kadmin.elect_leaders(0, {topic: [0]})
            wait_for(lambda: kadmin.describe_topics([topic])[0]["partitions"][0]["leader_id"]
                     == second, timeout=30, what=f"broker {second} to lead")
            # the new leader's epoch began at offset 10; its high watermark is still 5
            deadline = time.monotonic() + 15
            answer = _latest(admin, topic)
            while (isinstance(answer, KafkaError)
                   and answer.code() == KafkaError.NOT_LEADER_FOR_PARTITION
                   and time.monotonic() < deadline):
                time.sleep(0.3)  # the client's metadata still names the old leader
                answer = _latest(admin, topic)
            assert isinstance(answer, KafkaError), f"a stale latest offset {answer}"
            assert answer.code() == KafkaError.OFFSET_NOT_AVAILABLE, answer
        finally:
            cluster.control.resume_sync(paused)
        wait_for(lambda: _latest(admin, topic) == 10, timeout=30,
                 what="the latest offset once the follower is back")
        # earliest carries the epoch its offset was written in (0), not the leader's (1)
        tp = TopicPartition(topic, 0)
        earliest = admin.list_offsets({tp: OffsetSpec.earliest()})[tp].result(10)
        latest = admin.list_offsets({tp: OffsetSpec.latest()})[tp].result(10)
        assert (earliest.offset, earliest.leader_epoch) == (0, 0)
        assert (latest.offset, latest.leader_epoch) == (10, 1)
    finally:
        kadmin.close()


def test_max_timestamp_and_timestamp_lookups_stop_at_the_high_watermark(cluster):
    """Kafka filters every timestamp lookup, max-timestamp included, by the high watermark
    (a record not yet replicated is not found: offset -1, leader epoch -1)."""
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    controller = admin.describe_cluster().result(15).controller.id
    paused = next(b for b in (1, 2, 3) if b != controller)
    leader = next(b for b in (1, 2, 3) if b != paused)
    others = [b for b in (1, 2, 3) if b not in (paused, leader)]
    topic = f"mt-{uuid.uuid4().hex[:8]}"
    tp = TopicPartition(topic, 0)
    kadmin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap, request_timeout_ms=10000)
    try:
        kadmin.create_topics([NewTopic(topic, num_partitions=-1, replication_factor=-1,
                                       replica_assignments={0: [leader, *others, paused]})])
    finally:
        kadmin.close()
    wait_for(lambda: _latest(admin, topic) == 0, timeout=15, what=f"{topic} to be ready")
    base = 1_700_000_000_000
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all"})
    for i in range(3):
        producer.produce(topic, value=b"v", partition=0, timestamp=base + i)
    producer.flush(15)

    def lookup(spec: OffsetSpec) -> tuple[int, int | None]:
        info = admin.list_offsets({tp: spec}, request_timeout=5)[tp].result(10)
        return info.offset, info.leader_epoch

    assert lookup(OffsetSpec.max_timestamp())[0] == 2
    cluster.control.pause_sync(paused)
    try:
        producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": 1})
        producer.produce(topic, value=b"late", partition=0, timestamp=base + 10_000)
        producer.flush(15)
        assert _latest(admin, topic) == 3  # offset 3 is above the high watermark
        assert lookup(OffsetSpec.max_timestamp())[0] == -1
        offset, epoch = lookup(OffsetSpec.for_timestamp(base + 5_000))
        assert offset == -1 and epoch in (None, -1), (offset, epoch)
    finally:
        cluster.control.resume_sync(paused)
    wait_for(lambda: _latest(admin, topic) == 4, timeout=30, what="the high watermark")
    assert lookup(OffsetSpec.max_timestamp())[0] == 3
    assert lookup(OffsetSpec.for_timestamp(base + 5_000))[0] == 3
