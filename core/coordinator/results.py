"""Plain results of the GroupCoordinator's operations; handlers turn them into kio responses."""

from __future__ import annotations

from dataclasses import dataclass, field

from kio.schema.errors import ErrorCode

NONE = ErrorCode.none


@dataclass(frozen=True, slots=True)
class JoinResult:
    """What a JoinGroup answers (Kafka's JoinGroupResult)."""

    error: ErrorCode
    member_id: str = ""
    generation_id: int = -1
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader_id: str = ""
    skip_assignment: bool = False
    #: (member id, group instance id, metadata), only for the leader
    members: tuple[tuple[str, str | None, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class SyncResult:
    error: ErrorCode
    protocol_type: str | None = None
    protocol_name: str | None = None
    assignment: bytes = b""


@dataclass(frozen=True, slots=True)
class LeaveResult:
    error: ErrorCode
    #: (member id, group instance id, error) per leaving member
    members: tuple[tuple[str, str | None, ErrorCode], ...] = ()


@dataclass(frozen=True, slots=True)
class PartitionOffset:
    """One partition of an OffsetFetch answer (offset -1 when nothing is committed)."""

    topic: str
    partition: int
    offset: int = -1
    leader_epoch: int = -1
    metadata: str | None = ""
    error: ErrorCode = NONE


@dataclass(frozen=True, slots=True)
class OffsetFetchResult:
    error: ErrorCode
    partitions: tuple[PartitionOffset, ...] = ()


@dataclass(frozen=True, slots=True)
class PartitionResult:
    """A per-partition outcome (OffsetCommit, OffsetDelete)."""

    topic: str
    partition: int
    error: ErrorCode = NONE


@dataclass(frozen=True, slots=True)
class OffsetDeleteResult:
    error: ErrorCode
    partitions: tuple[PartitionResult, ...] = ()


@dataclass(frozen=True, slots=True)
class MemberDescription:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    metadata: bytes
    assignment: bytes


@dataclass(frozen=True, slots=True)
class GroupDescription:
    """DescribeGroups' view of one group (Kafka's GroupSummary)."""

    group_id: str
    error: ErrorCode = NONE
    state: str = "Dead"
    protocol_type: str = ""
    protocol: str = ""
    members: tuple[MemberDescription, ...] = ()


@dataclass(frozen=True, slots=True)
class ListedGroup:
    group_id: str
    protocol_type: str
    state: str
    group_type: str = "classic"


@dataclass(frozen=True, slots=True)
class MemberView:
    """A member as the console shows it: the assignment decoded as topic -> partitions."""

    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    assignment: dict[str, list[int]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class GroupView:
    """A group as the console shows it; lag is end offset minus committed offset."""

    group_id: str
    state: str
    protocol_type: str
    protocol: str
    generation_id: int
    leader_id: str | None
    members: tuple[MemberView, ...]
    #: (topic, partition) -> committed offset
    offsets: dict[tuple[str, int], int]
