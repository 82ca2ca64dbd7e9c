"""A newly elected controller acts only once it has applied what its predecessor committed:
a real 3-broker `serve` cluster with fault proxies, the active controller killed with SIGKILL
right after a CreateTopics it answered.

To open the window every time, the follower N that will take over gets +400 ms on the
answers it receives (netfault latency) and the third broker M is isolated while the topic is
created, so the controller L commits the topic with N's acknowledgement, but N learns that it
is committed only from the next Fetch answer, ~400 ms later. L is killed as soon as the
CreateTopics answer arrives (the answer N waits for dies with it), M is let back in, and N,
whose log holds the topic, is elected, with an image that lacks it until its own epoch-start
entry commits (another ~400 ms round trip with M). (M may get the topic too, from an answer
its proxy held while it was isolated and delivers once it is let back in, but not that it is
committed; if M is elected, the same holds for M.) The same CreateTopics, sent to the new
leader as soon as M names it, must get TOPIC_ALREADY_EXISTS, never create the topic a second
time. Repeated a few times; the old controller created it again every time.

The cluster (LocalCluster: a `serve` subprocess) is ended by PID in the fixture's teardown.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from kio.schema.errors import ErrorCode

from core.cluster import LocalCluster, read_cluster_json
from core.cluster.quorum_probe import describe_quorum
from core.network.client import KafkaConnection
from tests.fixtures import running_local_cluster, wait_for
from tests.integration.test_cluster_netfaults import CONFIG, healthy, public_port
from tests.integration.test_controller_failover import quorum_leader

pytestmark = pytest.mark.timeout(300)

ROUNDS = 3
LAG_MS = 400


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    yield from running_local_cluster(tmp_path_factory, "ctrl-replay", CONFIG)


async def create_topic(conn: KafkaConnection, name: str) -> tuple[int, str | None]:
    """CreateTopics v5 for `name` (1 partition, RF 3) on `conn`: (error code, message)."""
    response = await conn.request(19, version=5, fields={
        "timeout": 30000, "validate_only": False,
        "topics": [{"name": name, "num_partitions": 1, "replication_factor": 3,
                    "assignments": [], "configs": []}]})
    [topic] = response.topics
    return int(topic.error_code), topic.error_message


async def connect(cluster: LocalCluster, broker_id: int) -> KafkaConnection:
    return await KafkaConnection.connect("127.0.0.1", public_port(cluster, broker_id),
                                         client_id="replay-test", timeout=5.0)


def all_running(cluster: LocalCluster) -> bool:
    doc = read_cluster_json(cluster.data_dir) or {}
    brokers = doc.get("brokers") or []
    return len(brokers) == 3 and all(b["state"] == "running" for b in brokers)


async def failover_round(cluster: LocalCluster, old: int, old_epoch: int, lagging: int,
                         isolated: int, name: str) -> tuple[int, int, str | None, float]:
    """Create `name` on `old`, kill it, and send the same CreateTopics to the new leader as
    soon as the isolated broker, let back in, names it. Returns the new leader, the second
    answer and how long after the election it came."""
    control = cluster.control
    conns = {b: await connect(cluster, b) for b in (old, lagging, isolated)}
    try:  # all opened before the faults: no handshake to delay
        await asyncio.to_thread(control.netfault_sync, lagging, "latency", LAG_MS)
        await asyncio.to_thread(control.netfault_sync, isolated, "isolate")
        assert await create_topic(conns[old], name) == (0, None)
        await asyncio.to_thread(control.kill_sync, old)
        await asyncio.to_thread(control.netfault_sync, isolated, "clear")
        deadline = time.monotonic() + 20
        while True:  # the isolated broker's own view: it answers without delay
            v = await describe_quorum("127.0.0.1", public_port(cluster, isolated), 1.0)
            # usually the lagging broker; the isolated one too may have received the topic
            # (the proxy held the answer that carried it and delivers it on clear) and win
            if v is not None and v.leader_id in (lagging, isolated) \
                    and v.leader_epoch > old_epoch:
                break
            assert time.monotonic() < deadline, f"no new leader: {v}"
            await asyncio.sleep(0.005)
        elected = time.monotonic()
        code, message = await create_topic(conns[v.leader_id], name)
        return v.leader_id, code, message, time.monotonic() - elected
    finally:
        for conn in conns.values():
            conn.close_nowait()


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_create_after_controller_failover_sees_the_topic_the_dead_controller_created(
        cluster: LocalCluster, round_: int) -> None:
    healthy(cluster)
    wait_for(lambda: quorum_leader(cluster, [1, 2, 3]) is not None, 30, "a quorum leader")
    found = quorum_leader(cluster, [1, 2, 3])
    assert found is not None
    old, old_epoch = found
    lagging, isolated = (b for b in (1, 2, 3) if b != old)
    name = f"replay-{round_}"
    control = cluster.control
    try:
        new, code, message, after_s = asyncio.run(
            failover_round(cluster, old, old_epoch, lagging, isolated, name))
        assert ErrorCode(code) == ErrorCode.topic_already_exists, (
            f"round {round_}: {name}, created by controller {old} just before it was killed, "
            f"was created again by the new controller {new} ({after_s:.2f} s after its "
            f"election): {ErrorCode(code).name} {message!r}")
    finally:
        for b in (lagging, isolated):
            control.netfault_sync(b, "clear")
        if not all_running(cluster):
            control.start_sync(old)
        wait_for(lambda: all_running(cluster), 60, f"broker {old} running again")
