"""Admin APIs that the Python clients do not expose, checked over the wire with kio.

Each request is framed with our codec and sent over a plain socket to the real broker process;
the answers must be what Apache Kafka sends.
"""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from kio.schema.errors import ErrorCode

from tests.fixtures import raw_request

pytestmark = pytest.mark.timeout(60)






@pytest.fixture(scope="module")
def topic(kafka_broker) -> str:
    """A 2-partition topic with 20 records from one idempotent producer in partition 0."""
    name = f"raw-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": kafka_broker.bootstrap})
    admin.create_topics([NewTopic(name, 2, 1)])[name].result(15)
    producer = Producer({"bootstrap.servers": kafka_broker.bootstrap,
                         "enable.idempotence": True, "linger.ms": 0})
    for i in range(20):
        producer.produce(name, value=str(i).encode(), partition=0)
        producer.flush(10)  # one batch per record: sequences 0..19
    return name


def _leader_epoch(port: int, topic: str) -> int:
    md = raw_request(port, 3, 12, topics=[dict(name=topic)], allow_auto_topic_creation=False)
    return md.topics[0].partitions[0].leader_epoch


def test_api_versions_advertise_the_admin_apis(kafka_broker):
    response = raw_request(kafka_broker.port, 18, 3, client_software_name="raw",
                    client_software_version="1")
    versions = {k.api_key: (k.min_version, k.max_version) for k in response.api_keys}
    expected = {32: (1, 4), 33: (0, 2), 44: (0, 1), 37: (0, 3), 60: (0, 1), 35: (1, 4),
                21: (0, 2), 61: (0, 0), 17: (0, 1), 36: (0, 2), 43: (0, 2), 23: (2, 4)}
    for key, span in expected.items():
        assert versions[key] == span, key


@pytest.mark.parametrize("version", [0, 1])
def test_sasl_handshake_on_plaintext_is_illegal_sasl_state(kafka_broker, version):
    response = raw_request(kafka_broker.port, 17, version, mechanism="PLAIN")
    assert response.error_code == ErrorCode.illegal_sasl_state
    assert response.mechanisms == ()


@pytest.mark.parametrize("version", [0, 1, 2])
def test_sasl_authenticate_on_plaintext_is_illegal_sasl_state(kafka_broker, version):
    response = raw_request(kafka_broker.port, 36, version, auth_bytes=b"\0user\0pass")
    assert response.error_code == ErrorCode.illegal_sasl_state
    assert response.error_message


def test_describe_producers(kafka_broker, topic):
    response = raw_request(kafka_broker.port, 61, 0,
                    topics=[dict(name=topic, partition_indexes=[0, 1, 7])])
    p0, p1, p7 = response.topics[0].partitions
    assert p0.error_code == ErrorCode.none
    [state] = p0.active_producers
    assert state.producer_id >= 0
    assert state.producer_epoch >= 0
    assert state.last_sequence == 19
    assert state.last_timestamp > 0
    assert state.current_txn_start_offset == -1
    assert p1.error_code == ErrorCode.none and p1.active_producers == ()
    assert p7.error_code == ErrorCode.unknown_topic_or_partition


@pytest.mark.parametrize("version", [2, 3, 4])
def test_offset_for_leader_epoch(kafka_broker, topic, version):
    epoch = _leader_epoch(kafka_broker.port, topic)
    partitions = [dict(partition=0, current_leader_epoch=epoch, leader_epoch=epoch),
                  dict(partition=0, current_leader_epoch=epoch + 1, leader_epoch=epoch),
                  dict(partition=0, current_leader_epoch=-1, leader_epoch=epoch),
                  dict(partition=5, current_leader_epoch=-1, leader_epoch=epoch)]
    if epoch > 0:
        partitions.append(dict(partition=0, current_leader_epoch=epoch - 1,
                               leader_epoch=epoch))
    response = raw_request(kafka_broker.port, 23, version, replica_id=-1,
                    topics=[dict(topic=topic, partitions=partitions)])
    results = response.topics[0].partitions
    assert (results[0].error_code, results[0].leader_epoch, results[0].end_offset) == (
        ErrorCode.none, epoch, 20)
    assert results[1].error_code == ErrorCode.unknown_leader_epoch
    assert (results[2].error_code, results[2].end_offset) == (ErrorCode.none, 20)
    assert results[3].error_code == ErrorCode.unknown_topic_or_partition
    if epoch > 0:
        assert results[4].error_code == ErrorCode.fenced_leader_epoch


def test_describe_log_dirs(kafka_broker, topic):
    response = raw_request(kafka_broker.port, 35, 4, topics=[dict(topic=topic, partitions=[0, 1])])
    assert response.error_code == ErrorCode.none
    [result] = response.results
    assert result.log_dir == str(kafka_broker.data_dir / "data")
    assert result.total_bytes > 0 and result.usable_bytes > 0
    [entry] = result.topics
    sizes = {p.partition_index: p.partition_size for p in entry.partitions}
    assert sizes[0] > 20 * 60 and sizes[1] == 0
    everything = raw_request(kafka_broker.port, 35, 1, topics=None)
    names = {t.name for t in everything.results[0].topics}
    assert topic in names


def test_describe_cluster(kafka_broker):
    for version in (0, 1):
        response = raw_request(kafka_broker.port, 60, version,
                        include_cluster_authorized_operations=True)
        assert response.error_code == ErrorCode.none
        assert [b.broker_id for b in response.brokers] == [1]
        assert response.brokers[0].port == kafka_broker.port
        assert response.controller_id == 1
        assert response.cluster_id
        assert response.cluster_authorized_operations > 0
    response = raw_request(kafka_broker.port, 60, 1, include_cluster_authorized_operations=False,
                    endpoint_type=2)
    assert response.error_code == ErrorCode.unsupported_endpoint_type


def test_describe_configs_types_and_documentation(kafka_broker, topic):
    response = raw_request(kafka_broker.port, 32, 4, include_synonyms=False,
                    include_documentation=True,
                    resources=[dict(resource_type=2, resource_name=topic,
                                    configuration_keys=["retention.ms", "cleanup.policy"]),
                               dict(resource_type=4, resource_name="99",
                                    configuration_keys=None),
                               dict(resource_type=2, resource_name="bad name!",
                                    configuration_keys=None)])
    ok, other_broker, bad_name = response.results
    assert ok.error_code == ErrorCode.none
    types = {c.name: c.config_type for c in ok.configs}
    assert types == {"retention.ms": 5, "cleanup.policy": 7}  # LONG, LIST
    assert all(c.synonyms == () for c in ok.configs)
    assert other_broker.error_code == ErrorCode.invalid_request
    assert bad_name.error_code == ErrorCode.invalid_topic_exception


def test_elect_leaders_v0_null_means_all(kafka_broker, topic):
    response = raw_request(kafka_broker.port, 43, 0, topic_partitions=None, timeout=5000)
    assert response.replica_election_results == ()  # every leader is already preferred
    response = raw_request(kafka_broker.port, 43, 2, election_type=1, timeout=5000,
                    topic_partitions=[dict(topic=topic, partitions=[0]),
                                      dict(topic="no-such-topic", partitions=[0])])
    codes = {r.topic: r.partition_result[0].error_code
             for r in response.replica_election_results}
    assert codes == {topic: ErrorCode.election_not_needed,
                     "no-such-topic": ErrorCode.unknown_topic_or_partition}


def test_delete_records_v0_unknown_and_high_watermark(kafka_broker, topic):
    response = raw_request(kafka_broker.port, 21, 0, timeout=5000, topics=[
        dict(name=topic, partitions=[dict(partition_index=1, offset=-1),
                                     dict(partition_index=9, offset=0)])])
    p1, p9 = response.topics[0].partitions
    assert (p1.error_code, p1.low_watermark) == (ErrorCode.none, 0)
    assert p9.error_code == ErrorCode.unknown_topic_or_partition
