"""Dynamic broker configs take effect on a running broker, as in Kafka: a log default set with
AlterConfigs / IncrementalAlterConfigs on the broker resource ("1", or the cluster default "")
applies at once to every topic without a topic override, and to topics created (or logs
loaded) later; a topic override keeps winning; deleting the dynamic value falls back.

The last test runs a 3-broker `serve` cluster: a per-broker value applies on that broker only.

Clients: confluent-kafka (librdkafka) for the per-broker resource, topics, produce and
offsets. librdkafka and the admin APIs of kafka-python and aiokafka all refuse an empty broker
name, so the cluster default "" is sent as the Java admin / kafka-configs.sh --entity-default
send it, with kafka-python's own IncrementalAlterConfigs / AlterConfigs / DescribeConfigs
request classes over its connection manager. Every broker process is ended by PID.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewTopic,
    OffsetSpec,
    ResourceType,
)
from kafka.admin import AlterConfigOp, ConfigResourceType, KafkaAdminClient
from kafka.admin import ConfigResource as KpConfigResource

from tests.fixtures import BrokerProcess, running_broker, running_local_cluster, wait_for

pytestmark = pytest.mark.timeout(300)

TIMEOUT = 20
#: Kafka error codes
NONE, INVALID_REQUEST = 0, 42
#: retention checked twice a second (read-only in Kafka: it is a static config here too)
STATIC = {"log.retention.check.interval.ms": "500"}
BIG = 5000  # bytes of one record's value in the message.max.bytes tests


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    yield from running_broker(tmp_path_factory, "dynconf", STATIC)


@pytest.fixture(scope="module")
def admin(broker: BrokerProcess) -> AdminClient:
    return AdminClient({"bootstrap.servers": broker.bootstrap})


@pytest.fixture(scope="module")
def kp_admin(broker: BrokerProcess) -> Iterator[KafkaAdminClient]:
    client = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(autouse=True)
def clean_dynamic_configs(broker, admin, kp_admin) -> Iterator[None]:
    """Every test starts and ends without dynamic broker configs (legacy AlterConfigs with
    no entries replaces all of them, on "" and on "1")."""
    yield
    for code, _ in send_cluster_default(kp_admin, {}, incremental=False):
        assert code == NONE
    resource = ConfigResource(ResourceType.BROKER, "1", set_config={})
    admin.alter_configs([resource])[resource].result(TIMEOUT)


# clients -------------------------------------------------------------------------------------
def _kp_send(client: KafkaAdminClient, request):
    async def send():
        return await client._manager.send(request)
    return client._manager.run(send)


def send_cluster_default(client: KafkaAdminClient, configs: dict[str, str | None], *,
                         incremental: bool = True) -> list[tuple[int, str | None]]:
    """(Incremental)AlterConfigs on the broker resource "" ; None deletes (incremental).
    Returns [(error_code, error_message)] of the response."""
    entries = {name: (AlterConfigOp.DELETE, None) if value is None else value
               for name, value in configs.items()}
    request = KafkaAdminClient._alter_configs_request(
        [KpConfigResource(ConfigResourceType.BROKER, "", entries)], incremental=incremental)
    response = _kp_send(client, request)
    return [(r.error_code, r.error_message) for r in response.responses]


def set_cluster_default(client: KafkaAdminClient, **configs: str | None) -> None:
    names = {k.replace("_", "."): v for k, v in configs.items()}
    assert send_cluster_default(client, names) == [(NONE, None)]


def describe_cluster_default(client: KafkaAdminClient, name: str = "") -> dict[str, object]:
    """DescribeConfigs with synonyms of the broker resource `name` ("": cluster default)."""
    request = KafkaAdminClient._describe_configs_request(
        [KpConfigResource(ConfigResourceType.BROKER, name)], include_synonyms=True)
    (result,) = _kp_send(client, request).results
    assert result.error_code == NONE, result.error_message
    return {c.name: c for c in result.configs}


def set_broker(admin: AdminClient, broker_id: str, **configs: str | None) -> None:
    entries = [ConfigEntry(k.replace("_", "."), v,
                           incremental_operation=AlterConfigOpType.DELETE if v is None
                           else AlterConfigOpType.SET) for k, v in configs.items()]
    resource = ConfigResource(ResourceType.BROKER, broker_id, incremental_configs=entries)
    admin.incremental_alter_configs([resource])[resource].result(TIMEOUT)


def describe(admin: AdminClient, kind: ResourceType, name: str) -> dict:
    resource = ConfigResource(kind, name)
    return admin.describe_configs([resource])[resource].result(TIMEOUT)


def wait_source(admin: AdminClient, topic: str, name: str, source: ConfigSource,
                value: str | None = None) -> None:
    """Until the topic's config `name` comes from `source` (DescribeConfigs reports what the
    logs were given, so this also means the change reached the logs)."""
    def check() -> bool:
        entry = describe(admin, ResourceType.TOPIC, topic)[name]
        return entry.source == source.value and (value is None or entry.value == value)
    wait_for(check, 15, f"{topic} {name} from {source.name} {value or ''}")


def create(admin: AdminClient, configs: dict[str, str] | None = None) -> str:
    name = f"dyn-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(name, 1, 1, config=configs or {})])[name].result(TIMEOUT)
    return name


def produce(bootstrap: str, topic: str, size: int, count: int = 1) -> KafkaError | None:
    """`count` records of `size` bytes, one request each; the first delivery error, if any."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "retries": 0,
                         "message.max.bytes": 1_000_000})
    errors: list[KafkaError] = []
    for _ in range(count):
        producer.produce(topic, os.urandom(size), partition=0,
                         on_delivery=lambda err, _msg: err and errors.append(err))
        assert producer.flush(TIMEOUT) == 0
    return errors[0] if errors else None


def earliest(admin: AdminClient, topic: str) -> int:
    tp = TopicPartition(topic, 0)
    return admin.list_offsets({tp: OffsetSpec.earliest()})[tp].result(TIMEOUT).offset


def segments(broker: BrokerProcess, topic: str) -> list[str]:
    return sorted(n for n in os.listdir(broker.data_dir / "data" / f"{topic}-0")
                  if n.endswith(".log"))


# tests ---------------------------------------------------------------------------------------
def test_cluster_default_retention_deletes_old_segments_of_topics_without_override(
        broker, admin, kp_admin):
    plain = create(admin)
    pinned = create(admin, {"retention.ms": "3600000"})
    set_cluster_default(kp_admin, log_segment_bytes="1000")  # a segment per record or so
    wait_source(admin, plain, "segment.bytes", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG,
                "1000")
    for topic in (plain, pinned):
        assert produce(broker.bootstrap, topic, 300, count=12) is None
        assert len(segments(broker, topic)) >= 4, segments(broker, topic)
    time.sleep(1.5)  # both are well past the retention about to be set; nothing deleted yet
    assert earliest(admin, plain) == 0 and earliest(admin, pinned) == 0

    set_cluster_default(kp_admin, log_retention_ms="1000")
    wait_for(lambda: earliest(admin, plain) >= 9, 20, "old segments of the plain topic deleted")
    assert len(segments(broker, plain)) <= 2
    entry = describe(admin, ResourceType.TOPIC, plain)["retention.ms"]
    assert (entry.value, entry.source) == ("1000",
                                           ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value)
    time.sleep(1.5)  # three more retention rounds: the topic override keeps its segments
    assert earliest(admin, pinned) == 0
    entry = describe(admin, ResourceType.TOPIC, pinned)["retention.ms"]
    assert (entry.value, entry.source) == ("3600000", ConfigSource.DYNAMIC_TOPIC_CONFIG.value)


def test_per_broker_beats_cluster_default_and_delete_falls_back(broker, admin, kp_admin):
    topic = create(admin)
    pinned = create(admin, {"max.message.bytes": "1000"})
    set_cluster_default(kp_admin, message_max_bytes="2000")
    wait_source(admin, topic, "max.message.bytes", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG,
                "2000")
    error = produce(broker.bootstrap, topic, BIG)
    assert error is not None and error.code() == KafkaError.MSG_SIZE_TOO_LARGE

    set_broker(admin, "1", message_max_bytes="100000")
    wait_source(admin, topic, "max.message.bytes", ConfigSource.DYNAMIC_BROKER_CONFIG,
                "100000")
    assert produce(broker.bootstrap, topic, BIG) is None  # per-broker value wins
    error = produce(broker.bootstrap, pinned, BIG)  # the topic override beats both
    assert error is not None and error.code() == KafkaError.MSG_SIZE_TOO_LARGE
    entry = describe(admin, ResourceType.BROKER, "1")["message.max.bytes"]
    assert (entry.value, entry.source) == ("100000", ConfigSource.DYNAMIC_BROKER_CONFIG.value)
    # librdkafka keys synonyms by name; kafka-python shows every level, highest first
    synonyms = describe_cluster_default(kp_admin, "1")["message.max.bytes"].synonyms
    assert [(s.value, s.source) for s in synonyms] == [
        ("100000", ConfigSource.DYNAMIC_BROKER_CONFIG.value),
        ("2000", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value),
        ("1048588", ConfigSource.DEFAULT_CONFIG.value)]

    set_broker(admin, "1", message_max_bytes=None)  # DELETE: back to the cluster default
    wait_source(admin, topic, "max.message.bytes", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG,
                "2000")
    error = produce(broker.bootstrap, topic, BIG)
    assert error is not None and error.code() == KafkaError.MSG_SIZE_TOO_LARGE

    set_cluster_default(kp_admin, message_max_bytes=None)  # DELETE: back to Kafka's default
    wait_source(admin, topic, "max.message.bytes", ConfigSource.DEFAULT_CONFIG)
    assert produce(broker.bootstrap, topic, BIG) is None


def test_topics_created_later_get_the_dynamic_default(broker, admin, kp_admin):
    set_cluster_default(kp_admin, message_max_bytes="2000")
    topic = create(admin)
    wait_source(admin, topic, "max.message.bytes", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG)
    error = produce(broker.bootstrap, topic, BIG)
    assert error is not None and error.code() == KafkaError.MSG_SIZE_TOO_LARGE


def test_legacy_alter_configs_and_empty_value_remove_the_dynamic_value(broker, admin):
    topic = create(admin)
    resource = ConfigResource(ResourceType.BROKER, "1",
                              set_config={"message.max.bytes": "2000"})
    admin.alter_configs([resource])[resource].result(TIMEOUT)
    wait_source(admin, topic, "max.message.bytes", ConfigSource.DYNAMIC_BROKER_CONFIG, "2000")
    error = produce(broker.bootstrap, topic, BIG)
    assert error is not None and error.code() == KafkaError.MSG_SIZE_TOO_LARGE

    set_broker(admin, "1", message_max_bytes="")  # an empty value removes it
    wait_source(admin, topic, "max.message.bytes", ConfigSource.DEFAULT_CONFIG)
    assert produce(broker.bootstrap, topic, BIG) is None
    assert "message.max.bytes" not in {
        name for name, e in describe(admin, ResourceType.BROKER, "1").items()
        if e.source == ConfigSource.DYNAMIC_BROKER_CONFIG.value}


def test_timestamp_type_applies_to_running_logs(broker, admin, kp_admin):
    from confluent_kafka import TIMESTAMP_LOG_APPEND_TIME, Consumer

    topic = create(admin)
    set_cluster_default(kp_admin, log_message_timestamp_type="LogAppendTime")
    wait_source(admin, topic, "message.timestamp.type",
                ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG, "LogAppendTime")
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    producer.produce(topic, b"v", partition=0, timestamp=1_000_000)
    assert producer.flush(TIMEOUT) == 0
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": topic,
                         "auto.offset.reset": "earliest"})
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        message = None
        deadline = time.monotonic() + TIMEOUT
        while message is None and time.monotonic() < deadline:
            message = consumer.poll(1.0)
        assert message is not None and message.error() is None
        kind, stamp = message.timestamp()
        assert kind == TIMESTAMP_LOG_APPEND_TIME and stamp > 1_000_000
    finally:
        consumer.close()


def test_cluster_default_resource_describes_the_dynamic_defaults(admin, kp_admin):
    assert describe_cluster_default(kp_admin) == {}
    set_cluster_default(kp_admin, log_roll_ms="600000", log_retention_bytes="123456")
    configs = describe_cluster_default(kp_admin)
    assert set(configs) == {"log.roll.ms", "log.retention.bytes"}
    entry = configs["log.roll.ms"]
    assert entry.value == "600000"
    assert entry.config_source == ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value
    assert not entry.read_only
    assert [s.source for s in entry.synonyms] == [
        ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value, ConfigSource.DEFAULT_CONFIG.value]
    broker_entry = describe(admin, ResourceType.BROKER, "1")["log.roll.ms"]
    assert (broker_entry.value, broker_entry.source) == (
        "600000", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value)


@pytest.mark.parametrize("name,value", [
    ("log.retention.check.interval.ms", "1000"),
    ("log.retention.hours", "1"),
    ("log.cleaner.enable", "false"),
    ("log.dirs", "/elsewhere"),
])
def test_read_only_broker_configs_are_refused(admin, kp_admin, name, value):
    resource = ConfigResource(ResourceType.BROKER, "1", incremental_configs=[
        ConfigEntry(name, value, incremental_operation=AlterConfigOpType.SET)])
    with pytest.raises(KafkaException) as info:
        admin.incremental_alter_configs([resource])[resource].result(TIMEOUT)
    assert info.value.args[0].name() == "INVALID_REQUEST"
    assert "Cannot update these configs dynamically" in info.value.args[0].str()
    ((code, message),) = send_cluster_default(kp_admin, {name: value})
    assert code == INVALID_REQUEST and "Cannot update these configs dynamically" in message
    assert name not in describe_cluster_default(kp_admin)
    assert describe(admin, ResourceType.BROKER, "1")[name].is_read_only


def test_dynamic_defaults_apply_to_logs_loaded_at_restart(broker_factory):
    restarted = broker_factory(**STATIC)
    admin = AdminClient({"bootstrap.servers": restarted.bootstrap})
    topic = create(admin)
    assert produce(restarted.bootstrap, topic, BIG) is None
    client = KafkaAdminClient(bootstrap_servers=restarted.bootstrap)
    try:
        set_cluster_default(client, message_max_bytes="2000")
    finally:
        client.close()
    restarted.restart()
    admin = AdminClient({"bootstrap.servers": restarted.bootstrap})
    wait_source(admin, topic, "max.message.bytes", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG,
                "2000")
    error = produce(restarted.bootstrap, topic, BIG)
    assert error is not None and error.code() == KafkaError.MSG_SIZE_TOO_LARGE


# a 3-broker cluster ---------------------------------------------------------------------------
CLUSTER_CONFIG = {"offsets.topic.num.partitions": "3", "offsets.topic.replication.factor": "1",
                  "group.initial.rebalance.delay.ms": "0", "auto.leader.rebalance.enable": "false"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    yield from running_local_cluster(tmp_path_factory, "dynconf-cluster", CLUSTER_CONFIG)


def _too_large(error: KafkaError | None) -> bool:
    return error is not None and error.code() == KafkaError.MSG_SIZE_TOO_LARGE


def test_per_broker_value_applies_on_that_broker_only(cluster):
    """message.max.bytes for broker "2" refuses big records in a partition broker 2 leads,
    not in one broker 1 leads; the cluster default then reaches broker 1, while broker 2
    keeps its own value."""
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    on1, on2 = f"dyn1-{uuid.uuid4().hex[:8]}", f"dyn2-{uuid.uuid4().hex[:8]}"
    futures = admin.create_topics([NewTopic(on1, 1, replica_assignment=[[1]]),
                                   NewTopic(on2, 1, replica_assignment=[[2]])])
    for future in futures.values():
        future.result(TIMEOUT)
    wait_for(lambda: produce(cluster.bootstrap, on1, 2500) is None
             and produce(cluster.bootstrap, on2, 2500) is None, 30, "both topics writable")
    client = KafkaAdminClient(bootstrap_servers=cluster.bootstrap)
    try:
        set_broker(admin, "2", message_max_bytes="2000")
        wait_for(lambda: _too_large(produce(cluster.bootstrap, on2, 2500)), 20,
                 "broker 2 to refuse 2500-byte records")
        assert produce(cluster.bootstrap, on1, 2500) is None  # broker 1 is not concerned
        assert describe(admin, ResourceType.BROKER, "2")["message.max.bytes"].source == \
            ConfigSource.DYNAMIC_BROKER_CONFIG.value
        assert describe(admin, ResourceType.BROKER, "1")["message.max.bytes"].source == \
            ConfigSource.DEFAULT_CONFIG.value

        set_cluster_default(client, message_max_bytes="2200")
        wait_for(lambda: _too_large(produce(cluster.bootstrap, on1, 2500)), 20,
                 "the cluster default to reach broker 1")
        assert produce(cluster.bootstrap, on1, 2100) is None  # 2200 on broker 1

        def broker2_levels() -> list[str]:
            found = client.describe_configs(  # kafka-python sends it to broker 2 itself
                [KpConfigResource(ConfigResourceType.BROKER, "2", ["message.max.bytes"])],
                include_synonyms=True)["broker"]["2"]["message.max.bytes"]
            return [s["source"] for s in found["synonyms"]]
        wait_for(lambda: "DYNAMIC_DEFAULT_BROKER_CONFIG" in broker2_levels(), 20,
                 "broker 2 to have the cluster default")
        assert broker2_levels()[0] == "DYNAMIC_BROKER_CONFIG"
        assert _too_large(produce(cluster.bootstrap, on2, 2100))  # broker 2 keeps 2000
    finally:
        send_cluster_default(client, {"message.max.bytes": None})
        client.close()
        set_broker(admin, "2", message_max_bytes=None)
