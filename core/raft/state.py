"""One class per role, and QuorumState, which holds the current role and persists it.

Roles (as in Kafka's KafkaRaftClient): Unattached (an epoch, maybe a vote, no known
leader), Follower (fetching from a known leader), Prospective (KIP-996: asking for pre-votes
without bumping the epoch), Candidate (asking for votes), Leader, Resigned (a leader that
stepped down and waits for the next election). Every role knows its
epoch, the leader it knows of and whom this node voted for in that epoch; QuorumState writes
those three to the QuorumStore whenever they change, before the node acts on them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.raft.messages import FetchRequest
from core.raft.store import ElectionState, QuorumStore


@dataclass(slots=True)
class UnattachedState:
    """We know the epoch but not its leader; voters start an election at election_deadline."""

    epoch: int
    voted_for: int | None
    election_deadline: int
    discover_at: int = 0  # observers: when to ask a random voter who leads
    #: the leader of this epoch that ended it (EndQuorumEpoch): never followed again
    ended_leader: int | None = None

    @property
    def leader_id(self) -> int | None:
        return None


@dataclass(slots=True)
class ProspectiveState:
    """KIP-996 pre-vote: asks the voters whether they would vote for it in epoch + 1, without
    changing (or persisting) anything but that it no longer follows a leader. A majority of
    granted pre-votes makes it a candidate; otherwise it retries at election_deadline."""

    epoch: int
    node_id: int
    voted_for: int | None
    election_deadline: int
    granted: set[int] = field(default_factory=set)
    rejected: set[int] = field(default_factory=set)
    last_sent: int = 0
    retries: int = 1  # failed elections so far (the exponential backoff's exponent)
    #: the leader it followed before (Kafka's ProspectiveState keeps it): hearing of it again
    #: does not make it follow, so two voters whose leader died do not talk each other back
    #: into following it; at election_deadline it goes back to fetching from it, unless...
    leader_hint: int | None = None
    leader_ended: bool = False  # ...EndQuorumEpoch ended that leader's epoch

    @property
    def leader_id(self) -> int | None:
        return None


@dataclass(slots=True)
class FollowerState:
    """Fetching from leader_id; without a good response by fetch_deadline we move on."""

    epoch: int
    leader_id: int
    voted_for: int | None
    fetch_deadline: int
    inflight_since: int | None = None  # when the outstanding Fetch was sent
    next_fetch_at: int = 0  # backoff after an error response
    heard_ms: int = -1  # when the leader last answered (a good fetch, BeginQuorumEpoch)


@dataclass(slots=True)
class CandidateState:
    """Voted for itself in epoch; a majority of granted votes makes it leader."""

    epoch: int
    node_id: int
    election_deadline: int
    granted: set[int] = field(default_factory=set)
    rejected: set[int] = field(default_factory=set)
    last_sent: int = 0
    retries: int = 1  # elections this node lost in a row, this one included
    #: lost (majority rejected, or election_deadline passed): back off until then
    backoff_until: int | None = None

    @property
    def voted_for(self) -> int:
        return self.node_id

    @property
    def leader_id(self) -> int | None:
        return None


@dataclass(slots=True)
class ReplicaState:
    """What the leader knows of one replica: its matched log end offset, when it last
    fetched and when it was last caught up (Kafka's LeaderState.ReplicaState, KIP-836).

    Times are the node's clock (monotonic in the brokers; the sans-IO node never reads a
    wall clock): status() converts them to wall-clock ms for DescribeQuorum. -1: unknown."""

    node_id: int
    end_offset: int = -1
    #: any Fetch or FetchSnapshot in this epoch (check quorum counts these)
    last_fetch_ms: int = -1
    acked_epoch: bool = False  # fetched (or acknowledged BeginQuorumEpoch) in this epoch
    #: the last time its fetch offset reached the leader's log end offset as of a fetch
    last_caught_up_ms: int = -1
    #: the leader's log end offset when the last valid Fetch (one that moved end_offset)
    #: arrived, and when that was: a later fetch reaching that offset proves the replica was
    #: caught up at that time (Kafka's lastFetchLeaderLogEndOffset / lastFetchTimestamp)
    last_fetch_leader_end: int = -1
    last_valid_fetch_ms: int = -1


@dataclass(slots=True)
class LeaderState:
    """Leader of epoch; entries from epoch_start_offset on are this epoch's."""

    epoch: int
    node_id: int
    epoch_start_offset: int
    started_ms: int
    voters: dict[int, ReplicaState]
    observers: dict[int, ReplicaState] = field(default_factory=dict)
    parked: dict[int, tuple[FetchRequest, int]] = field(default_factory=dict)  # id -> (req, until)
    last_begin_sent: int = 0

    @property
    def voted_for(self) -> int:
        return self.node_id

    @property
    def leader_id(self) -> int:
        return self.node_id


@dataclass(slots=True)
class ResignedState:
    """A leader that stepped down in epoch: no appends, an election after election_deadline."""

    epoch: int
    node_id: int
    election_deadline: int
    preferred_successors: tuple[int, ...] = ()
    unacked: set[int] = field(default_factory=set)
    last_sent: int = 0

    @property
    def voted_for(self) -> int:
        return self.node_id

    @property
    def leader_id(self) -> int:
        return self.node_id


Role = (UnattachedState | FollowerState | ProspectiveState | CandidateState | LeaderState
        | ResignedState)


class QuorumState:
    """The current role, persisted (epoch, voted_for, leader_id) through a QuorumStore."""

    def __init__(self, store: QuorumStore) -> None:
        self.store = store
        self._persisted = store.read()
        self.role: Role = UnattachedState(self._persisted.epoch, self._persisted.voted_for, 0)

    @property
    def persisted(self) -> ElectionState:
        return self._persisted

    @property
    def epoch(self) -> int:
        return self.role.epoch

    @property
    def leader_id(self) -> int | None:
        return self.role.leader_id

    @property
    def voted_for(self) -> int | None:
        return self.role.voted_for

    def transition(self, role: Role) -> None:
        """Switch to role, persisting first; an epoch never goes backwards."""
        if role.epoch < self._persisted.epoch:
            raise AssertionError(f"epoch {role.epoch} < persisted {self._persisted.epoch}")
        election = ElectionState(role.epoch, role.voted_for, role.leader_id)
        if election != self._persisted:
            self.store.write(election)
            self._persisted = election
        self.role = role
