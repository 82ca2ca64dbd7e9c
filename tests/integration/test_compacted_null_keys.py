"""A compacted topic refuses records without a key, as Apache Kafka does.

Kafka's LogValidator.validateKey: on a topic whose cleanup.policy includes "compact", a produce
holding a record with a null key gets INVALID_RECORD (87) for that partition, with
record_errors naming the batch index of each keyless record ("Compacted topic cannot accept
message without key in topic partition <tp>") and the summary error_message; nothing of the
batch is appended. Checked with confluent-kafka (librdkafka), kafka-python (which maps
record_errors to each record's future) and raw Produce requests (the exact wire fields), and
for a topic whose cleanup.policy becomes compact at runtime.
"""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
)

from core.records.batch import COMPRESSION_GZIP, build_batch
from tests.fixtures import raw_request, wait_for

pytestmark = pytest.mark.timeout(180)

TIMEOUT = 20


def _message(topic: str, partition: int = 0) -> str:
    return ("Compacted topic cannot accept message without key in topic partition "
            f"{topic}-{partition}")


def _summary(topic: str, indexes: list[int]) -> str:
    shown = ", ".join(f"RecordError(batchIndex={i}, message='{_message(topic)}')"
                      for i in indexes[:3])
    return (f"One or more records have been rejected due to {len(indexes)} record errors in "
            f"total, and only showing the first three errors at most: [{shown}]")


def _create(bootstrap: str, configs: dict[str, str] | None = None, partitions: int = 1) -> str:
    name = f"cnk-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, partitions, 1, config=configs or {})])[name].result(
        TIMEOUT)
    return name


def _produce(bootstrap: str, topic: str, records: list[tuple[bytes | None, bytes]],
             **config: object) -> list:
    """Produce ``records`` (key, value) with confluent-kafka; the delivery errors (None: ok)."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 50, "acks": "all",
                         **config})
    reports: list = [None] * len(records)
    done = [False] * len(records)

    def report(index: int):
        def on_delivery(err, msg):
            reports[index] = err
            done[index] = True
        return on_delivery

    for i, (key, value) in enumerate(records):
        producer.produce(topic, key=key, value=value, partition=0, on_delivery=report(i))
    assert producer.flush(TIMEOUT) == 0
    assert all(done)
    return reports


def _read(bootstrap: str, topic: str) -> list[tuple[bytes | None, bytes]]:
    """Every record of partition 0 up to its high watermark."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"g-{uuid.uuid4().hex}",
                         "enable.auto.commit": False, "enable.partition.eof": True})
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        got: list[tuple[bytes | None, bytes]] = []
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    return got
                raise AssertionError(msg.error())
            got.append((msg.key(), msg.value()))
        raise AssertionError("no end of partition")
    finally:
        consumer.close()


def _raw_produce(port: int, topic: str, payload: bytes, version: int = 9) -> object:
    response = raw_request(port, 0, version, transactional_id=None, acks=-1, timeout=10_000,
                           topic_data=[dict(name=topic, partition_data=[
                               dict(index=0, records=payload)])])
    return response.responses[0].partition_responses[0]


# --- confluent-kafka ------------------------------------------------------------------------


@pytest.mark.parametrize("compression", ["none", "gzip", "zstd"])
def test_confluent_null_key_refused_keyed_delivered(kafka_broker, compression):
    bootstrap = kafka_broker.bootstrap
    topic = _create(bootstrap, {"cleanup.policy": "compact"})
    reports = _produce(bootstrap, topic, [(None, b"no key")], **{"compression.type": compression})
    assert reports[0] is not None and reports[0].code() == KafkaError.INVALID_RECORD, reports
    assert not reports[0].retriable()
    reports = _produce(bootstrap, topic, [(b"k%d" % i, b"v%d" % i) for i in range(20)],
                       **{"compression.type": compression})
    assert reports == [None] * 20
    assert _read(bootstrap, topic) == [(b"k%d" % i, b"v%d" % i) for i in range(20)]


def test_confluent_whole_batch_refused_and_delete_policy_accepts(kafka_broker):
    """Keyed and keyless records in one batch: the batch is refused as a whole (Kafka drops the
    batch); the same records to a delete-policy topic are all delivered."""
    bootstrap = kafka_broker.bootstrap
    records = [(b"a", b"1"), (None, b"2"), (b"c", b"3")]
    compacted = _create(bootstrap, {"cleanup.policy": "compact,delete"})
    reports = _produce(bootstrap, compacted, records)
    assert [r is not None and r.code() == KafkaError.INVALID_RECORD for r in reports] == \
        [True] * 3, reports
    assert _read(bootstrap, compacted) == []
    plain = _create(bootstrap, {"cleanup.policy": "delete"})
    assert _produce(bootstrap, plain, records) == [None] * 3
    assert _read(bootstrap, plain) == records


def test_confluent_idempotent_producer_gets_invalid_record(kafka_broker):
    bootstrap = kafka_broker.bootstrap
    topic = _create(bootstrap, {"cleanup.policy": "compact"})
    reports = _produce(bootstrap, topic, [(None, b"x")], **{"enable.idempotence": True})
    assert reports[0] is not None and reports[0].code() == KafkaError.INVALID_RECORD, reports
    reports = _produce(bootstrap, topic, [(b"k", b"y")], **{"enable.idempotence": True})
    assert reports == [None]
    assert _read(bootstrap, topic) == [(b"k", b"y")]


def test_cleanup_policy_altered_to_compact_at_runtime(kafka_broker):
    """IncrementalAlterConfigs cleanup.policy delete -> compact: null keys, accepted before,
    are refused once the broker applies the new config; back to delete: accepted again."""
    bootstrap = kafka_broker.bootstrap
    topic = _create(bootstrap)
    assert _produce(bootstrap, topic, [(None, b"before")]) == [None]
    admin = AdminClient({"bootstrap.servers": bootstrap})

    def set_policy(policy: str) -> None:
        resource = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[
            ConfigEntry("cleanup.policy", policy,
                        incremental_operation=AlterConfigOpType.SET)])
        admin.incremental_alter_configs([resource])[resource].result(TIMEOUT)

    keyless = build_batch([(None, b"probe", [])], timestamp_ms=int(time.time() * 1000))
    set_policy("compact")
    wait_for(lambda: _raw_produce(kafka_broker.port, topic, keyless).error_code == 87,
             timeout=TIMEOUT, what="null keys refused after cleanup.policy=compact")
    reports = _produce(bootstrap, topic, [(None, b"after")])
    assert reports[0] is not None and reports[0].code() == KafkaError.INVALID_RECORD
    assert _produce(bootstrap, topic, [(b"k", b"keyed")]) == [None]
    set_policy("delete")
    wait_for(lambda: _raw_produce(kafka_broker.port, topic, keyless).error_code == 0,
             timeout=TIMEOUT, what="null keys accepted after cleanup.policy=delete")
    values = [v for k, v in _read(bootstrap, topic) if v != b"probe"]
    assert values == [b"before", b"keyed"]


# --- wire fields ------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [8, 9])
def test_raw_produce_record_errors_and_error_message(kafka_broker, version):
    topic = _create(kafka_broker.bootstrap, {"cleanup.policy": "compact"})
    ok = build_batch([(b"a", b"1", [])], timestamp_ms=int(time.time() * 1000))
    assert _raw_produce(kafka_broker.port, topic, ok, version).error_code == 0
    keys = [b"k0", None, b"k2", None, None, None]
    payload = build_batch([(k, b"v", []) for k in keys], timestamp_ms=int(time.time() * 1000),
                          compression=COMPRESSION_GZIP)
    part = _raw_produce(kafka_broker.port, topic, payload, version)
    assert part.error_code == 87
    assert part.base_offset == -1
    assert part.log_start_offset == 0
    assert [(e.batch_index, e.batch_index_error_message) for e in part.record_errors] == [
        (i, _message(topic)) for i in (1, 3, 4, 5)]
    assert part.error_message == _summary(topic, [1, 3, 4, 5])
    # Nothing of the refused batch was appended: the next batch gets offset 1.
    assert _raw_produce(kafka_broker.port, topic, ok, version).base_offset == 1


def test_raw_produce_old_version_gets_the_error_code(kafka_broker):
    topic = _create(kafka_broker.bootstrap, {"cleanup.policy": "compact"})
    payload = build_batch([(None, b"v", [])], timestamp_ms=int(time.time() * 1000))
    assert _raw_produce(kafka_broker.port, topic, payload, 7).error_code == 87


def test_other_partitions_of_the_request_are_appended(kafka_broker):
    """One Produce request, two partitions: only the one with the keyless record fails."""
    topic = _create(kafka_broker.bootstrap, {"cleanup.policy": "compact"}, partitions=2)
    now = int(time.time() * 1000)
    response = raw_request(kafka_broker.port, 0, 9, transactional_id=None, acks=1,
                           timeout=10_000, topic_data=[dict(name=topic, partition_data=[
                               dict(index=0, records=build_batch([(None, b"x", [])],
                                                                 timestamp_ms=now)),
                               dict(index=1, records=build_batch([(b"k", b"y", [])],
                                                                 timestamp_ms=now))])])
    by_index = {p.index: p for p in response.responses[0].partition_responses}
    assert by_index[0].error_code == 87 and len(by_index[0].record_errors) == 1
    assert by_index[1].error_code == 0 and by_index[1].base_offset == 0
    assert by_index[1].record_errors == ()


# --- kafka-python -----------------------------------------------------------------------------


def test_kafka_python_record_errors_reach_each_future(kafka_broker):
    """kafka-python maps record_errors to the records' futures: the keyless record fails with
    INVALID_RECORD and Kafka's message, the keyed one of the same batch fails as 'part of a
    batch which had invalid records'; a delete-policy topic takes both."""
    from kafka import KafkaProducer
    from kafka.errors import InvalidRecordError
    from kafka.errors import KafkaError as PyKafkaError

    bootstrap = kafka_broker.bootstrap
    topic = _create(bootstrap, {"cleanup.policy": "compact"})
    plain = _create(bootstrap)
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=200, acks="all",
                             retries=0, request_timeout_ms=15000)
    try:
        keyed = producer.send(topic, key=b"k", value=b"1", partition=0)
        keyless = producer.send(topic, value=b"2", partition=0)
        producer.flush(TIMEOUT)
        with pytest.raises(InvalidRecordError) as info:
            keyless.get(TIMEOUT)
        assert _message(topic) in str(info.value)
        with pytest.raises(PyKafkaError) as other:
            keyed.get(TIMEOUT)
        assert "invalid records" in str(other.value)
        assert not isinstance(other.value, InvalidRecordError)
        alone = producer.send(topic, key=b"k", value=b"3", partition=0)
        assert alone.get(TIMEOUT).offset == 0
        futures = [producer.send(plain, value=b"4", partition=0),
                   producer.send(plain, key=b"k", value=b"5", partition=0)]
        producer.flush(TIMEOUT)
        assert [f.get(TIMEOUT).offset for f in futures] == [0, 1]
    finally:
        producer.close(timeout=5)
    assert _read(bootstrap, topic) == [(b"k", b"3")]


def test_transactions_on_a_compacted_topic_still_commit(kafka_broker):
    """Transaction markers (control batches, written by the coordinator) and the coordinator's
    own writes to the compacted internal topics keep working on a compacted topic."""
    bootstrap = kafka_broker.bootstrap
    topic = _create(bootstrap, {"cleanup.policy": "compact"})
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": f"tx-{topic}"})
    producer.init_transactions(TIMEOUT)
    producer.begin_transaction()
    for i in range(5):
        producer.produce(topic, key=b"k%d" % i, value=b"v%d" % i, partition=0)
    producer.commit_transaction(TIMEOUT)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"g-{topic}",
                         "isolation.level": "read_committed", "enable.auto.commit": False,
                         "auto.offset.reset": "earliest"})
    try:
        consumer.subscribe([topic])
        got = []
        deadline = time.monotonic() + TIMEOUT
        while len(got) < 5 and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error():
                got.append(msg.key())
        assert got == [b"k%d" % i for i in range(5)]
        consumer.commit(asynchronous=False)  # a keyed write to compacted __consumer_offsets
    finally:
        consumer.close()
    # read_committed returned the records: the commit marker is in the log. A keyless
    # probe is still refused.
    probe = build_batch([(None, b"x", [])], timestamp_ms=int(time.time() * 1000))
    assert _raw_produce(kafka_broker.port, topic, probe).error_code == 87
