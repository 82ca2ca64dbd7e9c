"""The active controller (the metadata quorum's Raft leader) dies, or a voter is cut off, on a
real 3-broker `serve` cluster with fault proxies.

* SIGKILL of the controller while an acks=all producer runs: the supervisor sees the death at
  once and sends the survivors EndQuorumEpoch on the dead leader's behalf (KIP-595), so a new
  leader shows in DescribeQuorum well within controller.quorum.fetch.timeout.ms (2 s); no
  acknowledged record is lost.
* A voter isolated for ~10 s (KIP-996 pre-vote): it never gets a majority of pre-votes, so
  its epoch does not grow while cut off, and after `clear` the leader keeps leading, in the
  same epoch.

The cluster (LocalCluster: a `serve` subprocess) is ended by PID in the fixture's teardown.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import pytest

from core.cluster import LocalCluster, read_cluster_json
from core.cluster.quorum_probe import QuorumView, describe_quorum
from core.network.client import KafkaConnection
from tests.fixtures import running_local_cluster, wait_for
from tests.integration.test_cluster_netfaults import (
    CONFIG,
    AckedProducer,
    healthy,
    public_port,
    read_partition,
)

confluent_kafka = pytest.importorskip("confluent_kafka")
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

pytestmark = pytest.mark.timeout(300)

NEW_LEADER_BOUND_S = 1.5


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    yield from running_local_cluster(tmp_path_factory, "ctrl-failover", CONFIG)


def view(cluster: LocalCluster, broker_id: int) -> QuorumView | None:
    return asyncio.run(describe_quorum("127.0.0.1", public_port(cluster, broker_id), 1.0))


def quorum_leader(cluster: LocalCluster, brokers: list[int]) -> tuple[int, int] | None:
    """(leader, epoch) when one of `brokers` answers DescribeQuorum as the leader."""
    for b in brokers:
        v = view(cluster, b)
        if v is not None and v.error_code == 0 and v.leader_id == b:
            return b, v.leader_epoch
    return None


def client_describe_quorum(cluster: LocalCluster, broker_id: int) -> object:
    """DescribeQuorum as an ordinary client sends it (not the supervisor's client id)."""
    async def ask() -> object:
        conn = await KafkaConnection.connect("127.0.0.1", public_port(cluster, broker_id),
                                             client_id="metadata-quorum-tool", timeout=5.0)
        async with conn:
            return await conn.request(55, max_version=1, timeout=15.0, topics=[{
                "topic_name": "__cluster_metadata", "partitions": [{"partition_index": 0}]}])
    return asyncio.run(ask())


def test_any_broker_answers_describe_quorum_for_a_client(cluster: LocalCluster) -> None:
    """As Kafka's brokers do (they forward it to the active controller), every broker gives an
    ordinary client the whole quorum; the supervisor's own probe still gets each voter's view
    (a non-leader names the leader with NOT_LEADER_OR_FOLLOWER)."""
    healthy(cluster)
    found = quorum_leader(cluster, [1, 2, 3])
    assert found is not None
    leader, epoch = found
    for broker_id in (1, 2, 3):
        response = client_describe_quorum(cluster, broker_id)
        p = response.topics[0].partitions[0]  # type: ignore[attr-defined]
        assert (int(p.error_code), int(p.leader_id), int(p.leader_epoch)) == (0, leader, epoch), \
            f"broker {broker_id} answered {p}"
        assert sorted(int(v.replica_id) for v in p.current_voters) == [1, 2, 3]
        assert int(p.high_watermark) > 0
    for follower in (b for b in (1, 2, 3) if b != leader):
        own = view(cluster, follower)
        assert own is not None and own.leader_id == leader and own.voters == {}, own


def test_killed_controller_is_replaced_within_bound_and_no_ack_lost(
        cluster: LocalCluster) -> None:
    assert cluster.bootstrap is not None
    healthy(cluster)
    topic = "ctrl-kill"
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    admin.create_topics([NewTopic(topic, 3, 3, config={"min.insync.replicas": "2"})])[topic] \
        .result(30)
    found = quorum_leader(cluster, [1, 2, 3])
    assert found is not None
    old, old_epoch = found
    others = [b for b in (1, 2, 3) if b != old]
    with AckedProducer(cluster.bootstrap, topic, [0, 1, 2]) as producer:
        wait_for(lambda: sum(map(len, producer.acked.values())) >= 300, 30, "acks before")
        killed_at = time.monotonic()
        cluster.control.kill_sync(old)
        new = None
        while time.monotonic() - killed_at < 10:
            new = quorum_leader(cluster, others)
            if new is not None:
                break
            time.sleep(0.01)
        elected_s = time.monotonic() - killed_at
        assert new is not None and new[1] > old_epoch, f"no new quorum leader: {new}"
        assert elected_s < NEW_LEADER_BOUND_S, \
            f"new controller {new} after {elected_s:.2f} s (bound {NEW_LEADER_BOUND_S} s)"
        acked_then = sum(map(len, producer.acked.values()))
        wait_for(lambda: sum(map(len, producer.acked.values())) >= acked_then + 300, 60,
                 "acks after the controller died")
        cluster.control.start_sync(old)
        wait_for(lambda: (read_cluster_json(cluster.data_dir) or {}).get("brokers") and all(
            b["state"] == "running" for b in read_cluster_json(cluster.data_dir)["brokers"]),
            60, f"broker {old} running again")

    def full_isrs() -> bool:
        try:
            md = admin.list_topics(topic, timeout=5).topics[topic]
        except Exception:  # a broker may still be starting
            return False
        return md.error is None and len(md.partitions) == 3 \
            and all(len(p.isrs) == 3 for p in md.partitions.values())

    wait_for(full_isrs, 60, f"broker {old} back in every ISR of {topic}")
    for p, acked_p in producer.acked.items():  # every acknowledged record, once
        seen = [int(v) for v in read_partition(cluster.bootstrap, topic, p)]
        assert len(seen) == len(set(seen)), f"duplicates in {topic}-{p}"
        missing = set(acked_p) - set(seen)
        assert not missing, f"{topic}-{p}: {len(missing)} acknowledged records lost"
    print(json.dumps({"killed": old, "epoch": old_epoch, "new": new,
                      "new_leader_s": round(elected_s, 3),
                      "acked": sum(map(len, producer.acked.values()))}))


def test_isolated_voter_does_not_inflate_the_epoch_nor_disrupt_the_leader(
        cluster: LocalCluster) -> None:
    healthy(cluster)
    wait_for(lambda: quorum_leader(cluster, [1, 2, 3]) is not None, 30, "a quorum leader")
    found = quorum_leader(cluster, [1, 2, 3])
    assert found is not None
    leader, epoch = found
    victim = next(b for b in (1, 2, 3) if b != leader)
    cluster.control.netfault_sync(victim, "isolate")
    seen_epochs: set[int] = set()
    try:
        until = time.monotonic() + 10
        while time.monotonic() < until:
            own = view(cluster, victim)  # clients still reach an isolated broker
            if own is not None:
                seen_epochs.add(own.leader_epoch)
            assert quorum_leader(cluster, [leader]) == (leader, epoch), \
                "the leader changed while a follower was isolated"
            time.sleep(0.5)
    finally:
        cluster.control.netfault_sync(victim, "clear")
    assert seen_epochs == {epoch}, f"isolated voter {victim} went through epochs {seen_epochs}"
    # healed: it follows the same leader again, nobody was disrupted
    wait_for(lambda: (v := view(cluster, victim)) is not None and v.leader_id == leader, 15,
             f"broker {victim} following {leader} again")
    time.sleep(3)
    assert quorum_leader(cluster, [1, 2, 3]) == (leader, epoch)
