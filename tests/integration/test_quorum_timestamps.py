"""DescribeQuorum's replica times are wall-clock ms, as Kafka reports them (KIP-836): each
voter's last_fetch_timestamp is when it last fetched from the leader (epoch ms, not ms since
the node started) and last_caught_up_timestamp when it last had the leader's log end offset
(was always -1). Real client: kafka-python's describe_metadata_quorum (v2) against a 3-broker
cluster, asked of every broker (a non-leader forwards to the active controller); and v1 over
the wire."""

from __future__ import annotations

import time

import pytest
from kafka.admin import KafkaAdminClient

from tests.fixtures import raw_request, running_local_cluster, wait_for

pytestmark = pytest.mark.timeout(180)

CONFIG = {"group.initial.rebalance.delay.ms": "0", "offsets.topic.num.partitions": "3"}
#: how far from time.time() a timestamp of a live, caught-up voter may be (two shared cores)
SLACK_MS = 5000


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    yield from running_local_cluster(tmp_path_factory, "quorum-timestamps", CONFIG)


def _problems(voters: list[dict], leader_id: int) -> list[str]:
    """What is wrong with the voters' times now (empty: all within SLACK_MS of the clock)."""
    now = time.time() * 1000
    problems = []
    for v in voters:
        for field in ("last_fetch_timestamp", "last_caught_up_timestamp"):
            value = v[field]
            if not now - SLACK_MS <= value <= now + SLACK_MS:
                problems.append(f"voter {v['replica_id']} (leader {leader_id}) {field}="
                                f"{value}, now {now:.0f}")
    return problems


@pytest.mark.parametrize("broker_id", [1, 2, 3])
def test_replica_times_are_epoch_ms_and_voters_are_caught_up(cluster, broker_id):
    admin = KafkaAdminClient(bootstrap_servers=f"127.0.0.1:{cluster.port + broker_id - 1}",
                             request_timeout_ms=10000)
    seen: list[str] = []
    try:
        def good() -> bool:
            quorum = admin.describe_metadata_quorum()
            (partition,) = quorum["topics"][0]["partitions"]
            voters = partition["current_voters"]
            assert sorted(v["replica_id"] for v in voters) == [1, 2, 3]
            seen[:] = _problems(voters, partition["leader_id"])
            return not seen

        wait_for(good, timeout=20, what="every voter's times within 5 s of now")
    except Exception:
        raise AssertionError(f"last answer: {seen}") from None
    finally:
        admin.close()


def test_v1_carries_the_same_times(cluster):
    seen: list[str] = []

    def good() -> bool:
        response = raw_request(cluster.port, 55, 1, topics=[dict(
            topic_name="__cluster_metadata", partitions=[dict(partition_index=0)])])
        p = response.topics[0].partitions[0]
        if int(p.error_code) != 0:
            seen[:] = [f"error {p.error_code}"]
            return False
        seen[:] = _problems([dict(replica_id=v.replica_id,
                                  last_fetch_timestamp=v.last_fetch_timestamp,
                                  last_caught_up_timestamp=v.last_caught_up_timestamp)
                             for v in p.current_voters], p.leader_id)
        return not seen

    try:
        wait_for(good, timeout=20, what="DescribeQuorum v1 times within 5 s of now")
    except Exception:
        raise AssertionError(f"last answer: {seen}") from None
