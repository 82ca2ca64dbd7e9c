"""Election hygiene on single nodes, message by message: KIP-996 pre-vote, EndQuorumEpoch's
preferred successors (KIP-595) and the randomised exponential backoff after a lost election."""

from __future__ import annotations

import random

from kio.schema.errors import ErrorCode

from core.raft.log import LogEntry, MemoryLog
from core.raft.messages import (
    BeginQuorumEpochRequest,
    EndQuorumEpochRequest,
    EndQuorumEpochResponse,
    FetchResponse,
    VoteRequest,
    VoteResponse,
)
from core.raft.node import RaftNode
from core.raft.store import ElectionState, MemoryQuorumStore


def make_node(node_id: int = 1, epoch: int = 0, leader: int | None = None,
              log_epochs: tuple[int, ...] = (), seed: int = 0) -> RaftNode:
    log = MemoryLog()
    for e in log_epochs:
        log.append([LogEntry(e, b"x")])
    store = MemoryQuorumStore(ElectionState(epoch, None, leader))
    node = RaftNode(node_id, [1, 2, 3], log, store, rng=random.Random(seed), pre_vote=True)
    node.tick(0)
    return node


def following(leader: int = 2, epoch: int = 3, node_id: int = 1, now: int = 10) -> RaftNode:
    """A voter that heard from `leader` at `now` (a good, empty fetch response)."""
    node = make_node(node_id, epoch=epoch - 1)
    node.receive(now, leader, BeginQuorumEpochRequest(leader, epoch))
    node.receive(now, leader, FetchResponse(ErrorCode.none, leader, epoch, 0, 0, 0))
    assert node.role == "follower" and node.leader_id == leader
    return node


def votes(out: list, pre_vote: bool) -> list[tuple[int, VoteRequest]]:
    return [(o.dest, o.message) for o in out
            if isinstance(o.message, VoteRequest) and o.message.pre_vote == pre_vote]


def answer(node: RaftNode, now: int, src: int, request: VoteRequest) -> VoteResponse:
    (response,) = [o.message for o in node.receive(now, src, request)
                   if isinstance(o.message, VoteResponse)]
    return response


def test_fetch_timeout_asks_for_pre_votes_without_bumping_the_epoch() -> None:
    node = following()
    out = node.tick(10 + node.fetch_timeout_ms)
    assert node.role == "prospective" and node.epoch == 3
    sent = votes(out, pre_vote=True)
    assert {dest for dest, _ in sent} == {2, 3}
    assert all(r.replica_epoch == 4 for _, r in sent)
    assert node._quorum.persisted.epoch == 3  # nothing bumped on disk either
    # a majority of pre-votes: a real election in epoch 4
    out = node.receive(2100, 3, VoteResponse(ErrorCode.none, -1, 3, True))
    assert node.role == "candidate" and node.epoch == 4
    assert {dest for dest, _ in votes(out, pre_vote=False)} == {2, 3}


def test_voter_refuses_pre_votes_while_it_hears_from_its_leader() -> None:
    node = following(leader=2, epoch=3, node_id=1, now=10)
    request = VoteRequest(4, 3, 0, 0, pre_vote=True)
    response = answer(node, 500, 3, request)
    assert not response.vote_granted and (response.leader_id, response.leader_epoch) == (2, 3)
    assert node.role == "follower" and node.epoch == 3, "a pre-vote changes nothing"
    # ... and grants once its leader is silent for the fetch timeout (it is prospective then)
    node.tick(10 + node.fetch_timeout_ms)
    assert answer(node, 10 + node.fetch_timeout_ms, 3, request).vote_granted
    assert node.epoch == 3


def test_pre_vote_needs_an_up_to_date_log_and_a_newer_epoch() -> None:
    node = make_node(epoch=3, log_epochs=(1, 3))
    assert not answer(node, 1, 2, VoteRequest(4, 2, 1, 5, pre_vote=True)).vote_granted
    assert not answer(node, 1, 2, VoteRequest(3, 2, 3, 2, pre_vote=True)).vote_granted
    assert answer(node, 1, 2, VoteRequest(4, 2, 3, 2, pre_vote=True)).vote_granted
    assert node.epoch == 3 and node._quorum.voted_for is None


def test_leader_refuses_pre_votes() -> None:
    node = make_node(epoch=0)
    node.tick(5000)
    node.receive(5001, 2, VoteResponse(ErrorCode.none, -1, 0, True))  # pre-vote
    node.receive(5002, 2, VoteResponse(ErrorCode.none, -1, 1, True))  # vote
    assert node.is_leader and node.epoch == 1
    response = answer(node, 5003, 3, VoteRequest(2, 3, 1, 10, pre_vote=True))
    assert not response.vote_granted and response.leader_id == 1
    assert node.is_leader and node.epoch == 1


def test_isolated_prospective_goes_back_to_its_leader_without_a_new_epoch() -> None:
    node = following(leader=2, epoch=3)
    now = 10 + node.fetch_timeout_ms
    for _ in range(20):  # 20 rounds of unanswered pre-votes: the epoch never moves
        node.tick(now)
        now += 200
    assert node.epoch == 3
    # healed: a voter rejects the pre-vote naming leader 2; at the round's end it fetches
    # from leader 2 again, and a good fetch makes it a follower that stays
    while node.role != "prospective":
        node.tick(now)
        now += 10
    node.receive(now, 3, VoteResponse(ErrorCode.none, 2, 3, False))
    while node.role == "prospective":
        now += 10
        node.tick(now)
    assert node.role == "follower" and node.leader_id == 2 and node.epoch == 3


def test_end_quorum_epoch_first_successor_elects_at_once_others_back_off() -> None:
    first = following(leader=2, epoch=3, node_id=1)
    second = following(leader=2, epoch=3, node_id=3)
    request = EndQuorumEpochRequest(2, 3, (1, 3))
    out = first.receive(100, 2, request)
    assert [o.message for o in out] == [EndQuorumEpochResponse(ErrorCode.none, -1, 3)]
    out = first.tick(100)
    assert first.role == "prospective"
    assert {d for d, _ in votes(out, pre_vote=True)} == {2, 3}
    second.receive(100, 2, request)
    assert second.role == "unattached" and second.epoch == 3
    assert second.tick(199) == [] and second.role == "unattached"  # position 1: 100 ms
    # it grants the first successor's pre-vote at once (its leader ended the epoch)...
    (pre,) = [r for d, r in votes(out, pre_vote=True) if d == 3]
    response = answer(second, 101, 1, pre)
    assert response.vote_granted and response.leader_id == -1
    # ...and the first successor, hearing of no leader, becomes a candidate
    first.receive(102, 3, response)
    assert first.role == "candidate" and first.epoch == 4


def test_end_quorum_epoch_not_listed_waits_the_backoff_max_and_stale_is_fenced() -> None:
    node = following(leader=2, epoch=3)
    node.receive(100, 2, EndQuorumEpochRequest(2, 3, (3,)))
    node.tick(100 + node.election_backoff_max_ms - 1)
    assert node.role == "unattached"
    node.tick(100 + node.election_backoff_max_ms)
    assert node.role == "prospective"
    stale = following(leader=2, epoch=5)
    out = stale.receive(100, 9, EndQuorumEpochRequest(2, 4, (1,)))
    assert [o.message.error_code for o in out] == [ErrorCode.fenced_leader_epoch]
    assert stale.role == "follower" and stale.leader_id == 2
    other = following(leader=2, epoch=5)
    other.receive(100, 3, EndQuorumEpochRequest(3, 5, (1,)))  # not our leader: ignored
    assert other.role == "follower" and other.leader_id == 2


def test_a_lost_election_backs_off_randomly_and_exponentially() -> None:
    backoffs: dict[int, set[int]] = {1: set(), 3: set()}
    for seed in range(40):
        node = make_node(seed=seed)
        node._become_candidate(retries=1)
        for retries in (1, 3):
            node._quorum.role.retries = retries
            node._quorum.role.backoff_until = None
            start = node._quorum.role.election_deadline  # split vote: nobody answered
            node.tick(start)
            role = node._quorum.role
            assert role.backoff_until is not None
            backoffs[retries].add(role.backoff_until - start)
            node._quorum.role.election_deadline = start + 10_000
    assert backoffs[1] <= {0, 100} and len(backoffs[1]) == 2
    assert backoffs[3] <= set(range(0, 800, 100)) and max(backoffs[3]) > 100


def test_a_rejected_candidate_waits_at_least_its_election_timeout() -> None:
    """A candidate whose log is behind a majority's must not keep bumping the epoch (and
    resetting the others' election timers) faster than they time out themselves."""
    node = make_node()
    node._become_candidate()
    role = node._quorum.role
    node.receive(1, 2, VoteResponse(ErrorCode.none, -1, node.epoch, False))
    node.receive(1, 3, VoteResponse(ErrorCode.none, -1, node.epoch, False))
    assert role.backoff_until is not None and role.backoff_until >= role.election_deadline
