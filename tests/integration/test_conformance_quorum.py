"""DescribeQuorum as Kafka 3.8+ answers it (v2, KIP-853), asked through kafka-python.

kafka-python's KafkaAdminClient.describe_metadata_quorum reads v2's error messages and voter
endpoints (`nodes`); against a broker offering only v0-1 it failed (KeyError 'error_message').
Any broker answers: a non-leader forwards the request to the active controller.
"""

from __future__ import annotations

import pytest
from kafka.admin import KafkaAdminClient

from tests.fixtures import running_local_cluster

pytestmark = pytest.mark.timeout(180)

CONFIG = {"group.initial.rebalance.delay.ms": "0", "offsets.topic.num.partitions": "3"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    yield from running_local_cluster(tmp_path_factory, "conformance-quorum", CONFIG)


@pytest.mark.parametrize("broker_id", [1, 2, 3])
def test_describe_metadata_quorum_from_any_broker(cluster, broker_id):
    port = cluster.port + broker_id - 1
    admin = KafkaAdminClient(bootstrap_servers=f"127.0.0.1:{port}", request_timeout_ms=10000)
    try:
        quorum = admin.describe_metadata_quorum()
    finally:
        admin.close()
    (topic,) = quorum["topics"]
    assert topic["topic_name"] == "__cluster_metadata"
    (partition,) = topic["partitions"]
    assert partition["error"] is None
    assert partition["leader_id"] in (1, 2, 3)
    assert sorted(v["replica_id"] for v in partition["current_voters"]) == [1, 2, 3]
    assert partition["high_watermark"] > 0
    endpoints = {n["node_id"]: [(li["host"], li["port"]) for li in n["listeners"]]
                 for n in quorum["nodes"]}
    assert endpoints == {i: [("127.0.0.1", cluster.port + i - 1)] for i in (1, 2, 3)}
