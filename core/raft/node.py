"""RaftNode: a sans-IO KRaft-style quorum member (voter or observer).

The node never does I/O and never reads a clock: the caller feeds it time and messages,

    node.tick(now_ms) -> list[Outbound]
    node.receive(now_ms, src, message) -> list[Outbound]

and delivers what it returns. Replication is KIP-595's pull model: followers and observers
Fetch from the leader with (fetch_offset, last_fetched_epoch); the leader answers with
entries or with a diverging epoch and end offset the follower truncates to. The leader may
park a Fetch with nothing new until data arrives, the high watermark moves, or max_wait
passes (long polling). The high watermark (exclusive end of committed entries) is the
largest offset a majority of voters have, once it covers the leader's own epoch-start
entry (the leader-change control entry, as KRaft's LeaderChangeMessage).

Snapshots (KIP-630): the state machine hands the node a snapshot of its state at an applied
offset (create_snapshot); the node stores it and deletes the log before it. A follower whose
fetch offset is below the leader's log start gets the snapshot's id in the Fetch response
instead of entries, downloads it chunk by chunk with FetchSnapshot, installs it (its log
restarts empty at the snapshot's end offset) and fetches on from there. The state machine
learns it must reload from a snapshot through poll_snapshot(), before poll_committed().
A voter whose log starts after a snapshot it no longer has (lost, corrupt) refuses to start
(LostLogError): it may have acknowledged the entries it lost (see _restore_snapshot).

Elections (KIP-595, KIP-996). With `pre_vote=True` (the brokers turn it on), a voter that
stops hearing from its leader (fetch timeout), or whose election timeout passes without a
leader, first becomes *prospective*: it asks the
voters for pre-votes (Vote with pre_vote=true, for its epoch + 1) without bumping or
persisting its epoch, and becomes a candidate only when a majority would vote for it. A voter
refuses a pre-vote while it still hears from a leader (a follower within its fetch timeout,
or the leader itself), so an isolated voter neither inflates the epoch nor disrupts the
leader when it comes back: the rejections name the leader and it follows it again. A
candidate that loses (a majority rejects, or election_deadline passes) backs off a random,
binary-exponential time capped at election_backoff_max_ms (Kafka's
controller.quorum.election.backoff.max.ms) before its next pre-vote round, so two
candidates do not retry in lockstep. EndQuorumEpoch (a leader resigning, or sent on a dead
leader's behalf by the supervisor) ends the leader's epoch on the receiver: the first
preferred successor starts an election at once, the others wait 100 ms << (position - 1)
(capped by the backoff max; Kafka's strictExponentialElectionBackoffMs), and none of them
follows that leader again in that epoch. (Unlike Kafka, which keeps such a follower in
FollowerState with a shortened fetch timer, ours becomes unattached with `ended_leader`
set, which lets it grant pre-votes at once.)

Randomness (election jitter and backoff, discovery targets) comes only from the `rng` passed
in, so a seeded simulation replays exactly.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from kio.schema.errors import ErrorCode

from core.raft.log import LogEntry, RaftLog
from core.raft.messages import (
    NO_LEADER,
    BeginQuorumEpochRequest,
    BeginQuorumEpochResponse,
    EndQuorumEpochRequest,
    EndQuorumEpochResponse,
    FetchRequest,
    FetchResponse,
    FetchSnapshotRequest,
    FetchSnapshotResponse,
    Outbound,
    RaftMessage,
    VoteRequest,
    VoteResponse,
)
from core.raft.snapshot import SnapshotDownload, SnapshotId, SnapshotStore
from core.raft.state import (
    CandidateState,
    FollowerState,
    LeaderState,
    ProspectiveState,
    QuorumState,
    ReplicaState,
    ResignedState,
    UnattachedState,
)
from core.raft.store import QuorumStore

NONE = ErrorCode.none
#: Kafka's KafkaRaftClient.RETRY_BACKOFF_BASE_MS: the unit of the election backoffs
RETRY_BACKOFF_BASE_MS = 100


class LostLogError(RuntimeError):
    """A voter's log starts after a snapshot it does not have: it refuses to start."""


@dataclass(frozen=True, slots=True)
class NotLeader:
    """append() on a node that is not the leader: where to go instead (-1: unknown)."""

    leader_id: int
    epoch: int


class CommittedEntry(NamedTuple):
    """A committed data entry, as poll_committed() hands it to the state machine."""

    offset: int
    epoch: int
    data: bytes


@dataclass(frozen=True, slots=True)
class ReplicaStatus:
    """One replica in DescribeQuorum. The times are wall-clock ms when status() was given
    the wall clock (else the node's own clock); -1 when unknown."""

    replica_id: int
    log_end_offset: int  # -1 when unknown
    last_fetch_ms: int  # -1 when unknown
    last_caught_up_ms: int = -1


@dataclass(frozen=True, slots=True)
class QuorumStatus:
    """What DescribeQuorum reports; voter/observer details are only known on the leader."""

    node_id: int
    role: str
    leader_id: int
    epoch: int
    high_watermark: int
    voters: tuple[ReplicaStatus, ...]
    observers: tuple[ReplicaStatus, ...]


class RaftNode:
    """One member of the metadata quorum. Voters vote and count toward commit; others observe."""

    def __init__(
        self,
        node_id: int,
        voters: Sequence[int],
        log: RaftLog,
        store: QuorumStore,
        *,
        rng: random.Random,
        election_timeout_ms: int = 1000,
        election_jitter_ms: int = 1000,
        fetch_timeout_ms: int = 2000,
        fetch_max_wait_ms: int = 500,
        request_timeout_ms: int = 500,
        retry_backoff_ms: int = 100,
        election_backoff_max_ms: int = 1000,
        pre_vote: bool = False,
        max_fetch_entries: int = 500,
        snapshots: SnapshotStore | None = None,
        snapshot_chunk_bytes: int = 1024 * 1024,
    ) -> None:
        if fetch_max_wait_ms + request_timeout_ms >= fetch_timeout_ms:
            raise ValueError("fetch_timeout_ms must exceed fetch_max_wait_ms + request_timeout_ms")
        self.node_id = node_id
        self.voters = tuple(sorted(set(voters)))
        self.is_voter = node_id in self.voters
        self.log = log
        self.rng = rng
        self.election_timeout_ms = election_timeout_ms
        self.election_jitter_ms = election_jitter_ms
        self.fetch_timeout_ms = fetch_timeout_ms
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.request_timeout_ms = request_timeout_ms
        self.retry_backoff_ms = retry_backoff_ms
        self.election_backoff_max_ms = election_backoff_max_ms
        self.pre_vote = pre_vote
        self.max_fetch_entries = max_fetch_entries
        self._quorum = QuorumState(store)
        self._majority = len(self.voters) // 2 + 1
        self._hw = 0
        self._applied = 0
        self._now = 0
        self._started = False
        self._outbox: list[Outbound] = []
        self.snapshots = snapshots
        self.snapshot_chunk_bytes = snapshot_chunk_bytes
        self._snapshot_to_load: SnapshotId | None = None
        self._download: SnapshotDownload | None = None
        self._serving: dict[SnapshotId, int] = {}  # snapshot -> when a chunk was last served
        self.stats = {"snapshots_created": 0, "snapshots_fetched": 0, "snapshot_chunks_sent": 0}
        self._restore_snapshot()

    # ------------------------------------------------------------------ public API

    @property
    def epoch(self) -> int:
        return self._quorum.epoch

    @property
    def leader_id(self) -> int | None:
        """The leader of the current epoch, if this node knows it."""
        return self._quorum.leader_id

    @property
    def role(self) -> str:
        """'unattached', 'follower', 'prospective', 'candidate', 'leader' or 'resigned'."""
        return type(self._quorum.role).__name__.removesuffix("State").lower()

    @property
    def is_leader(self) -> bool:
        return isinstance(self._quorum.role, LeaderState)

    @property
    def high_watermark(self) -> int:
        """Exclusive end of the entries this node knows are committed."""
        return self._hw

    @property
    def epoch_start_offset(self) -> int | None:
        """Leader only: the offset of this epoch's leader-change entry (None otherwise)."""
        role = self._quorum.role
        return role.epoch_start_offset if isinstance(role, LeaderState) else None

    @property
    def leader_caught_up(self) -> bool:
        """This node leads and its state machine has been handed every entry committed
        before its epoch: its own epoch-start (leader-change) entry is committed and
        poll_committed() has returned past it. A new leader's high watermark may lag what
        the previous leader committed (a follower learns it one fetch later); everything
        below its epoch start is committed once that entry is, so from here on the state
        machine is complete (Kafka's QuorumController claims leadership only then)."""
        start = self.epoch_start_offset
        return start is not None and self._applied > start

    def tick(self, now_ms: int) -> list[Outbound]:
        """Advance timers (elections, fetch timeouts, retries, parked fetches)."""
        self._enter(now_ms)
        role = self._quorum.role
        if isinstance(role, UnattachedState):
            self._tick_unattached(role)
        elif isinstance(role, FollowerState):
            self._tick_follower(role)
        elif isinstance(role, ProspectiveState):
            self._tick_prospective(role)
        elif isinstance(role, CandidateState):
            self._tick_candidate(role)
        elif isinstance(role, LeaderState):
            self._tick_leader(role)
        else:
            self._tick_resigned(role)
        return self.take_outbound()

    def receive(self, now_ms: int, src: int, message: RaftMessage) -> list[Outbound]:
        """Handle one message from node src."""
        self._enter(now_ms)
        if src != self.node_id:
            handler = _HANDLERS.get(type(message))
            if handler is not None:
                handler(self, src, message)
        return self.take_outbound()

    def append(self, entries: Sequence[bytes]) -> int | NotLeader:
        """Leader only: append entries in the current epoch; returns the first one's offset.

        Parked fetches are answered at once: collect them with take_outbound().
        """
        role = self._quorum.role
        if not isinstance(role, LeaderState):
            leader = self._quorum.leader_id
            return NotLeader(NO_LEADER if leader is None else leader, self.epoch)
        base = self.log.end_offset()
        if not entries:
            return base
        self.log.append([LogEntry(role.epoch, bytes(data)) for data in entries])
        role.voters[self.node_id].end_offset = self.log.end_offset()
        if not self._advance_high_watermark(role):
            self._complete_parked(role)
        return base

    def resign(self, now_ms: int) -> list[Outbound]:
        """Leader only: step down gracefully (EndQuorumEpoch to the voters); else a no-op."""
        self._enter(now_ms)
        role = self._quorum.role
        if isinstance(role, LeaderState):
            self._resign(role)
        return self.take_outbound()

    def take_outbound(self) -> list[Outbound]:
        """Messages produced outside tick/receive (by append) waiting to be sent."""
        out, self._outbox = self._outbox, []
        return out

    @property
    def applied_offset(self) -> int:
        """Exclusive end of the entries poll_committed() has returned (or a snapshot covered)."""
        return self._applied

    def poll_snapshot(self) -> SnapshotId | None:
        """The snapshot the state machine must load (replacing its state) before it applies
        poll_committed()'s entries: after a restart with a snapshot, or after one was fetched
        from the leader. Returned once."""
        snapshot, self._snapshot_to_load = self._snapshot_to_load, None
        return snapshot

    def create_snapshot(self, end_offset: int, records: Sequence[bytes]) -> SnapshotId:
        """Store `records`, the state machine's state after every committed entry below
        end_offset (<= applied_offset), as a durable snapshot; then delete the log before it
        (the log start offset advances). Returns the snapshot's id."""
        if self.snapshots is None:
            raise RuntimeError("this node has no snapshot store")
        latest = self.snapshots.latest()
        if not (self.log.start_offset() < end_offset <= min(self._applied, self._hw)):
            raise ValueError(f"snapshot at {end_offset} outside the applied, committed log "
                             f"[{self.log.start_offset()}, {min(self._applied, self._hw)}]")
        if latest is not None and end_offset <= latest.end_offset:
            raise ValueError(f"snapshot at {end_offset} not after the latest {latest}")
        epoch = self.log.epoch_at(end_offset - 1)
        assert epoch is not None
        snapshot_id = SnapshotId(end_offset, epoch)
        horizon = self._now - self.fetch_timeout_ms
        self._serving = {s: t for s, t in self._serving.items() if t >= horizon}
        self.snapshots.write(snapshot_id, records, keep=self._serving.keys())
        self.log.delete_before(end_offset)
        self.stats["snapshots_created"] += 1
        return snapshot_id

    def poll_committed(self) -> list[CommittedEntry]:
        """Committed data entries not returned before, in offset order (control entries skipped).

        A restarted node starts again from its latest snapshot (see poll_snapshot), or from
        offset 0 without one: its state machine replays the log after it.
        """
        out: list[CommittedEntry] = []
        while self._applied < self._hw:
            batch = self.log.read(self._applied, min(self._hw - self._applied, 1024))
            if not batch:
                raise AssertionError(f"log shorter than high watermark {self._hw}")
            for i, entry in enumerate(batch):
                if not entry.control:
                    out.append(CommittedEntry(self._applied + i, entry.epoch, entry.data))
            self._applied += len(batch)
        return out

    def status(self, now_ms: int | None = None, wall_ms: int | None = None) -> QuorumStatus:
        """DescribeQuorum's view: leader, epoch, high watermark and per-replica progress.

        Replica times are kept on the node's clock; given `wall_ms`, the wall-clock time at
        node time `now_ms` (default: the last time the node was fed), they are reported as
        wall-clock ms (Kafka's last_fetch_timestamp / last_caught_up_timestamp, epoch ms).
        On the leader, the leader's own entry is "now" for both, as in Kafka's LeaderState.
        """
        role = self._quorum.role
        leader = self._quorum.leader_id
        now = self._now if now_ms is None else max(self._now, now_ms)
        offset = 0 if wall_ms is None else wall_ms - now

        def at(t: int) -> int:
            return -1 if t < 0 else t + offset

        def replica(r: ReplicaState) -> ReplicaStatus:
            if r.node_id == self.node_id:
                return ReplicaStatus(r.node_id, r.end_offset, at(now), at(now))
            return ReplicaStatus(r.node_id, r.end_offset, at(r.last_fetch_ms),
                                 at(r.last_caught_up_ms))

        if isinstance(role, LeaderState):
            voters = tuple(replica(r) for r in role.voters.values())
            observers = tuple(replica(r) for _, r in sorted(role.observers.items()))
        else:
            voters = tuple(
                ReplicaStatus(v, self.log.end_offset() if v == self.node_id else -1, -1)
                for v in self.voters
            )
            observers = ()
        return QuorumStatus(
            self.node_id, self.role, NO_LEADER if leader is None else leader,
            self.epoch, self._hw, voters, observers,
        )

    # ------------------------------------------------------------------ plumbing

    def _enter(self, now_ms: int) -> None:
        self._now = max(self._now, now_ms)
        if not self._started:
            self._started = True
            self._restore()

    def _restore_snapshot(self) -> None:
        """Start from the latest snapshot: the log must continue it, or it is reset to it.

        When the snapshot the log starts after is gone (lost or corrupt), the entries below
        the log start exist nowhere on this node. An observer then starts over empty and
        fetches the leader's snapshot: nothing in the quorum depends on its log. A voter
        refuses to start (LostLogError): Raft's safety rests on every voter keeping the
        entries it acknowledged, since a commit counted it and its Vote compares its log
        with the candidate's. Started over empty, it would grant a vote to a candidate that
        lacks a committed entry, and that candidate, elected, truncates it away everywhere
        (tests/simulation: test_voter_that_lost_its_snapshot_*). Refusing is safe by
        construction (the node never acts on lost state) and is what an operator can act
        on: restore the files, or remove the voter and add a fresh one.
        """
        latest = self.snapshots.latest() if self.snapshots is not None else None
        log = self.log
        if latest is None:
            if log.start_offset() > 0:
                self._lost(f"its log starts at {log.start_offset()} but there is no "
                           "snapshot to start from")
                log.truncate_fully_and_start_at(0, 0)
            return
        end, epoch = latest
        if end < log.start_offset():
            self._lost(f"its log starts at {log.start_offset()} but the newest valid "
                       f"snapshot ends at {end}")
            log.truncate_fully_and_start_at(end, epoch)
        elif end > log.end_offset() or log.epoch_at(end - 1) != epoch:
            # a crash after a snapshot fetched from the leader froze, before the log was
            # truncated to it (Kafka's truncateToLatestSnapshot): the snapshot holds only
            # committed entries, and our entries after a different epoch at end - 1 were
            # never committed (log matching), so nothing acknowledged is lost
            log.truncate_fully_and_start_at(end, epoch)
        self._applied = self._hw = end
        self._snapshot_to_load = latest

    def _lost(self, why: str) -> None:
        """The log's prefix cannot be rebuilt: fatal for a voter (see _restore_snapshot)."""
        if self.is_voter:
            raise LostLogError(
                f"metadata quorum voter {self.node_id} cannot start: {why}. The committed "
                "entries below its log start are lost and a voter must not forget entries "
                "it acknowledged; restore the metadata log directory and its .checkpoint "
                "files, or remove this voter from the quorum and add a new one")

    def _restore(self) -> None:
        persisted = self._quorum.persisted
        leader = persisted.leader_id
        if leader == self.node_id and self.is_voter:
            self._quorum.transition(
                ResignedState(persisted.epoch, self.node_id, self._now + self._election_timeout())
            )
        elif leader is not None and leader != self.node_id:
            self._become_follower(persisted.epoch, leader, persisted.voted_for)
        else:
            self._become_unattached(persisted.epoch, persisted.voted_for)
            if self.is_voter and len(self.voters) == 1:
                self._become_candidate()

    def _send(self, dest: int, message: RaftMessage) -> None:
        if dest != self.node_id:
            self._outbox.append(Outbound(dest, message))

    def _election_timeout(self) -> int:
        return self.election_timeout_ms + self.rng.randint(0, self.election_jitter_ms)

    def _leader_or_none(self) -> int:
        leader = self._quorum.leader_id
        return NO_LEADER if leader is None else leader

    # ------------------------------------------------------------------ transitions

    def _abort_download(self) -> None:
        if self._download is not None:
            self._download.abort()
            self._download = None

    def _become_unattached(self, epoch: int, voted_for: int | None = None) -> None:
        self._abort_download()
        deadline = self._now + self._election_timeout()
        self._quorum.transition(UnattachedState(epoch, voted_for, deadline, discover_at=self._now))
        if not self.is_voter:
            self._discover()

    def _become_follower(self, epoch: int, leader_id: int, voted_for: int | None) -> None:
        self._abort_download()
        role = FollowerState(epoch, leader_id, voted_for, self._now + self.fetch_timeout_ms)
        self._quorum.transition(role)
        self._send_fetch(role)

    def _become_prospective(self, retries: int = 1, leader_hint: int | None = None,
                            leader_ended: bool = False) -> None:
        """KIP-996: ask for pre-votes in epoch + 1; nothing is bumped until a majority grants.
        With pre_vote off (the node option), a plain election instead."""
        if not self.pre_vote:
            self._become_candidate(retries)
            return
        self._abort_download()
        current = self._quorum.role
        role = ProspectiveState(
            current.epoch, self.node_id, current.voted_for,
            self._now + self._election_timeout(), granted={self.node_id},
            retries=retries, leader_hint=leader_hint, leader_ended=leader_ended,
        )
        self._quorum.transition(role)
        if len(role.granted) >= self._majority:
            self._become_candidate(retries)
            return
        self._request_pre_votes(role)

    def _request_pre_votes(self, role: ProspectiveState) -> None:
        log = self.log
        request = VoteRequest(role.epoch + 1, self.node_id, log.last_epoch(), log.end_offset(),
                              pre_vote=True)
        for voter in self.voters:
            if voter not in role.granted and voter not in role.rejected:
                self._send(voter, request)
        role.last_sent = self._now

    def _election_backoff(self, retries: int) -> int:
        """Kafka's binaryExponentialElectionBackoffMs: random, doubling per lost election."""
        spread = 2 << min(20, max(0, retries - 1))
        return min(RETRY_BACKOFF_BASE_MS * self.rng.randrange(spread),
                   self.election_backoff_max_ms)

    def _end_epoch_backoff(self, successors: Sequence[int]) -> int:
        """Kafka's endEpochElectionBackoff: the first preferred successor at once, the k-th
        after 100 ms << (k - 1) (strict exponential, capped), voters not listed after the max."""
        if self.node_id not in successors:
            return self.election_backoff_max_ms
        position = list(successors).index(self.node_id)
        if position == 0:
            return 0
        return min(RETRY_BACKOFF_BASE_MS << min(20, position - 1), self.election_backoff_max_ms)

    def _become_candidate(self, retries: int = 1) -> None:
        self._abort_download()
        role = CandidateState(
            self._quorum.epoch + 1, self.node_id, self._now + self._election_timeout(),
            granted={self.node_id}, last_sent=self._now, retries=retries,
        )
        self._quorum.transition(role)
        if len(role.granted) >= self._majority:
            self._become_leader(role.epoch)
            return
        self._request_votes(role)

    def _request_votes(self, role: CandidateState) -> None:
        log = self.log
        request = VoteRequest(role.epoch, self.node_id, log.last_epoch(), log.end_offset())
        for voter in self.voters:
            if voter not in role.granted and voter not in role.rejected:
                self._send(voter, request)
        role.last_sent = self._now

    def _become_leader(self, epoch: int) -> None:
        self._abort_download()
        start = self.log.end_offset()
        voters = {v: ReplicaState(v) for v in self.voters}
        role = LeaderState(epoch, self.node_id, start, self._now, voters, last_begin_sent=self._now)
        self._quorum.transition(role)
        marker = json.dumps({"leader_id": self.node_id, "voters": list(self.voters)})
        self.log.append([LogEntry(epoch, marker.encode(), control=True)])
        me = voters[self.node_id]
        me.end_offset, me.last_fetch_ms, me.acked_epoch = self.log.end_offset(), self._now, True
        begin = BeginQuorumEpochRequest(self.node_id, epoch)
        for voter in self.voters:
            self._send(voter, begin)
        self._advance_high_watermark(role)

    def _resign(self, role: LeaderState) -> None:
        others = [v for v in self.voters if v != self.node_id]
        successors = tuple(sorted(others, key=lambda v: (-role.voters[v].end_offset, v)))
        resigned = ResignedState(
            role.epoch, self.node_id, self._now + self._election_timeout(),
            successors, set(others), self._now,
        )
        self._quorum.transition(resigned)
        self._send_end_quorum(resigned)

    def _send_end_quorum(self, role: ResignedState) -> None:
        request = EndQuorumEpochRequest(self.node_id, role.epoch, role.preferred_successors)
        for voter in role.unacked:
            self._send(voter, request)
        role.last_sent = self._now

    def _observe(self, epoch: int, leader_id: int) -> None:
        """Adopt a newer epoch, or the leader of our epoch, learned from a peer (but never a
        leader whose epoch EndQuorumEpoch ended here)."""
        leader = None if leader_id < 0 else leader_id
        current = self._quorum.role
        if epoch > current.epoch:
            if leader is not None and leader != self.node_id:
                self._become_follower(epoch, leader, None)
            else:
                self._become_unattached(epoch)
        elif (
            epoch == current.epoch
            and leader is not None
            and leader != self.node_id
            and not (isinstance(current, UnattachedState) and current.ended_leader == leader)
            and not (isinstance(current, ProspectiveState) and current.leader_hint == leader)
            and isinstance(current, UnattachedState | ProspectiveState | CandidateState)
        ):
            self._become_follower(epoch, leader, current.voted_for)

    # ------------------------------------------------------------------ timers

    def _tick_unattached(self, role: UnattachedState) -> None:
        if self.is_voter:
            if self._now >= role.election_deadline:
                ended = role.ended_leader
                self._become_prospective(leader_hint=ended, leader_ended=ended is not None)
        elif self._now >= role.discover_at:
            self._discover()

    def _discover(self) -> None:
        """Observers without a leader ask a random voter (it answers with the leader it knows)."""
        role = self._quorum.role
        if not isinstance(role, UnattachedState) or not self.voters:
            return
        role.discover_at = self._now + self.request_timeout_ms
        target = self.rng.choice(self.voters)
        self._send(target, self._fetch_request(role.epoch, max_wait_ms=0))

    def _tick_follower(self, role: FollowerState) -> None:
        if self._now >= role.fetch_deadline:
            if self.is_voter:
                self._become_prospective(leader_hint=role.leader_id)
            else:
                self._become_unattached(role.epoch)
            return
        if role.inflight_since is None:
            if self._now >= role.next_fetch_at:
                self._send_next(role)
        elif self._now - role.inflight_since >= self.fetch_max_wait_ms + self.request_timeout_ms:
            self._send_next(role)

    def _tick_prospective(self, role: ProspectiveState) -> None:
        if self._now >= role.election_deadline:
            # no majority in time (or it rejected us): back to the leader we had, if its
            # epoch was not ended (a healed partition ends here), else another pre-vote
            # round; the epoch is unchanged either way
            if role.leader_hint is not None and not role.leader_ended:
                self._become_follower(role.epoch, role.leader_hint, role.voted_for)
            else:
                self._become_prospective(role.retries + 1, role.leader_hint, role.leader_ended)
        elif self._now - role.last_sent >= self.request_timeout_ms:
            self._request_pre_votes(role)

    def _tick_candidate(self, role: CandidateState) -> None:
        if role.backoff_until is not None:
            if self._now >= role.backoff_until:
                self._become_prospective(role.retries + 1)
        elif self._now >= role.election_deadline:
            self._lose_election(role)
        elif self._now - role.last_sent >= self.request_timeout_ms:
            self._request_votes(role)

    def _lose_election(self, role: CandidateState, not_before: int = 0) -> None:
        """Back off a random, exponentially growing time before trying again (Kafka's
        controller.quorum.election.backoff.max.ms), so split candidates do not retry in step."""
        if role.backoff_until is None:
            role.backoff_until = max(not_before,
                                     self._now + self._election_backoff(role.retries))

    def _tick_leader(self, role: LeaderState) -> None:
        for src, (request, until) in list(role.parked.items()):
            if self._now >= until:
                del role.parked[src]
                self._answer_fetch(src, request)
        # check quorum: a leader cut off from a majority steps down (Kafka: 1.5 x fetch timeout)
        horizon = self._now - self.fetch_timeout_ms * 3 // 2
        alive = sum(
            1 for r in role.voters.values()
            if r.node_id == self.node_id or max(r.last_fetch_ms, role.started_ms) >= horizon
        )
        if alive < self._majority:
            self._resign(role)
            return
        if self._now - role.last_begin_sent >= self.request_timeout_ms:
            begin = BeginQuorumEpochRequest(self.node_id, role.epoch)
            for r in role.voters.values():
                if not r.acked_epoch:
                    self._send(r.node_id, begin)
            role.last_begin_sent = self._now

    def _tick_resigned(self, role: ResignedState) -> None:
        if not self.is_voter:
            return
        if self._now >= role.election_deadline:
            self._become_prospective()
        elif role.unacked and self._now - role.last_sent >= self.request_timeout_ms:
            self._send_end_quorum(role)

    # ------------------------------------------------------------------ votes

    def _on_vote_request(self, src: int, request: VoteRequest) -> None:
        if not self.is_voter or request.replica_id not in self.voters:
            self._send(src, VoteResponse(
                ErrorCode.inconsistent_voter_set, self._leader_or_none(), self.epoch, False))
            return
        if request.replica_epoch < self.epoch:
            self._send(src, VoteResponse(
                ErrorCode.fenced_leader_epoch, self._leader_or_none(), self.epoch, False))
            return
        if request.pre_vote:
            granted = request.replica_epoch > self.epoch and self._would_vote(request)
            self._send(src, VoteResponse(NONE, self._leader_or_none(), self.epoch, granted))
            return
        if request.replica_epoch > self.epoch:
            self._become_unattached(request.replica_epoch)
        role = self._quorum.role
        granted = role.voted_for == request.replica_id
        if (not granted and isinstance(role, UnattachedState | ProspectiveState)
                and role.voted_for is None and self._log_up_to_date(request)):
            ended = role.ended_leader if isinstance(role, UnattachedState) else (
                role.leader_hint if role.leader_ended else None)
            self._quorum.transition(UnattachedState(
                role.epoch, request.replica_id, self._now + self._election_timeout(),
                ended_leader=ended))
            granted = True
        self._send(src, VoteResponse(NONE, self._leader_or_none(), self.epoch, granted))

    def _log_up_to_date(self, request: VoteRequest) -> bool:
        mine = (self.log.last_epoch(), self.log.end_offset())
        return (request.last_offset_epoch, request.last_offset) >= mine

    def _would_vote(self, request: VoteRequest) -> bool:
        """KIP-996: grant a pre-vote unless we still hear from a leader (we lead, or follow one
        within the fetch timeout) or the candidate's log is behind ours."""
        role = self._quorum.role
        if isinstance(role, LeaderState):
            return False
        if isinstance(role, FollowerState) and role.heard_ms >= 0 \
                and self._now - role.heard_ms < self.fetch_timeout_ms:
            return False
        return self._log_up_to_date(request)

    def _on_vote_response(self, src: int, response: VoteResponse) -> None:
        """Count (pre-)votes. A pre-vote answer carries the voter's epoch, ours while we are
        prospective, never the epoch we then stand in as a candidate; so a late pre-vote can
        not be counted as a vote (and a late vote at most as a pre-vote, which is harmless)."""
        self._observe(response.leader_epoch, response.leader_id)
        role = self._quorum.role
        if not isinstance(role, CandidateState | ProspectiveState) \
                or response.leader_epoch != role.epoch:
            return
        if response.error_code != NONE or src not in self.voters:
            return
        if response.vote_granted:
            role.granted.add(src)
            if len(role.granted) >= self._majority:
                if isinstance(role, ProspectiveState):
                    self._become_candidate(role.retries)
                else:
                    self._become_leader(role.epoch)
            return
        role.rejected.add(src)
        if len(role.rejected) > len(self.voters) - self._majority:  # a majority is out of reach
            if isinstance(role, CandidateState):
                # rejected (a longer log elsewhere): wait at least the election timeout, so a
                # stale candidate does not keep resetting the others' timers with new epochs
                self._lose_election(role, not_before=role.election_deadline)
            else:
                role.election_deadline = min(role.election_deadline,
                                             self._now + self._election_backoff(role.retries))

    # ------------------------------------------------------------------ begin / end epoch

    def _on_begin_quorum_epoch(self, src: int, request: BeginQuorumEpochRequest) -> None:
        if request.leader_epoch >= self.epoch:
            self._observe(request.leader_epoch, request.leader_id)
            role = self._quorum.role
            if isinstance(role, FollowerState) and role.leader_id == request.leader_id:
                role.heard_ms = self._now
            error = NONE
        else:
            error = ErrorCode.fenced_leader_epoch
        self._send(src, BeginQuorumEpochResponse(error, self._leader_or_none(), self.epoch))

    def _on_begin_quorum_epoch_response(self, src: int, response: BeginQuorumEpochResponse) -> None:
        self._observe(response.leader_epoch, response.leader_id)
        role = self._quorum.role
        if (
            isinstance(role, LeaderState)
            and response.leader_epoch == role.epoch
            and response.error_code == NONE
            and src in role.voters
        ):
            role.voters[src].acked_epoch = True

    def _on_end_quorum_epoch(self, src: int, request: EndQuorumEpochRequest) -> None:
        """The leader of request.leader_epoch ends its epoch (it resigns, or the supervisor
        reports its death on its behalf). Accepted when it names the leader this node follows
        in that epoch (or an epoch it learns from it); the election then starts after this
        node's place in preferred_successors (see _end_epoch_backoff)."""
        if request.leader_epoch < self.epoch:
            self._send(src, EndQuorumEpochResponse(
                ErrorCode.fenced_leader_epoch, self._leader_or_none(), self.epoch))
            return
        self._observe(request.leader_epoch, request.leader_id)
        role = self._quorum.role
        leader = request.leader_id
        if self.is_voter and role.epoch == request.leader_epoch and leader != self.node_id:
            deadline = self._now + self._end_epoch_backoff(request.preferred_successors)
            if isinstance(role, FollowerState) and role.leader_id == leader:
                self._abort_download()
                self._quorum.transition(UnattachedState(
                    role.epoch, role.voted_for, deadline, ended_leader=leader))
            elif isinstance(role, UnattachedState):
                role.election_deadline = min(role.election_deadline, deadline)
                role.ended_leader = leader
            elif isinstance(role, ProspectiveState) and role.leader_hint in (None, leader):
                role.leader_hint, role.leader_ended = leader, True
                role.election_deadline = min(role.election_deadline, deadline)
        self._send(src, EndQuorumEpochResponse(NONE, self._leader_or_none(), self.epoch))

    def _on_end_quorum_epoch_response(self, src: int, response: EndQuorumEpochResponse) -> None:
        role = self._quorum.role
        if isinstance(role, ResignedState) and response.leader_epoch == role.epoch:
            role.unacked.discard(src)
        self._observe(response.leader_epoch, response.leader_id)

    # ------------------------------------------------------------------ fetch (leader side)

    def _on_fetch_request(self, src: int, request: FetchRequest) -> None:
        role = self._quorum.role
        if not isinstance(role, LeaderState):
            self._reply_fetch(src, request, ErrorCode.not_leader_or_follower)
            return
        if request.current_leader_epoch != role.epoch:
            error = (ErrorCode.fenced_leader_epoch if request.current_leader_epoch < role.epoch
                     else ErrorCode.unknown_leader_epoch)
            self._reply_fetch(src, request, error)
            return
        if src in role.voters:
            replica = role.voters[src]
        else:
            replica = role.observers.setdefault(src, ReplicaState(src))
        replica.last_fetch_ms = self._now
        replica.acked_epoch = True
        role.parked.pop(src, None)
        if self._needs_snapshot(request.fetch_offset, request.last_fetched_epoch):
            self._reply_snapshot(src, request)
            return
        if request.fetch_offset > 0 or request.last_fetched_epoch > 0:
            epoch, end = self.log.end_offset_for_epoch(request.last_fetched_epoch)
            if epoch != request.last_fetched_epoch or end < request.fetch_offset:
                self._reply_fetch(src, request, diverging=(epoch, end))
                return
        self._record_fetch(replica, request.fetch_offset)
        advanced = src in role.voters and self._advance_high_watermark(role)
        records = self._read(request.fetch_offset)
        stale_hw = 0 <= request.high_watermark < self._hw  # KIP-1166: tell it the new HW now
        if records or advanced or stale_hw or request.max_wait_ms <= 0:
            self._reply_fetch(src, request, records=records)
        else:
            until = self._now + min(request.max_wait_ms, self.fetch_max_wait_ms)
            role.parked[src] = (request, until)

    def _record_fetch(self, replica: ReplicaState, fetch_offset: int) -> None:
        """A valid Fetch (its position is in our log) from replica at fetch_offset: its
        progress, and when it was last caught up, by Kafka's rule
        (LeaderState.ReplicaState.updateFollowerState): caught up now if it reached our log
        end offset; else caught up as of its previous fetch if it reached the log end offset
        we had then."""
        leader_end = self.log.end_offset()
        if fetch_offset >= leader_end:
            replica.last_caught_up_ms = max(replica.last_caught_up_ms, self._now)
        elif replica.last_fetch_leader_end > 0 and fetch_offset >= replica.last_fetch_leader_end:
            replica.last_caught_up_ms = max(replica.last_caught_up_ms,
                                            replica.last_valid_fetch_ms)
        replica.last_fetch_leader_end = leader_end
        replica.last_valid_fetch_ms = max(replica.last_valid_fetch_ms, self._now)
        replica.end_offset = fetch_offset

    def _needs_snapshot(self, fetch_offset: int, last_fetched_epoch: int) -> bool:
        """KIP-630 (Kafka's validateOffsetAndEpoch): the fetcher's position is not in our log
        any more (below the log start, or an epoch older than the snapshot at the start)."""
        start = self.log.start_offset()
        if start == 0 or self.snapshots is None or self.snapshots.latest() is None:
            return False
        base_epoch = self.log.epoch_at(start - 1)
        return (fetch_offset < start
                or (fetch_offset == start and last_fetched_epoch != base_epoch)
                or last_fetched_epoch < (base_epoch or 0))

    def _reply_snapshot(self, dest: int, request: FetchRequest) -> None:
        assert self.snapshots is not None
        latest = self.snapshots.latest()
        assert latest is not None
        self._send(dest, FetchResponse(
            NONE, self._leader_or_none(), self.epoch, self._hw, request.fetch_offset,
            request.last_fetched_epoch, snapshot_end_offset=latest.end_offset,
            snapshot_epoch=latest.epoch))

    def _answer_fetch(self, dest: int, request: FetchRequest) -> None:
        """Answer a parked fetch: entries, or the snapshot if the log start moved past it."""
        if self._needs_snapshot(request.fetch_offset, request.last_fetched_epoch):
            self._reply_snapshot(dest, request)
        else:
            self._reply_fetch(dest, request, records=self._read(request.fetch_offset))

    def _read(self, offset: int) -> tuple[LogEntry, ...]:
        return tuple(self.log.read(offset, self.max_fetch_entries))

    def _on_fetch_snapshot_request(self, src: int, request: FetchSnapshotRequest) -> None:
        role = self._quorum.role

        def reply(error: ErrorCode, size: int = -1, data: bytes = b"") -> None:
            self._send(src, FetchSnapshotResponse(
                error, self._leader_or_none(), self.epoch, request.snapshot_end_offset,
                request.snapshot_epoch, size, request.position, data))

        if not isinstance(role, LeaderState):
            reply(ErrorCode.not_leader_or_follower)
            return
        if request.current_leader_epoch != role.epoch:
            reply(ErrorCode.fenced_leader_epoch if request.current_leader_epoch < role.epoch
                  else ErrorCode.unknown_leader_epoch)
            return
        replica = role.voters.get(src) or role.observers.setdefault(src, ReplicaState(src))
        replica.last_fetch_ms = self._now
        replica.acked_epoch = True
        snapshot_id = SnapshotId(request.snapshot_end_offset, request.snapshot_epoch)
        size = self.snapshots.size(snapshot_id) if self.snapshots is not None else None
        if size is None:
            reply(ErrorCode.snapshot_not_found)
            return
        if not 0 <= request.position < size:
            reply(ErrorCode.position_out_of_range, size)
            return
        assert self.snapshots is not None
        chunk = self.snapshots.read_chunk(snapshot_id, request.position,
                                          max(1, min(request.max_bytes, self.snapshot_chunk_bytes)))
        self.stats["snapshot_chunks_sent"] += 1
        self._serving[snapshot_id] = self._now
        reply(NONE, size, chunk)

    def _reply_fetch(
        self,
        dest: int,
        request: FetchRequest,
        error: ErrorCode = NONE,
        records: tuple[LogEntry, ...] = (),
        diverging: tuple[int, int] = (-1, -1),
    ) -> None:
        self._send(dest, FetchResponse(
            error, self._leader_or_none(), self.epoch, self._hw,
            request.fetch_offset, request.last_fetched_epoch, records, *diverging,
        ))

    def _advance_high_watermark(self, role: LeaderState) -> bool:
        offsets = sorted((r.end_offset for r in role.voters.values()), reverse=True)
        candidate = offsets[self._majority - 1]
        if candidate > role.epoch_start_offset and candidate > self._hw:
            self._hw = candidate
            self._complete_parked(role)
            return True
        return False

    def _complete_parked(self, role: LeaderState) -> None:
        parked, role.parked = role.parked, {}
        for src, (request, _until) in parked.items():
            self._answer_fetch(src, request)

    # ------------------------------------------------------------------ fetch (follower side)

    def _fetch_request(self, epoch: int, max_wait_ms: int) -> FetchRequest:
        return FetchRequest(
            self.node_id, epoch, self.log.end_offset(), self.log.last_epoch(),
            max_wait_ms, self._hw,
        )

    def _send_fetch(self, role: FollowerState) -> None:
        role.inflight_since = self._now
        self._send(role.leader_id, self._fetch_request(role.epoch, self.fetch_max_wait_ms))

    def _send_next(self, role: FollowerState) -> None:
        """(Re)send what we wait for: the next snapshot chunk while downloading, else Fetch."""
        if self._download is None:
            self._send_fetch(role)
            return
        role.inflight_since = self._now
        snapshot_id = self._download.snapshot_id
        self._send(role.leader_id, FetchSnapshotRequest(
            self.node_id, role.epoch, snapshot_id.end_offset, snapshot_id.epoch,
            self._download.size, self.snapshot_chunk_bytes))

    def _on_fetch_response(self, src: int, response: FetchResponse) -> None:
        self._observe(response.leader_epoch, response.leader_id)
        role = self._quorum.role
        if isinstance(role, UnattachedState) and not self.is_voter:
            role.discover_at = min(role.discover_at, self._now + self.retry_backoff_ms)
            return
        if (
            not isinstance(role, FollowerState)
            or src != role.leader_id
            or response.leader_epoch != role.epoch
            or response.fetch_offset != self.log.end_offset()
            or response.last_fetched_epoch != self.log.last_epoch()
            or self._download is not None
        ):
            return  # not an answer to our current request: stale, duplicated or misdirected
        role.inflight_since = None
        if response.error_code != NONE:
            role.next_fetch_at = self._now + self.retry_backoff_ms
            return
        role.fetch_deadline = self._now + self.fetch_timeout_ms
        role.heard_ms = self._now
        if response.snapshot_end_offset >= 0 and response.snapshot_epoch >= 0:
            if self.snapshots is None:
                role.next_fetch_at = self._now + self.retry_backoff_ms
                return
            self._download = self.snapshots.begin_download(
                SnapshotId(response.snapshot_end_offset, response.snapshot_epoch))
            self._send_next(role)
            return
        if response.diverging_epoch >= 0:
            self._truncate_to(response.diverging_epoch, response.diverging_end_offset)
        else:
            if response.records:
                self.log.append(response.records)
            high_watermark = min(response.high_watermark, self.log.end_offset())
            if high_watermark > self._hw:
                self._hw = high_watermark
        self._send_fetch(role)

    def _on_fetch_snapshot_response(self, src: int, response: FetchSnapshotResponse) -> None:
        self._observe(response.leader_epoch, response.leader_id)
        role = self._quorum.role
        download = self._download
        if (
            not isinstance(role, FollowerState)
            or download is None
            or src != role.leader_id
            or response.leader_epoch != role.epoch
            or (response.snapshot_end_offset, response.snapshot_epoch) != download.snapshot_id
            or response.position != download.size
        ):
            return  # stale, duplicated or misdirected
        role.inflight_since = None
        if response.error_code != NONE:
            # the snapshot was replaced by a newer one (or we asked for a bad position):
            # start over from a Fetch, which names the leader's latest snapshot
            self._abort_download()
            role.next_fetch_at = self._now + self.retry_backoff_ms
            return
        role.fetch_deadline = self._now + self.fetch_timeout_ms
        role.heard_ms = self._now
        if response.unaligned_records:
            download.append(response.unaligned_records)
        if download.size < response.size:
            if not response.unaligned_records:
                role.next_fetch_at = self._now + self.retry_backoff_ms
                return
            self._send_next(role)
            return
        self._download = None
        if download.size != response.size or not download.complete():
            download.abort()
            role.next_fetch_at = self._now + self.retry_backoff_ms
            return
        self._install_snapshot(download.snapshot_id)
        self._send_fetch(role)

    def _install_snapshot(self, snapshot_id: SnapshotId) -> None:
        """Kafka's truncateToLatestSnapshot: the log restarts at the snapshot's end offset and
        the state machine reloads from the snapshot."""
        end, epoch = snapshot_id
        if end < self._hw:
            raise AssertionError(
                f"node {self.node_id}: snapshot {snapshot_id} below high watermark {self._hw}")
        self.log.truncate_fully_and_start_at(end, epoch)
        self._applied = self._hw = end
        self._snapshot_to_load = snapshot_id
        self.stats["snapshots_fetched"] += 1

    def _truncate_to(self, epoch: int, end_offset: int) -> None:
        """Kafka's truncateToEndOffset: cut at the leader's end of `epoch` or our own."""
        if epoch == 0:
            offset = min(end_offset, self.log.end_offset())
        else:
            local_epoch, local_end = self.log.end_offset_for_epoch(epoch)
            if local_epoch == epoch:
                offset = min(local_end, end_offset)
            else:
                offset = min(local_end, self.log.end_offset())
        if offset < self._hw:
            raise AssertionError(
                f"node {self.node_id}: truncating to {offset} below high watermark {self._hw}")
        self.log.truncate(offset)


_HANDLERS = {
    VoteRequest: RaftNode._on_vote_request,
    VoteResponse: RaftNode._on_vote_response,
    BeginQuorumEpochRequest: RaftNode._on_begin_quorum_epoch,
    BeginQuorumEpochResponse: RaftNode._on_begin_quorum_epoch_response,
    EndQuorumEpochRequest: RaftNode._on_end_quorum_epoch,
    EndQuorumEpochResponse: RaftNode._on_end_quorum_epoch_response,
    FetchRequest: RaftNode._on_fetch_request,
    FetchResponse: RaftNode._on_fetch_response,
    FetchSnapshotRequest: RaftNode._on_fetch_snapshot_request,
    FetchSnapshotResponse: RaftNode._on_fetch_snapshot_response,
}
