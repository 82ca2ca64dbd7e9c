"""A classic consumer group: its members, generation, protocol and state machine (Kafka's
GroupMetadata / MemberMetadata).

States and the transitions Kafka allows:

    Empty ------------------> PreparingRebalance <--------+
      ^                        |            ^             |
      |  (no members left)     v            |             |
      +-------------------- (join done) -> CompletingRebalance -> Stable
    Dead: from any state, when the group is deleted, expires or is unloaded.

A group holds no I/O: the GroupCoordinator drives it and persists it.
"""

from __future__ import annotations

import asyncio
import enum
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from core.common.types import TopicPartition
from core.coordinator.consumer_protocol import PROTOCOL_TYPE, subscribed_topics
from core.coordinator.offsets import CommittedOffset


class GroupState(enum.Enum):
    """Kafka's group states; `.value` is the name clients see (DescribeGroups, ListGroups)."""

    EMPTY = "Empty"
    PREPARING_REBALANCE = "PreparingRebalance"
    COMPLETING_REBALANCE = "CompletingRebalance"
    STABLE = "Stable"
    DEAD = "Dead"


_VALID_PREVIOUS: dict[GroupState, frozenset[GroupState]] = {
    GroupState.EMPTY: frozenset({GroupState.PREPARING_REBALANCE}),
    GroupState.PREPARING_REBALANCE: frozenset(
        {GroupState.STABLE, GroupState.COMPLETING_REBALANCE, GroupState.EMPTY}),
    GroupState.COMPLETING_REBALANCE: frozenset({GroupState.PREPARING_REBALANCE}),
    GroupState.STABLE: frozenset({GroupState.COMPLETING_REBALANCE}),
    GroupState.DEAD: frozenset(GroupState),
}


@dataclass(slots=True)
class Member:
    """One member of a group (Kafka's MemberMetadata)."""

    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    rebalance_timeout_ms: int
    session_timeout_ms: int
    protocol_type: str
    #: (protocol name, metadata) in the member's order of preference
    protocols: list[tuple[str, bytes]]
    assignment: bytes = b""
    #: resolves with the JoinGroup result while the member waits for a rebalance to complete
    join_future: asyncio.Future[Any] | None = None
    #: resolves with the SyncGroup result while a member waits for the leader's assignment
    sync_future: asyncio.Future[Any] | None = None
    last_heartbeat_ms: int = 0
    is_new: bool = False

    @property
    def is_static(self) -> bool:
        return self.group_instance_id is not None

    @property
    def awaiting_join(self) -> bool:
        return self.join_future is not None and not self.join_future.done()

    @property
    def awaiting_sync(self) -> bool:
        return self.sync_future is not None and not self.sync_future.done()

    def metadata(self, protocol: str) -> bytes:
        """This member's metadata for `protocol` (empty if it does not support it)."""
        for name, data in self.protocols:
            if name == protocol:
                return data
        return b""

    def matches(self, protocols: list[tuple[str, bytes]]) -> bool:
        """True when a rejoin carries exactly the protocols and metadata we already have."""
        return protocols == self.protocols

    def protocol_names(self) -> list[str]:
        return [name for name, _ in self.protocols]


@dataclass(eq=False, slots=True)
class InFlightCommit:
    """An offset commit being written: partitions deleted meanwhile are noted in `deleted`,
    and the commit's offsets for them are not applied when the append completes (Kafka drops
    them from pendingOffsetCommits)."""

    partitions: frozenset[TopicPartition]
    deleted: set[TopicPartition] = field(default_factory=set)


@dataclass(slots=True)
class Group:
    """A consumer group and its committed offsets."""

    group_id: str
    partition: int
    state: GroupState = GroupState.EMPTY
    protocol_type: str | None = None
    protocol_name: str | None = None
    generation_id: int = 0
    leader_id: str | None = None
    members: dict[str, Member] = field(default_factory=dict)
    #: member ids handed out with MEMBER_ID_REQUIRED that have not joined with them yet
    pending_members: set[str] = field(default_factory=set)
    #: group.instance.id -> member id
    static_members: dict[str, str] = field(default_factory=dict)
    #: members that got their JoinGroup response and have not sent SyncGroup yet
    pending_sync: set[str] = field(default_factory=set)
    offsets: dict[TopicPartition, CommittedOffset] = field(default_factory=dict)
    #: commits whose append is in flight, per partition
    pending_commits: Counter[TopicPartition] = field(default_factory=Counter)
    #: the commits whose append is in flight (what a partition deletion must reach)
    commits_in_flight: list[InFlightCommit] = field(default_factory=list)
    #: wall-clock ms of the last state change (the base of offset retention once Empty)
    state_timestamp_ms: int | None = None
    #: set when a member joins during the initial (delayed) rebalance of an Empty group
    new_member_added: bool = False
    _protocol_votes: Counter[str] = field(default_factory=Counter)

    # ------------------------------------------------------------------ state

    def is_(self, state: GroupState) -> bool:
        return self.state is state

    def transition_to(self, state: GroupState, now_ms: int | None = None) -> None:
        """Move to `state`, checking Kafka's allowed previous states."""
        if self.state not in _VALID_PREVIOUS[state]:
            raise RuntimeError(
                f"group {self.group_id}: illegal transition {self.state.value} -> {state.value}")
        self.state = state
        self.state_timestamp_ms = now_ms

    def can_rebalance(self) -> bool:
        return self.state in (GroupState.STABLE, GroupState.COMPLETING_REBALANCE,
                              GroupState.EMPTY)

    # ------------------------------------------------------------------ members

    def has(self, member_id: str) -> bool:
        return member_id in self.members

    def get(self, member_id: str) -> Member:
        return self.members[member_id]

    def is_leader(self, member_id: str) -> bool:
        return self.leader_id == member_id

    def add(self, member: Member) -> None:
        """Add a member; the first one fixes the protocol type and leads."""
        if not self.members:
            self.protocol_type = member.protocol_type
        self.members[member.member_id] = member
        self._protocol_votes.update(member.protocol_names())
        if self.leader_id is None:
            self.leader_id = member.member_id
        if member.group_instance_id is not None:
            self.static_members[member.group_instance_id] = member.member_id
        self.pending_members.discard(member.member_id)

    def remove(self, member_id: str) -> Member | None:
        """Remove a member (electing another leader if it led); returns it."""
        member = self.members.pop(member_id, None)
        if member is None:
            return None
        self._protocol_votes.subtract(member.protocol_names())
        self._protocol_votes += Counter()  # drop zero counts
        if member.group_instance_id is not None and \
                self.static_members.get(member.group_instance_id) == member_id:
            del self.static_members[member.group_instance_id]
        self.pending_sync.discard(member_id)
        if self.leader_id == member_id:
            self.leader_id = next(iter(self.members), None)
        return member

    def update_member(self, member: Member, protocols: list[tuple[str, bytes]],
                      rebalance_timeout_ms: int, session_timeout_ms: int) -> None:
        self._protocol_votes.subtract(member.protocol_names())
        member.protocols = protocols
        self._protocol_votes.update(member.protocol_names())
        self._protocol_votes += Counter()
        member.rebalance_timeout_ms = rebalance_timeout_ms
        member.session_timeout_ms = session_timeout_ms

    def replace_static_member(self, instance_id: str, old_id: str, new_id: str) -> Member:
        """Give a static member a new member id (its old incarnation is fenced)."""
        member = self.members.pop(old_id)
        member.member_id = new_id
        self.members[new_id] = member
        if self.leader_id == old_id:
            self.leader_id = new_id
        if old_id in self.pending_sync:
            self.pending_sync.discard(old_id)
            self.pending_sync.add(new_id)
        self.static_members[instance_id] = new_id
        return member

    def static_member_id(self, instance_id: str | None) -> str | None:
        return None if instance_id is None else self.static_members.get(instance_id)

    def all_members_joined(self) -> bool:
        """Every member (and no pending one) waits in JoinGroup: the join phase can end."""
        return not self.pending_members and all(m.awaiting_join for m in self.members.values())

    def not_yet_rejoined(self) -> list[Member]:
        return [m for m in self.members.values() if not m.awaiting_join]

    def max_rebalance_timeout_ms(self) -> int:
        return max((m.rebalance_timeout_ms for m in self.members.values()), default=0)

    def maybe_elect_new_joined_leader(self) -> bool:
        """Make sure the leader is a member that rejoined; False if nobody rejoined."""
        if self.leader_id is not None and self.leader_id in self.members and \
                self.members[self.leader_id].awaiting_join:
            return True
        for member in self.members.values():
            if member.awaiting_join:
                self.leader_id = member.member_id
                return True
        return False

    # ------------------------------------------------------------------ protocols

    def supports_protocols(self, protocol_type: str, protocols: list[str]) -> bool:
        """Can a member with these protocols join? (Kafka's supportsProtocols)."""
        if not self.members:
            return bool(protocol_type) and bool(protocols)
        n = len(self.members)
        return protocol_type == self.protocol_type and \
            any(self._protocol_votes.get(p, 0) == n for p in protocols)

    def candidate_protocols(self) -> list[str]:
        n = len(self.members)
        return [p for p, count in self._protocol_votes.items() if count == n]

    def select_protocol(self) -> str:
        """The protocol all members support that most members prefer (Kafka's vote)."""
        candidates = set(self.candidate_protocols())
        if not candidates:
            raise RuntimeError(f"group {self.group_id}: no protocol supported by all members")
        votes: Counter[str] = Counter()
        first_seen: dict[str, int] = {}
        for member in self.members.values():
            for name in member.protocol_names():
                if name in candidates:
                    votes[name] += 1
                    first_seen.setdefault(name, len(first_seen))
                    break
        return max(votes, key=lambda p: (votes[p], -first_seen[p]))

    def init_next_generation(self, now_ms: int) -> None:
        """End the join phase: bump the generation and pick the protocol."""
        self.generation_id += 1
        self.pending_sync.clear()
        if self.members:
            self.protocol_name = self.select_protocol()
            self.transition_to(GroupState.COMPLETING_REBALANCE, now_ms)
        else:
            self.protocol_name = None
            self.transition_to(GroupState.EMPTY, now_ms)

    def current_member_metadata(self) -> list[tuple[str, str | None, bytes]]:
        """(member id, instance id, metadata of the selected protocol), for the leader."""
        protocol = self.protocol_name or ""
        return [(m.member_id, m.group_instance_id, m.metadata(protocol))
                for m in self.members.values()]

    def is_consumer_group(self) -> bool:
        return self.protocol_type == PROTOCOL_TYPE

    def subscribed_topics(self) -> set[str] | None:
        """Topics a consumer group's members subscribe to; None when unknown."""
        if not self.is_consumer_group() or self.protocol_name is None:
            return None
        topics: set[str] = set()
        for member in self.members.values():
            member_topics = subscribed_topics(member.metadata(self.protocol_name))
            if member_topics is None:
                return None
            topics |= member_topics
        return topics

    def is_subscribed_to(self, topic: str) -> bool:
        topics = self.subscribed_topics()
        return True if topics is None else topic in topics
