"""AlterReplicaLogDirs as Apache Kafka answers it on a broker with one log dir, through
kafka-python's KafkaAdminClient.alter_replica_log_dirs (ReplicaManager.alterReplicaLogDirs):
the replica's own dir -> NONE (nothing to move); a dir the broker does not have ->
LOG_DIR_NOT_FOUND; a partition the broker has no replica of -> REPLICA_NOT_AVAILABLE. Before,
the API was not offered and kafka-python raised IncompatibleBrokerVersion.
"""

from __future__ import annotations

import time

import pytest
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import LogDirNotFoundError, NoError, ReplicaNotAvailableError
from kafka.structs import TopicPartitionReplica

pytestmark = pytest.mark.timeout(90)


def test_alter_replica_log_dirs_on_a_single_dir_broker(kafka_broker, topic_name):
    admin = KafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap, request_timeout_ms=10000)
    try:
        admin.create_topics([NewTopic(topic_name, 1, 1)])
        node = kafka_broker.node_id
        deadline = time.monotonic() + 15
        while True:
            (described,) = admin.describe_log_dirs(brokers=[node])
            (log_dir,) = described["log_dirs"]
            if any(t["name"] == topic_name for t in log_dir["topics"]):
                break
            assert time.monotonic() < deadline, "replica not in describe_log_dirs"
            time.sleep(0.2)
        path = log_dir["log_dir"]
        result = admin.alter_replica_log_dirs({
            TopicPartitionReplica(topic_name, 0, node): path,
            TopicPartitionReplica(topic_name, 3, node): path,
        })
        assert result == {TopicPartitionReplica(topic_name, 0, node): NoError,
                          TopicPartitionReplica(topic_name, 3, node): ReplicaNotAvailableError}
        elsewhere = admin.alter_replica_log_dirs({
            TopicPartitionReplica(topic_name, 0, node): path + "-elsewhere"})
        assert elsewhere == {TopicPartitionReplica(topic_name, 0, node): LogDirNotFoundError}
    finally:
        admin.close()
