"""Admin requests a non-controller broker forwards follow a controller change at once, on a
real 3-broker `serve` cluster.

The active controller is paused (SIGSTOP: its connections stay open, nothing answers); a
client connected only to another broker sends CreateTopics / DescribeQuorum right away. The
quorum elects a new leader after controller.quorum.fetch.timeout.ms (2 s) plus an election;
the forwarding broker then re-sends the request to it at once: measured ~2.1 s after the
pause and ~0.1 s after a live broker first named the new leader (bounds: FORWARD_BOUND_S,
AFTER_ELECTION_BOUND_S). Before, the request waited on the paused controller for
CONTROLLER_TIMEOUT_S (10 s): ~10 s, then the connection was dropped (CreateTopics) or the
broker answered with its own NOT_LEADER_OR_FOLLOWER view (DescribeQuorum).

The paused broker is resumed in a finally; the cluster (LocalCluster: a `serve` subprocess)
is ended by PID in the fixture's teardown.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from core.cluster import LocalCluster
from core.cluster.quorum_probe import describe_quorum
from core.network.client import KafkaConnection
from tests.fixtures import running_local_cluster, wait_for

pytestmark = pytest.mark.timeout(300)

CONFIG = {
    "min.insync.replicas": "1",
    "broker.session.timeout.ms": "6000",
    "broker.heartbeat.interval.ms": "1000",
    "group.initial.rebalance.delay.ms": "0",
    "offsets.topic.num.partitions": "3",
    "auto.create.topics.enable": "false",
}
#: pause -> answer through the live broker: ~2 s (fetch timeout) + election + one round trip;
#: the old code needed ~10 s (CONTROLLER_TIMEOUT_S on the paused controller first)
FORWARD_BOUND_S = 6.0
#: the new leader known (to a live voter) -> the answer: a re-send and one round trip
AFTER_ELECTION_BOUND_S = 2.0
CLIENT_ID = "forwarding-test"  # an ordinary client (not a quorum peer's client id)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    yield from running_local_cluster(tmp_path_factory, "fwd-ctrl-change", CONFIG)


def port(cluster: LocalCluster, broker_id: int) -> int:
    return cluster.port + broker_id - 1


def controller(cluster: LocalCluster) -> int | None:
    """The broker that answers the supervisor's DescribeQuorum as the Raft leader."""
    for b in (1, 2, 3):
        v = asyncio.run(describe_quorum("127.0.0.1", port(cluster, b), 1.0))
        if v is not None and v.error_code == 0 and v.leader_id == b:
            return b
    return None


def settled(cluster: LocalCluster) -> int:
    """Wait until there is a leader that every voter follows; return it."""
    found: dict[str, int] = {}

    def check() -> bool:
        leader = controller(cluster)
        if leader is None:
            return False
        views = [asyncio.run(describe_quorum("127.0.0.1", port(cluster, b), 1.0))
                 for b in (1, 2, 3)]
        if not all(v is not None and v.leader_id == leader for v in views):
            return False
        found["leader"] = leader
        return True

    wait_for(check, 60, "every voter follows one leader")
    return found["leader"]


async def ask(broker_port: int, key: int, version: int, **fields: Any) -> Any:
    conn = await KafkaConnection.connect("127.0.0.1", broker_port, client_id=CLIENT_ID,
                                         timeout=5.0)
    async with conn:
        return await conn.request(key, max_version=version, timeout=30.0, fields=fields)


def client_describe_quorum(broker_port: int) -> Any:
    return asyncio.run(ask(broker_port, 55, 1, topics=[{
        "topic_name": "__cluster_metadata", "partitions": [{"partition_index": 0}]}]))


def create_topic(broker_port: int, name: str) -> Any:
    return asyncio.run(ask(broker_port, 19, 5, topics=[dict(
        name=name, num_partitions=1, replication_factor=2, assignments=[], configs=[])],
        timeout=20000, validate_only=False))


class ElectionWatch(threading.Thread):
    """Polls one live voter's view (the supervisor's DescribeQuorum) until it names a new
    leader: `elected` is the monotonic time it first did."""

    def __init__(self, broker_port: int, old: int) -> None:
        super().__init__(daemon=True)
        self.broker_port, self.old = broker_port, old
        self.elected: float | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set() and self.elected is None:
            v = asyncio.run(describe_quorum("127.0.0.1", self.broker_port, 0.5))
            if v is not None and v.leader_id not in (self.old, -1):
                self.elected = time.monotonic()
            time.sleep(0.05)


def paused_controller_case(cluster: LocalCluster, send: Any) -> tuple[int, Any, float, float]:
    """Pause the active controller, then `send(port of a live broker)` at once; return
    (old controller, response, seconds from the pause to the answer, seconds from the new
    leader's election, as first seen by either live broker, to the answer)."""
    old = settled(cluster)
    live, third = (b for b in (1, 2, 3) if b != old)
    # the live broker has forwarded before: its connection to the controller is open
    assert client_describe_quorum(port(cluster, live)).error_code == 0
    watches = [ElectionWatch(port(cluster, b), old) for b in (live, third)]
    cluster.control.pause_sync(old)
    try:
        started = time.monotonic()
        for watch in watches:
            watch.start()
        response = send(port(cluster, live))
        answered = time.monotonic()
    finally:
        cluster.control.resume_sync(old)
        for watch in watches:  # each sees the new leader soon (if not already)
            watch.join(10)
            watch.stop.set()
            watch.join(5)
    seen = [w.elected for w in watches if w.elected is not None]
    assert seen, "no live broker named a new leader"
    took = answered - started
    after_election = answered - min(seen)
    print(f"controller {old} paused: answer through broker {live} after {took:.2f}s, "
          f"{after_election:.2f}s after a live broker named the new leader")
    return old, response, took, after_election


def test_create_topics_follows_the_new_controller(cluster: LocalCluster) -> None:
    _old, response, took, after_election = paused_controller_case(
        cluster, lambda p: create_topic(p, "forwarded-during-pause"))
    result = response.topics[0]
    assert result.error_code == 0, (result.error_code, result.error_message)
    assert took < FORWARD_BOUND_S
    assert after_election < AFTER_ELECTION_BOUND_S


def test_describe_quorum_follows_the_new_controller(cluster: LocalCluster) -> None:
    old, response, took, after_election = paused_controller_case(cluster,
                                                                 client_describe_quorum)
    assert response.error_code == 0
    partition = response.topics[0].partitions[0]
    assert partition.error_code == 0
    assert partition.leader_id != old  # the new controller's own view
    assert took < FORWARD_BOUND_S
    assert after_election < AFTER_ELECTION_BOUND_S
