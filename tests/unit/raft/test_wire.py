"""core.raft messages round-trip through kio entities and kio's real serializers."""

from __future__ import annotations

import io

import pytest
from kio.schema.errors import ErrorCode
from kio.serial import entity_reader, entity_writer

from core.raft.log import LogEntry
from core.raft.messages import (
    BeginQuorumEpochRequest,
    BeginQuorumEpochResponse,
    EndQuorumEpochRequest,
    EndQuorumEpochResponse,
    FetchRequest,
    FetchResponse,
    FetchSnapshotRequest,
    FetchSnapshotResponse,
    VoteRequest,
    VoteResponse,
)
from core.raft.wire import from_kio, to_kio

FETCH = FetchRequest(replica_id=2, current_leader_epoch=7, fetch_offset=10,
                     last_fetched_epoch=6, max_wait_ms=500, high_watermark=9)

MESSAGES = [
    VoteRequest(5, 2, 4, 100),
    VoteResponse(ErrorCode.none, -1, 5, True),
    VoteResponse(ErrorCode.fenced_leader_epoch, 3, 6, False),
    BeginQuorumEpochRequest(1, 7),
    BeginQuorumEpochResponse(ErrorCode.none, 1, 7),
    EndQuorumEpochRequest(1, 7, (3, 2)),
    EndQuorumEpochResponse(ErrorCode.none, 1, 7),
    FETCH,
    FetchRequest(4, 7, 0, 0, 0, -1),
    FetchResponse(ErrorCode.none, 1, 7, 12, 10, 6, (
        LogEntry(6, b"a"), LogEntry(6, b"b"), LogEntry(7, b'{"leader_id":1}', control=True),
        LogEntry(7, b"c"), LogEntry(7, b""))),
    FetchResponse(ErrorCode.none, 1, 7, 8, 10, 6, (), 5, 8),
    FetchResponse(ErrorCode.not_leader_or_follower, 3, 8, 0, 10, 6),
    FetchResponse(ErrorCode.none, 1, 7, 40, 10, 6, snapshot_end_offset=30, snapshot_epoch=5),
    FetchSnapshotRequest(2, 7, 30, 5, 4096, 1 << 20),
    FetchSnapshotResponse(ErrorCode.none, 1, 7, 30, 5, 9000, 4096, b"\x00chunk\xff"),
    FetchSnapshotResponse(ErrorCode.snapshot_not_found, 1, 7, 30, 5, -1, 0),
    VoteRequest(6, 3, 5, 120, pre_vote=True),  # KIP-996 (Vote v2)
]


def _through_bytes(entity):
    cls = type(entity)
    buffer = io.BytesIO()
    entity_writer(cls)(buffer, entity)
    data = buffer.getvalue()
    decoded, size = entity_reader(cls)(data, 0)
    assert size == len(data)
    return decoded


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_round_trip_through_kio_serializers(message) -> None:
    entity = to_kio(message, cluster_id="kaflab")
    decoded = _through_bytes(entity)
    assert decoded == entity
    request = FETCH if isinstance(message, FetchResponse) else None
    assert from_kio(decoded, request) == message


def test_fetch_response_needs_its_request() -> None:
    with pytest.raises(ValueError):
        from_kio(to_kio(MESSAGES[11]))
