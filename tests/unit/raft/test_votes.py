"""Vote rules, epochs and the fetch divergence protocol on single nodes, message by message."""

from __future__ import annotations

import random

from kio.schema.errors import ErrorCode

from core.raft.log import LogEntry, MemoryLog
from core.raft.messages import (
    BeginQuorumEpochRequest,
    FetchRequest,
    FetchResponse,
    VoteRequest,
    VoteResponse,
)
from core.raft.node import NotLeader, RaftNode
from core.raft.store import ElectionState, MemoryQuorumStore


def make_node(node_id: int = 1, log_epochs: tuple[int, ...] = (), epoch: int = 0,
              voted_for: int | None = None, leader: int | None = None,
              voters: tuple[int, ...] = (1, 2, 3)) -> tuple[RaftNode, MemoryQuorumStore]:
    log = MemoryLog()
    for e in log_epochs:
        log.append([LogEntry(e, b"x")])
    store = MemoryQuorumStore(ElectionState(epoch, voted_for, leader))
    node = RaftNode(node_id, list(voters), log, store, rng=random.Random(0))
    node.tick(0)
    return node, store


def vote(node: RaftNode, candidate: int, epoch: int, last_epoch: int, end: int) -> VoteResponse:
    out = node.receive(1, candidate, VoteRequest(epoch, candidate, last_epoch, end))
    responses = [o.message for o in out if isinstance(o.message, VoteResponse)]
    assert len(responses) == 1
    return responses[0]


def test_grants_to_an_up_to_date_candidate_and_persists_the_vote() -> None:
    node, store = make_node(log_epochs=(1, 1, 2), epoch=2)
    response = vote(node, 2, epoch=3, last_epoch=2, end=3)
    assert response.vote_granted and response.leader_epoch == 3
    assert store.read() == ElectionState(3, 2, None)


def test_refuses_a_shorter_log_in_the_same_last_epoch() -> None:
    node, store = make_node(log_epochs=(1, 1, 2), epoch=2)
    response = vote(node, 2, epoch=3, last_epoch=2, end=2)
    assert not response.vote_granted
    assert node.epoch == 3 and store.read().voted_for is None


def test_refuses_an_older_last_epoch_even_if_longer() -> None:
    node, _ = make_node(log_epochs=(1, 2), epoch=2)
    assert not vote(node, 2, epoch=3, last_epoch=1, end=10).vote_granted


def test_grants_a_newer_last_epoch_even_if_shorter() -> None:
    node, _ = make_node(log_epochs=(1, 1, 1, 1), epoch=2)
    assert vote(node, 2, epoch=3, last_epoch=2, end=1).vote_granted


def test_one_vote_per_epoch_and_idempotent_regrant() -> None:
    node, _ = make_node(epoch=1)
    assert vote(node, 2, epoch=2, last_epoch=0, end=0).vote_granted
    assert not vote(node, 3, epoch=2, last_epoch=0, end=0).vote_granted
    assert vote(node, 2, epoch=2, last_epoch=0, end=0).vote_granted  # a retried request


def test_vote_survives_restart() -> None:
    node, store = make_node(epoch=1)
    assert vote(node, 2, epoch=2, last_epoch=0, end=0).vote_granted
    restarted = RaftNode(1, [1, 2, 3], node.log, store, rng=random.Random(1))
    restarted.tick(5)
    assert not vote(restarted, 3, epoch=2, last_epoch=0, end=0).vote_granted


def test_stale_epoch_is_fenced() -> None:
    node, _ = make_node(epoch=5)
    response = vote(node, 2, epoch=4, last_epoch=9, end=99)
    assert not response.vote_granted
    assert response.error_code == ErrorCode.fenced_leader_epoch and response.leader_epoch == 5


def test_observers_and_unknown_candidates_do_not_vote() -> None:
    observer, _ = make_node(node_id=4, epoch=1)
    assert vote(observer, 2, epoch=2, last_epoch=0, end=0).error_code == (
        ErrorCode.inconsistent_voter_set)
    voter, _ = make_node(epoch=1)
    assert not vote(voter, 9, epoch=2, last_epoch=0, end=0).vote_granted


def test_no_vote_while_following_a_leader_in_the_epoch() -> None:
    node, _ = make_node(epoch=1)
    node.receive(1, 2, BeginQuorumEpochRequest(leader_id=2, leader_epoch=3))
    assert node.role == "follower" and node.leader_id == 2
    assert not vote(node, 3, epoch=3, last_epoch=0, end=0).vote_granted


def test_single_voter_elects_itself_and_commits() -> None:
    node, store = make_node(voters=(1,))
    assert node.is_leader and node.epoch == 1
    assert store.read() == ElectionState(1, 1, 1)
    assert node.append([b"a", b"b"]) == 1  # offset 0 is the leader-change entry
    assert [(c.offset, c.data) for c in node.poll_committed()] == [(1, b"a"), (2, b"b")]
    assert node.poll_committed() == []


def test_append_on_a_follower_is_refused() -> None:
    node, _ = make_node(epoch=1)
    node.receive(1, 2, BeginQuorumEpochRequest(leader_id=2, leader_epoch=3))
    assert node.append([b"x"]) == NotLeader(2, 3)


def _leader_with_log(epochs: tuple[int, ...]) -> RaftNode:
    """Node 1 leads epoch 5 over a log with these entry epochs (plus its leader-change entry)."""
    node, _ = make_node(log_epochs=epochs, epoch=4)
    node.tick(10_000)  # election timeout: candidate in epoch 5
    node.receive(10_001, 2, VoteResponse(ErrorCode.none, -1, 5, True))
    assert node.is_leader and node.epoch == 5
    return node


def _fetch(node: RaftNode, offset: int, last_epoch: int) -> FetchResponse:
    out = node.receive(10_002, 2, FetchRequest(2, 5, offset, last_epoch, 0))
    (response,) = [o.message for o in out if isinstance(o.message, FetchResponse)]
    return response


def test_leader_reports_divergence_for_a_conflicting_follower() -> None:
    leader = _leader_with_log((1, 1, 3, 3))
    # follower has epoch-2 entries the leader never had: truncate to the end of epoch 1
    response = _fetch(leader, offset=4, last_epoch=2)
    assert (response.diverging_epoch, response.diverging_end_offset) == (1, 2)
    # follower has more epoch-3 entries than the leader: truncate to the leader's end of 3
    response = _fetch(leader, offset=6, last_epoch=3)
    assert (response.diverging_epoch, response.diverging_end_offset) == (3, 4)
    # consistent: records from the fetch offset
    response = _fetch(leader, offset=2, last_epoch=1)
    assert response.diverging_epoch == -1
    assert [e.epoch for e in response.records] == [3, 3, 5]


def test_follower_truncates_on_divergence_then_catches_up() -> None:
    follower, _ = make_node(log_epochs=(1, 1, 2, 2), epoch=4)
    follower.receive(1, 2, BeginQuorumEpochRequest(leader_id=2, leader_epoch=5))
    follower.receive(2, 2, FetchResponse(ErrorCode.none, 2, 5, 0, 4, 2, (), 1, 2))
    assert follower.log.end_offset() == 2
    out = follower.receive(3, 2, FetchResponse(
        ErrorCode.none, 2, 5, 3, 2, 1, (LogEntry(3, b"c"), LogEntry(5, b"d")), -1, -1))
    assert follower.log.end_offset() == 4 and follower.high_watermark == 3
    (next_fetch,) = [o.message for o in out if isinstance(o.message, FetchRequest)]
    assert (next_fetch.fetch_offset, next_fetch.last_fetched_epoch) == (4, 5)
    # a stale duplicate of the earlier response is ignored
    follower.receive(4, 2, FetchResponse(ErrorCode.none, 2, 5, 3, 2, 1, (LogEntry(3, b"c"),)))
    assert follower.log.end_offset() == 4
