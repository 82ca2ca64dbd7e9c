"""Put core.raft messages on the wire as real Kafka Raft RPCs (kio entities) and back.

The metadata log is the single partition `__cluster_metadata-0` (topic id
AAAAAAAAAAAAAAAAAAAAAQ, i.e. UUID int 1, in Fetch). Versions: Vote v2 (KIP-996 pre_vote; no
directory ids), BeginQuorumEpoch v0,
EndQuorumEpoch v0, Fetch v18 (replica_state, last_fetched_epoch, the KIP-1166 high_watermark,
diverging_epoch, current_leader and snapshot_id tagged fields), FetchSnapshot v1 (KIP-630).
Fetched entries travel as RecordBatch v2:
one batch per run of entries with the same epoch and kind, partition_leader_epoch = epoch,
the entry bytes as record values, control batches for leader-change entries.

A FetchResponse on the wire does not repeat the request's fetch_offset / last_fetched_epoch,
so `from_kio` needs the FetchRequest it answers (the transport matches it by correlation id).
"""

from __future__ import annotations

import uuid
from typing import Any

from kio.schema.begin_quorum_epoch.v0 import request as begin_req
from kio.schema.begin_quorum_epoch.v0 import response as begin_resp
from kio.schema.end_quorum_epoch.v0 import request as end_req
from kio.schema.end_quorum_epoch.v0 import response as end_resp
from kio.schema.errors import ErrorCode
from kio.schema.fetch.v18 import request as fetch_req
from kio.schema.fetch.v18 import response as fetch_resp
from kio.schema.fetch_snapshot.v1 import request as snap_req
from kio.schema.fetch_snapshot.v1 import response as snap_resp
from kio.schema.vote.v2 import request as vote_req
from kio.schema.vote.v2 import response as vote_resp

from core.protocol.build import build, timedelta_to_ms
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
    RaftMessage,
    VoteRequest,
    VoteResponse,
)
from core.records.batch import LOG_OVERHEAD, build_batch, iter_batches, iter_records

METADATA_TOPIC = "__cluster_metadata"
METADATA_TOPIC_ID = uuid.UUID(int=1)
METADATA_PARTITION = 0
_HW_NOT_SUPPORTED = 2**63 - 1


def encode_entries(entries: tuple[LogEntry, ...], base_offset: int) -> bytes:
    """Entries as RecordBatch v2 bytes: one batch per run of equal (epoch, control)."""
    out = bytearray()
    start = 0
    while start < len(entries):
        end = start
        first = entries[start]
        while end < len(entries) and (entries[end].epoch, entries[end].control) == (
                first.epoch, first.control):
            end += 1
        out += build_batch(
            [(None, e.data, ()) for e in entries[start:end]], base_offset=base_offset + start,
            timestamp_ms=0, is_control=first.control, partition_leader_epoch=first.epoch)
        start = end
    return bytes(out)


def decode_entries(records: bytes | None) -> tuple[LogEntry, ...]:
    if not records:
        return ()
    entries: list[LogEntry] = []
    for pos, header in iter_batches(records):
        batch = records[pos:pos + header.batch_length + LOG_OVERHEAD]
        for record in iter_records(batch):
            entries.append(LogEntry(header.partition_leader_epoch, record.value or b"",
                                    header.is_control))
    return tuple(entries)


def _topics(partition: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"topic_name": METADATA_TOPIC,
             "partitions": [{"partition_index": METADATA_PARTITION, **partition}]}]


def _partition(entity: Any) -> Any:
    return entity.topics[0].partitions[0]


def to_kio(message: RaftMessage, *, cluster_id: str | None = None) -> Any:
    """The kio request/response entity for a core.raft message."""
    match message:
        case VoteRequest():
            return build(vote_req.VoteRequest, cluster_id=cluster_id, topics=_topics({
                "replica_epoch": message.replica_epoch, "replica_id": message.replica_id,
                "replica_directory_id": None, "voter_directory_id": None,
                "last_offset_epoch": message.last_offset_epoch,
                "last_offset": message.last_offset, "pre_vote": message.pre_vote}))
        case VoteResponse():
            return build(vote_resp.VoteResponse, error_code=0, topics=_topics({
                "error_code": message.error_code, "leader_id": message.leader_id,
                "leader_epoch": message.leader_epoch, "vote_granted": message.vote_granted}))
        case BeginQuorumEpochRequest():
            return build(begin_req.BeginQuorumEpochRequest, cluster_id=cluster_id,
                         topics=_topics({"leader_id": message.leader_id,
                                         "leader_epoch": message.leader_epoch}))
        case BeginQuorumEpochResponse():
            return build(begin_resp.BeginQuorumEpochResponse, error_code=0, topics=_topics({
                "error_code": message.error_code, "leader_id": message.leader_id,
                "leader_epoch": message.leader_epoch}))
        case EndQuorumEpochRequest():
            return build(end_req.EndQuorumEpochRequest, cluster_id=cluster_id, topics=_topics({
                "leader_id": message.leader_id, "leader_epoch": message.leader_epoch,
                "preferred_successors": message.preferred_successors}))
        case EndQuorumEpochResponse():
            return build(end_resp.EndQuorumEpochResponse, error_code=0, topics=_topics({
                "error_code": message.error_code, "leader_id": message.leader_id,
                "leader_epoch": message.leader_epoch}))
        case FetchRequest():
            return build(
                fetch_req.FetchRequest, cluster_id=cluster_id,
                replica_state={"replica_id": message.replica_id, "replica_epoch": -1},
                max_wait=message.max_wait_ms, min_bytes=0, session_epoch=-1,
                topics=[{"topic_id": METADATA_TOPIC_ID, "partitions": [{
                    "partition": METADATA_PARTITION,
                    "current_leader_epoch": message.current_leader_epoch,
                    "fetch_offset": message.fetch_offset,
                    "last_fetched_epoch": message.last_fetched_epoch,
                    "partition_max_bytes": 8 * 1024 * 1024,
                    "high_watermark": message.high_watermark,
                }]}],
                forgotten_topics_data=[])
        case FetchResponse():
            partition = {
                "partition_index": METADATA_PARTITION,
                "error_code": message.error_code,
                "high_watermark": message.high_watermark,
                "current_leader": {"leader_id": message.leader_id,
                                   "leader_epoch": message.leader_epoch},
                "aborted_transactions": None,
                "records": encode_entries(message.records, message.fetch_offset),
            }
            if message.diverging_epoch >= 0:
                partition["diverging_epoch"] = {"epoch": message.diverging_epoch,
                                                "end_offset": message.diverging_end_offset}
            if message.snapshot_end_offset >= 0:
                partition["snapshot_id"] = {"end_offset": message.snapshot_end_offset,
                                            "epoch": message.snapshot_epoch}
            return build(fetch_resp.FetchResponse, throttle_time=0, error_code=0, responses=[
                {"topic_id": METADATA_TOPIC_ID, "partitions": [partition]}])
        case FetchSnapshotRequest():
            return build(snap_req.FetchSnapshotRequest, cluster_id=cluster_id,
                         replica_id=message.replica_id, max_bytes=message.max_bytes,
                         topics=[{"name": METADATA_TOPIC, "partitions": [{
                             "partition": METADATA_PARTITION,
                             "current_leader_epoch": message.current_leader_epoch,
                             "snapshot_id": {"end_offset": message.snapshot_end_offset,
                                             "epoch": message.snapshot_epoch},
                             "position": message.position}]}])
        case FetchSnapshotResponse():
            return build(snap_resp.FetchSnapshotResponse, throttle_time=0, error_code=0,
                         topics=[{"name": METADATA_TOPIC,
                                  "partitions": [fetch_snapshot_partition(message)]}])
    raise TypeError(f"not a raft message: {message!r}")


def from_kio(entity: Any, request: FetchRequest | None = None) -> RaftMessage:
    """The core.raft message for a kio entity; FetchResponse needs the request it answers."""
    match entity:
        case vote_req.VoteRequest():
            p = _partition(entity)
            return VoteRequest(p.replica_epoch, p.replica_id, p.last_offset_epoch, p.last_offset,
                               bool(p.pre_vote))
        case vote_resp.VoteResponse():
            p = _partition(entity)
            return VoteResponse(_error(entity, p), p.leader_id, p.leader_epoch, p.vote_granted)
        case begin_req.BeginQuorumEpochRequest():
            p = _partition(entity)
            return BeginQuorumEpochRequest(p.leader_id, p.leader_epoch)
        case begin_resp.BeginQuorumEpochResponse():
            p = _partition(entity)
            return BeginQuorumEpochResponse(_error(entity, p), p.leader_id, p.leader_epoch)
        case end_req.EndQuorumEpochRequest():
            p = _partition(entity)
            return EndQuorumEpochRequest(p.leader_id, p.leader_epoch,
                                         tuple(int(s) for s in p.preferred_successors))
        case end_resp.EndQuorumEpochResponse():
            p = _partition(entity)
            return EndQuorumEpochResponse(_error(entity, p), p.leader_id, p.leader_epoch)
        case fetch_req.FetchRequest():
            p = entity.topics[0].partitions[0]
            hw = -1 if p.high_watermark == _HW_NOT_SUPPORTED else p.high_watermark
            return FetchRequest(entity.replica_state.replica_id, p.current_leader_epoch,
                                p.fetch_offset, p.last_fetched_epoch,
                                timedelta_to_ms(entity.max_wait), hw)
        case fetch_resp.FetchResponse():
            if request is None:
                raise ValueError("decoding a FetchResponse needs the FetchRequest it answers")
            p = entity.responses[0].partitions[0]
            error = entity.error_code if entity.error_code != ErrorCode.none else p.error_code
            return FetchResponse(
                error, p.current_leader.leader_id, p.current_leader.leader_epoch,
                p.high_watermark, request.fetch_offset, request.last_fetched_epoch,
                decode_entries(p.records), p.diverging_epoch.epoch,
                p.diverging_epoch.end_offset, p.snapshot_id.end_offset, p.snapshot_id.epoch)
        case snap_req.FetchSnapshotRequest():
            p = entity.topics[0].partitions[0]
            return FetchSnapshotRequest(entity.replica_id, p.current_leader_epoch,
                                        p.snapshot_id.end_offset, p.snapshot_id.epoch,
                                        p.position, entity.max_bytes)
        case snap_resp.FetchSnapshotResponse():
            return fetch_snapshot_response(entity)
    raise TypeError(f"not a raft entity: {type(entity).__name__}")


def _error(entity: Any, partition: Any) -> ErrorCode:
    return entity.error_code if entity.error_code != ErrorCode.none else partition.error_code


def fetch_snapshot_partition(message: FetchSnapshotResponse) -> dict[str, Any]:
    """FetchSnapshotResponse.PartitionSnapshot fields for a core.raft message (any version)."""
    return {"index": METADATA_PARTITION, "error_code": message.error_code,
            "snapshot_id": {"end_offset": message.snapshot_end_offset,
                            "epoch": message.snapshot_epoch},
            "current_leader": {"leader_id": message.leader_id,
                               "leader_epoch": message.leader_epoch},
            "size": message.size, "position": message.position,
            "unaligned_records": message.unaligned_records}


def fetch_snapshot_response(entity: Any) -> FetchSnapshotResponse:
    """The core.raft message for a kio FetchSnapshotResponse (v0 or v1)."""
    if entity.error_code != ErrorCode.none or not entity.topics \
            or not entity.topics[0].partitions:
        code = entity.error_code if entity.error_code != ErrorCode.none \
            else ErrorCode.unknown_server_error
        return FetchSnapshotResponse(code, -1, -1, -1, -1, -1, -1)
    p = entity.topics[0].partitions[0]
    return FetchSnapshotResponse(
        p.error_code, p.current_leader.leader_id, p.current_leader.leader_epoch,
        p.snapshot_id.end_offset, p.snapshot_id.epoch, p.size, p.position,
        bytes(p.unaligned_records or b""))
