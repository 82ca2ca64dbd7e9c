"""Raft RPCs as plain frozen dataclasses, mirroring Kafka's KIP-595 messages.

Field names follow kio's schemas (kio.schema.vote / begin_quorum_epoch / end_quorum_epoch /
fetch) minus the topic/partition nesting: the metadata log is the single partition
`__cluster_metadata-0`, which core/raft/wire.py adds when it puts these on the wire.
`NO_LEADER` (-1) stands for Kafka's "unknown leader".

FetchResponse additionally echoes the request's fetch_offset and last_fetched_epoch (a wire
adapter fills them from the request it matched by correlation id), so that a follower can
tell a stale or duplicated response from the answer to its current request.
"""

from __future__ import annotations

from dataclasses import dataclass

from kio.schema.errors import ErrorCode

from core.raft.log import LogEntry

NO_LEADER = -1


@dataclass(frozen=True, slots=True)
class VoteRequest:
    """A candidate asks for a vote in replica_epoch (kio: VoteRequest.PartitionData).

    pre_vote (KIP-996, Vote v2): a prospective node asks whether the voter *would* vote for it
    in replica_epoch (its epoch + 1); nothing changes or is persisted on the voter.
    """

    replica_epoch: int
    replica_id: int
    last_offset_epoch: int
    last_offset: int  # the candidate's log end offset
    pre_vote: bool = False


@dataclass(frozen=True, slots=True)
class VoteResponse:
    error_code: ErrorCode
    leader_id: int
    leader_epoch: int
    vote_granted: bool


@dataclass(frozen=True, slots=True)
class BeginQuorumEpochRequest:
    """A new leader announces itself to the voters."""

    leader_id: int
    leader_epoch: int


@dataclass(frozen=True, slots=True)
class BeginQuorumEpochResponse:
    error_code: ErrorCode
    leader_id: int
    leader_epoch: int


@dataclass(frozen=True, slots=True)
class EndQuorumEpochRequest:
    """A leader resigns gracefully; preferred_successors are voters by log end offset."""

    leader_id: int
    leader_epoch: int
    preferred_successors: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class EndQuorumEpochResponse:
    error_code: ErrorCode
    leader_id: int
    leader_epoch: int


@dataclass(frozen=True, slots=True)
class FetchRequest:
    """A follower (or observer) pulls from fetch_offset; the leader may hold it max_wait_ms."""

    replica_id: int
    current_leader_epoch: int
    fetch_offset: int
    last_fetched_epoch: int
    max_wait_ms: int = 0
    high_watermark: int = -1  # the fetcher's high watermark (KIP-1166); -1 unknown


@dataclass(frozen=True, slots=True)
class FetchResponse:
    """Records from fetch_offset, or the divergence point the follower must truncate to."""

    error_code: ErrorCode
    leader_id: int  # kio: current_leader.leader_id
    leader_epoch: int  # kio: current_leader.leader_epoch
    high_watermark: int
    fetch_offset: int  # echoed from the request
    last_fetched_epoch: int  # echoed from the request
    records: tuple[LogEntry, ...] = ()
    diverging_epoch: int = -1  # kio: diverging_epoch.epoch
    diverging_end_offset: int = -1  # kio: diverging_epoch.end_offset
    #: KIP-630: fetch_offset is below the leader's log start; fetch this snapshot instead
    snapshot_end_offset: int = -1  # kio: snapshot_id.end_offset
    snapshot_epoch: int = -1  # kio: snapshot_id.epoch


@dataclass(frozen=True, slots=True)
class FetchSnapshotRequest:
    """A follower downloads the leader's snapshot from byte `position` (kio: FetchSnapshot)."""

    replica_id: int
    current_leader_epoch: int
    snapshot_end_offset: int  # kio: snapshot_id.end_offset
    snapshot_epoch: int  # kio: snapshot_id.epoch
    position: int
    max_bytes: int


@dataclass(frozen=True, slots=True)
class FetchSnapshotResponse:
    """A chunk of the snapshot: `unaligned_records` are its bytes from `position` on."""

    error_code: ErrorCode
    leader_id: int  # kio: current_leader.leader_id
    leader_epoch: int  # kio: current_leader.leader_epoch
    snapshot_end_offset: int
    snapshot_epoch: int
    size: int  # the snapshot's total size in bytes
    position: int
    unaligned_records: bytes = b""


RaftMessage = (
    VoteRequest
    | VoteResponse
    | BeginQuorumEpochRequest
    | BeginQuorumEpochResponse
    | EndQuorumEpochRequest
    | EndQuorumEpochResponse
    | FetchRequest
    | FetchResponse
    | FetchSnapshotRequest
    | FetchSnapshotResponse
)


@dataclass(frozen=True, slots=True)
class Outbound:
    """A message the node wants delivered to dest (the caller does the I/O)."""

    dest: int
    message: RaftMessage
