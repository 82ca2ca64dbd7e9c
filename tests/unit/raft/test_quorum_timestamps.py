"""DescribeQuorum's per-replica times on the leader (KIP-836, Kafka's LeaderState.ReplicaState):
last_fetch_timestamp is when the replica last fetched, last_caught_up_timestamp the last time
it had reached the leader's log end offset as of a fetch; the leader itself reports "now" for
both; -1 only while unknown. The node keeps its own (monotonic) clock, fed here by hand, and
status() reports wall-clock ms given the wall time of a node time."""

from __future__ import annotations

import random

from kio.schema.errors import ErrorCode

from core.raft.log import MemoryLog
from core.raft.messages import FetchRequest, VoteResponse
from core.raft.node import RaftNode
from core.raft.store import ElectionState, MemoryQuorumStore

WALL = 1_760_000_000_000  # the wall-clock ms that node time NOW stands for
NOW = 10_000


def leader() -> RaftNode:
    """Node 1 of voters 1-3, elected leader of epoch 1 at node time 5002 (log end 1: the
    leader-change entry)."""
    node = RaftNode(1, [1, 2, 3], MemoryLog(), MemoryQuorumStore(ElectionState(0, None, None)),
                    rng=random.Random(0), pre_vote=True)
    node.tick(0)
    node.tick(5000)
    node.receive(5001, 2, VoteResponse(ErrorCode.none, -1, 0, True))  # pre-vote
    node.receive(5002, 2, VoteResponse(ErrorCode.none, -1, 1, True))  # vote
    assert node.is_leader and node.epoch == 1 and node.log.end_offset() == 1
    return node


def fetch(node: RaftNode, now: int, src: int, offset: int) -> None:
    epoch = node.epoch if offset > 0 else 0
    out = node.receive(now, src, FetchRequest(src, node.epoch, offset, epoch, max_wait_ms=0))
    assert out and out[0].message.error_code == ErrorCode.none
    assert out[0].message.diverging_epoch == -1


def replicas(node: RaftNode) -> dict[int, tuple[int, int, int]]:
    status = node.status(NOW, WALL)
    return {r.replica_id: (r.log_end_offset, r.last_fetch_ms, r.last_caught_up_ms)
            for r in status.voters + status.observers}


def wall(node_time: int) -> int:
    return WALL - (NOW - node_time)


def test_times_are_wall_clock_and_caught_up_follows_kafkas_rule() -> None:
    node = leader()
    # nothing known of the followers yet; the leader is "now" for both
    assert replicas(node) == {1: (1, WALL, WALL), 2: (-1, -1, -1), 3: (-1, -1, -1)}

    fetch(node, 6000, 2, 0)  # behind (leader end 1): fetched, never caught up
    assert replicas(node)[2] == (0, wall(6000), -1)
    fetch(node, 6100, 2, 1)  # reached the leader's end offset: caught up now
    assert replicas(node)[2] == (1, wall(6100), wall(6100))

    node.append([b"a", b"b", b"c"])  # leader end 4
    fetch(node, 6200, 2, 1)  # behind again, but at the end the leader had at 6100
    assert replicas(node)[2] == (1, wall(6200), wall(6100))
    node.append([b"d", b"e"])  # leader end 6
    fetch(node, 6300, 2, 4)  # reached the end as of its fetch at 6200: caught up at 6200
    assert replicas(node)[2] == (4, wall(6300), wall(6200))
    fetch(node, 6400, 2, 5)  # short of 6, the end as of 6300: unchanged
    assert replicas(node)[2] == (5, wall(6400), wall(6200))
    fetch(node, 6500, 2, 6)
    assert replicas(node)[2] == (6, wall(6500), wall(6500))

    # an observer gets the same treatment; a voter that never fetched stays unknown
    fetch(node, 6600, 4, 6)
    got = replicas(node)
    assert got[4] == (6, wall(6600), wall(6600))
    assert got[3] == (-1, -1, -1)
    assert got[1] == (6, WALL, WALL)


def test_a_lagging_replica_keeps_an_old_caught_up_time() -> None:
    node = leader()
    fetch(node, 6000, 3, 1)
    for i, now in enumerate(range(6100, 7000, 100)):
        node.append([b"x"] * 5)  # the leader keeps 5 ahead of every fetch
        fetch(node, now, 3, 1 + i)
    _, last_fetch, caught_up = replicas(node)[3]
    assert last_fetch == wall(6900)
    assert caught_up == wall(6000)
