"""The admin APIs through librdkafka's AdminClient (confluent-kafka), as against Apache Kafka."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import (
    Consumer,
    ElectionType,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
    OffsetSpec,
)

pytestmark = pytest.mark.timeout(90)

TIMEOUT = 15


@pytest.fixture(scope="module")
def admin(kafka_broker) -> AdminClient:
    return AdminClient({"bootstrap.servers": kafka_broker.bootstrap})


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _create(admin: AdminClient, partitions: int = 1, configs: dict | None = None) -> str:
    name = _name("adm")
    admin.create_topics([NewTopic(name, partitions, 1, config=configs or {})])[name].result(
        TIMEOUT)
    return name


def _produce(bootstrap: str, topic: str, count: int, partition: int = 0) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(count):
        producer.produce(topic, value=f"v{i}".encode(), partition=partition)
    assert producer.flush(TIMEOUT) == 0


def _describe(admin: AdminClient, rtype, name: str) -> dict:
    resource = ConfigResource(rtype, name)
    return admin.describe_configs([resource])[resource].result(TIMEOUT)


def _error_name(exc: KafkaException) -> str:
    return exc.args[0].name()


# CreateTopics / DeleteTopics, ListOffsets --------------------------------------------------
def test_create_and_delete_topics(admin):
    topic = _create(admin, partitions=2)
    assert topic in admin.list_topics(timeout=TIMEOUT).topics
    with pytest.raises(KafkaException) as info:
        admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(TIMEOUT)
    assert _error_name(info.value) == "TOPIC_ALREADY_EXISTS"
    admin.delete_topics([topic])[topic].result(TIMEOUT)
    assert topic not in admin.list_topics(timeout=TIMEOUT).topics
    with pytest.raises(KafkaException) as info:
        admin.delete_topics([topic])[topic].result(TIMEOUT)
    assert _error_name(info.value) == "UNKNOWN_TOPIC_OR_PART"


def test_consume_from_latest_and_from_a_timestamp(admin, kafka_broker):
    topic = _create(admin)
    base = 1_700_000_000_000
    producer = Producer({"bootstrap.servers": kafka_broker.bootstrap})
    for i in range(10):
        producer.produce(topic, value=f"old{i}".encode(), timestamp=base + i * 1000)
    assert producer.flush(TIMEOUT) == 0
    spec = {TopicPartition(topic, 0): OffsetSpec.for_timestamp(base + 6500)}
    assert admin.list_offsets(spec)[TopicPartition(topic, 0)].result(TIMEOUT).offset == 7
    spec = {TopicPartition(topic, 0): OffsetSpec.max_timestamp()}
    assert admin.list_offsets(spec)[TopicPartition(topic, 0)].result(TIMEOUT).offset == 9

    latest = Consumer({"bootstrap.servers": kafka_broker.bootstrap, "group.id": _name("g"),
                       "enable.auto.commit": False, "auto.offset.reset": "latest"})
    latest.assign([TopicPartition(topic, 0, -1)])  # OFFSET_END
    from_ts = Consumer({"bootstrap.servers": kafka_broker.bootstrap, "group.id": _name("g"),
                        "enable.auto.commit": False})
    [found] = from_ts.offsets_for_times([TopicPartition(topic, 0, base + 6500)], timeout=10)
    from_ts.assign([found])
    try:
        assert latest.poll(1.0) is None  # nothing after the end yet
        producer.produce(topic, value=b"new")
        assert producer.flush(TIMEOUT) == 0
        msg = latest.poll(10)
        assert msg is not None and (msg.offset(), msg.value()) == (10, b"new")
        got = []
        while len(got) < 4:
            m = from_ts.poll(5)
            assert m is not None and m.error() is None
            got.append(m.value())
        assert got == [b"old7", b"old8", b"old9", b"new"]
    finally:
        latest.close()
        from_ts.close()


# DescribeConfigs -------------------------------------------------------------------------
def test_describe_topic_configs_sources_and_synonyms(admin):
    topic = _create(admin, configs={"retention.ms": "3600000"})
    configs = _describe(admin, ConfigResource.Type.TOPIC, topic)
    retention = configs["retention.ms"]
    assert retention.value == "3600000"
    assert retention.source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert not retention.is_read_only and not retention.is_sensitive
    # librdkafka asks for synonyms: the topic override first, then the broker default
    synonyms = list(retention.synonyms.values())
    assert synonyms[0].name == "retention.ms"
    assert any(s.name == "log.retention.ms" for s in synonyms)
    policy = configs["cleanup.policy"]
    assert policy.value == "delete"
    assert policy.source == ConfigSource.DEFAULT_CONFIG.value
    assert policy.is_default
    assert configs["min.insync.replicas"].value == "1"
    assert configs["compression.type"].value == "producer"


def test_describe_unknown_topic_is_unknown_topic_or_partition(admin):
    with pytest.raises(KafkaException) as info:
        _describe(admin, ConfigResource.Type.TOPIC, _name("missing"))
    assert _error_name(info.value) == "UNKNOWN_TOPIC_OR_PART"


def test_describe_broker_configs(admin, kafka_broker):
    configs = _describe(admin, ConfigResource.Type.BROKER, "1")
    assert configs["log.dirs"].source == ConfigSource.STATIC_BROKER_CONFIG.value
    assert configs["log.dirs"].value == str(kafka_broker.data_dir / "data")
    assert configs["log.dirs"].is_read_only
    assert configs["num.partitions"].value == "1"
    assert configs["num.partitions"].source == ConfigSource.DEFAULT_CONFIG.value
    assert not configs["log.retention.ms"].is_read_only


# AlterConfigs / IncrementalAlterConfigs --------------------------------------------------
def test_incremental_alter_set_delete_append_subtract(admin):
    topic = _create(admin, configs={"retention.ms": "100000"})
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[
        ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE),
        ConfigEntry("segment.bytes", "1048576", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("cleanup.policy", "compact",
                    incremental_operation=AlterConfigOpType.APPEND),
    ])
    admin.incremental_alter_configs([resource])[resource].result(TIMEOUT)
    configs = _describe(admin, ConfigResource.Type.TOPIC, topic)
    assert configs["retention.ms"].source == ConfigSource.DEFAULT_CONFIG.value
    assert configs["segment.bytes"].value == "1048576"
    assert configs["cleanup.policy"].value == "delete,compact"
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[
        ConfigEntry("cleanup.policy", "delete",
                    incremental_operation=AlterConfigOpType.SUBTRACT)])
    admin.incremental_alter_configs([resource])[resource].result(TIMEOUT)
    configs = _describe(admin, ConfigResource.Type.TOPIC, topic)
    assert configs["cleanup.policy"].value == "compact"


def test_incremental_alter_validate_only_and_errors(admin):
    topic = _create(admin)
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[
        ConfigEntry("retention.ms", "5000", incremental_operation=AlterConfigOpType.SET)])
    admin.incremental_alter_configs([resource], validate_only=True)[resource].result(TIMEOUT)
    configs = _describe(admin, ConfigResource.Type.TOPIC, topic)
    assert configs["retention.ms"].source == ConfigSource.DEFAULT_CONFIG.value

    bad_value = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[
        ConfigEntry("retention.ms", "soon", incremental_operation=AlterConfigOpType.SET)])
    with pytest.raises(KafkaException) as info:
        admin.incremental_alter_configs([bad_value])[bad_value].result(TIMEOUT)
    assert _error_name(info.value) == "INVALID_CONFIG"

    bad_append = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[
        ConfigEntry("retention.ms", "1", incremental_operation=AlterConfigOpType.APPEND)])
    with pytest.raises(KafkaException) as info:
        admin.incremental_alter_configs([bad_append])[bad_append].result(TIMEOUT)
    assert _error_name(info.value) == "INVALID_CONFIG"

    missing = ConfigResource(ConfigResource.Type.TOPIC, _name("missing"), incremental_configs=[
        ConfigEntry("retention.ms", "1", incremental_operation=AlterConfigOpType.SET)])
    with pytest.raises(KafkaException) as info:
        admin.incremental_alter_configs([missing])[missing].result(TIMEOUT)
    assert _error_name(info.value) == "UNKNOWN_TOPIC_OR_PART"


def test_legacy_alter_configs_replaces_all(admin):
    topic = _create(admin, configs={"retention.ms": "100000", "segment.ms": "200000"})
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic,
                              set_config={"max.message.bytes": "2000000"})
    admin.alter_configs([resource])[resource].result(TIMEOUT)
    configs = _describe(admin, ConfigResource.Type.TOPIC, topic)
    assert configs["max.message.bytes"].value == "2000000"
    assert configs["max.message.bytes"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert configs["retention.ms"].source == ConfigSource.DEFAULT_CONFIG.value
    assert configs["segment.ms"].source == ConfigSource.DEFAULT_CONFIG.value


def test_alter_dynamic_broker_config_shows_in_describe(admin):
    resource = ConfigResource(ConfigResource.Type.BROKER, "1", incremental_configs=[
        ConfigEntry("log.cleaner.delete.retention.ms", "3600001",
                    incremental_operation=AlterConfigOpType.SET)])
    admin.incremental_alter_configs([resource])[resource].result(TIMEOUT)
    configs = _describe(admin, ConfigResource.Type.BROKER, "1")
    entry = configs["log.cleaner.delete.retention.ms"]
    assert entry.value == "3600001"
    assert entry.source == ConfigSource.DYNAMIC_BROKER_CONFIG.value
    # a topic without an override reports the dynamic broker value as its default
    topic = _create(admin)
    topic_entry = _describe(admin, ConfigResource.Type.TOPIC, topic)["delete.retention.ms"]
    assert topic_entry.value == "3600001"
    assert topic_entry.source == ConfigSource.DYNAMIC_BROKER_CONFIG.value
    static = ConfigResource(ConfigResource.Type.BROKER, "1", incremental_configs=[
        ConfigEntry("log.dirs", "/elsewhere", incremental_operation=AlterConfigOpType.SET)])
    with pytest.raises(KafkaException) as info:
        admin.incremental_alter_configs([static])[static].result(TIMEOUT)
    assert _error_name(info.value) == "INVALID_REQUEST"


# CreatePartitions ------------------------------------------------------------------------
def test_create_partitions_then_produce_to_new_partition(admin, kafka_broker):
    topic = _create(admin)
    admin.create_partitions([NewPartitions(topic, 3)])[topic].result(TIMEOUT)
    md = admin.list_topics(topic, timeout=TIMEOUT)
    assert sorted(md.topics[topic].partitions) == [0, 1, 2]
    _produce(kafka_broker.bootstrap, topic, 5, partition=2)
    spec = {TopicPartition(topic, 2): OffsetSpec.latest()}
    assert admin.list_offsets(spec)[TopicPartition(topic, 2)].result(TIMEOUT).offset == 5

    with pytest.raises(KafkaException) as info:
        admin.create_partitions([NewPartitions(topic, 2)])[topic].result(TIMEOUT)
    assert _error_name(info.value) == "INVALID_PARTITIONS"
    admin.create_partitions([NewPartitions(topic, 5)], validate_only=True)[topic].result(TIMEOUT)
    assert len(admin.list_topics(topic, timeout=TIMEOUT).topics[topic].partitions) == 3
    missing = _name("missing")
    futures = admin.create_partitions([NewPartitions(missing, 2)])  # keep the dict alive
    with pytest.raises(KafkaException) as info:
        futures[missing].result(TIMEOUT)
    assert _error_name(info.value) == "UNKNOWN_TOPIC_OR_PART"
    bad = NewPartitions(topic, 4, replica_assignment=[[7]])
    with pytest.raises(KafkaException) as info:
        admin.create_partitions([bad])[topic].result(TIMEOUT)
    assert _error_name(info.value) == "INVALID_REPLICA_ASSIGNMENT"


# DescribeCluster -------------------------------------------------------------------------
def test_describe_cluster(admin, kafka_broker):
    info = admin.describe_cluster().result(TIMEOUT)  # librdkafka sends Metadata v10 for it
    assert info.cluster_id
    assert info.cluster_id == admin.list_topics(timeout=TIMEOUT).cluster_id
    assert [n.id for n in info.nodes] == [1]
    assert info.nodes[0].port == kafka_broker.port
    assert info.controller.id == 1


# DeleteRecords ---------------------------------------------------------------------------
def test_delete_records_moves_low_watermark(admin, kafka_broker):
    topic = _create(admin)
    _produce(kafka_broker.bootstrap, topic, 10)
    tp = TopicPartition(topic, 0, 4)
    deleted = admin.delete_records([tp])[tp].result(TIMEOUT)
    assert deleted.low_watermark == 4
    earliest = admin.list_offsets({TopicPartition(topic, 0): OffsetSpec.earliest()})
    assert earliest[TopicPartition(topic, 0)].result(TIMEOUT).offset == 4

    beyond = TopicPartition(topic, 0, 11)
    with pytest.raises(KafkaException) as info:
        admin.delete_records([beyond])[beyond].result(TIMEOUT)
    assert _error_name(info.value) == "OFFSET_OUT_OF_RANGE"

    everything = TopicPartition(topic, 0, -1)  # OFFSET_END: up to the high watermark
    assert admin.delete_records([everything])[everything].result(TIMEOUT).low_watermark == 10


def test_delete_records_refused_on_compacted_topic(admin, kafka_broker):
    topic = _create(admin, configs={"cleanup.policy": "compact"})
    producer = Producer({"bootstrap.servers": kafka_broker.bootstrap})
    producer.produce(topic, key=b"k", value=b"v")
    assert producer.flush(TIMEOUT) == 0
    tp = TopicPartition(topic, 0, 1)
    with pytest.raises(KafkaException) as info:
        admin.delete_records([tp])[tp].result(TIMEOUT)
    assert _error_name(info.value) == "POLICY_VIOLATION"


# ElectLeaders ----------------------------------------------------------------------------
def test_elect_preferred_leader_not_needed(admin):
    topic = _create(admin)
    tp = TopicPartition(topic, 0)
    result = admin.elect_leaders(ElectionType.PREFERRED, [tp]).result(TIMEOUT)
    assert result[tp] is not None
    assert result[tp].code() == KafkaError.ELECTION_NOT_NEEDED
    # all partitions: those already led by their preferred replica are left out
    assert admin.elect_leaders(ElectionType.PREFERRED, None).result(TIMEOUT) == {}
