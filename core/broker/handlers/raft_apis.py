"""The metadata quorum's own APIs: Vote (52), BeginQuorumEpoch (53), EndQuorumEpoch (54),
DescribeQuorum (55), FetchSnapshot (59, KIP-630); and the Fetch path for `__cluster_metadata-0`,
called from fetch.py (which answers with snapshot_id below the log start offset).

These are the Kafka messages KRaft uses; the node behind them is core.raft.RaftNode, driven
by core.broker.raft_io. (Grouped in one module because they share the quorum plumbing.)
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from kio.schema.errors import ErrorCode

from core.broker.api import RequestContext, api
from core.common.errors import KafkaError
from core.protocol.build import build
from core.protocol.codec import response_class
from core.raft.messages import (
    BeginQuorumEpochRequest,
    EndQuorumEpochRequest,
    FetchRequest,
    FetchSnapshotRequest,
    VoteRequest,
)

METADATA_TOPIC = "__cluster_metadata"
_ZERO_UUID = uuid.UUID(int=0)
#: Errors.NOT_LEADER_OR_FOLLOWER.message(), which Kafka's KafkaRaftClient puts in v2+
_NOT_LEADER_MESSAGE = ("For requests intended only for the leader, this error indicates that "
                       "the broker is not the current leader. For requests intended for any "
                       "replica, this error indicates that the broker is not a replica of the "
                       "topic partition.")
#: the listener the quorum's endpoints are reported under (DescribeQuorum v2 nodes)
_LISTENER_NAME = "PLAINTEXT"


def _raft(ctx: RequestContext) -> Any:
    from core.broker.raft_io import RaftMetadataLog
    log = ctx.broker.metadata_log
    return log if isinstance(log, RaftMetadataLog) else None


def _error(ctx: RequestContext, key: int, code: ErrorCode) -> Any:
    return build(response_class(key, ctx.version), error_code=code, topics=[])


def _wrap(ctx: RequestContext, key: int, **fields: Any) -> Any:
    return build(response_class(key, ctx.version), error_code=0, topics=[dict(
        topic_name=METADATA_TOPIC, partitions=[dict(partition_index=0, **fields)])])


#: Client ids of the quorum's own traffic (the other nodes and the supervisor). Kafka answers
#: it on the controller listener with the node's own view (a non-leader says
#: NOT_LEADER_OR_FOLLOWER and names the leader it knows); our nodes share one listener, so the
#: client id tells it apart from clients, whose DescribeQuorum a non-leader forwards.
_QUORUM_PEER_PREFIXES = ("broker-", "raft-", "kaflab-supervisor")


def _from_quorum_peer(ctx: RequestContext) -> bool:
    client_id = ctx.header.client_id or ""
    return client_id.startswith(_QUORUM_PEER_PREFIXES)


def _single_partition(request: Any) -> Any | None:
    topics = request.topics
    if len(topics) != 1 or topics[0].topic_name != METADATA_TOPIC \
            or len(topics[0].partitions) != 1:
        return None
    return topics[0].partitions[0]


@api(key=52, min_version=0, max_version=2)
async def handle_vote(ctx: RequestContext, request: Any) -> Any:
    """Vote; v2 carries KIP-996's pre_vote (a pre-vote changes nothing on this voter)."""
    raft = _raft(ctx)
    p = _single_partition(request)
    if raft is None or p is None:
        return _error(ctx, 52, ErrorCode.inconsistent_voter_set)
    if request.cluster_id != raft.cluster_id:
        return _error(ctx, 52, ErrorCode.inconsistent_cluster_id)
    response = await raft.handle_inbound(p.replica_id, VoteRequest(
        p.replica_epoch, p.replica_id, p.last_offset_epoch, p.last_offset,
        bool(getattr(p, "pre_vote", False))))
    return _wrap(ctx, 52, error_code=response.error_code, leader_id=response.leader_id,
                 leader_epoch=response.leader_epoch, vote_granted=response.vote_granted)


@api(key=53, min_version=0, max_version=0)
async def handle_begin_quorum_epoch(ctx: RequestContext, request: Any) -> Any:
    raft = _raft(ctx)
    p = _single_partition(request)
    if raft is None or p is None:
        return _error(ctx, 53, ErrorCode.inconsistent_voter_set)
    if request.cluster_id != raft.cluster_id:
        return _error(ctx, 53, ErrorCode.inconsistent_cluster_id)
    response = await raft.handle_inbound(p.leader_id, BeginQuorumEpochRequest(
        p.leader_id, p.leader_epoch))
    return _wrap(ctx, 53, error_code=response.error_code, leader_id=response.leader_id,
                 leader_epoch=response.leader_epoch)


@api(key=54, min_version=0, max_version=0)
async def handle_end_quorum_epoch(ctx: RequestContext, request: Any) -> Any:
    raft = _raft(ctx)
    p = _single_partition(request)
    if raft is None or p is None:
        return _error(ctx, 54, ErrorCode.inconsistent_voter_set)
    # a null cluster id is accepted, as Kafka's KafkaRaftClient.hasValidClusterId does: the
    # supervisor ends a dead leader's epoch on its behalf without knowing the cluster id
    if request.cluster_id is not None and request.cluster_id != raft.cluster_id:
        return _error(ctx, 54, ErrorCode.inconsistent_cluster_id)
    response = await raft.handle_inbound(p.leader_id, EndQuorumEpochRequest(
        p.leader_id, p.leader_epoch, tuple(p.preferred_successors)))
    return _wrap(ctx, 54, error_code=response.error_code, leader_id=response.leader_id,
                 leader_epoch=response.leader_epoch)


@api(key=55, min_version=0, max_version=2)
async def handle_describe_quorum(ctx: RequestContext, request: Any) -> Any:
    broker = ctx.broker
    raft = _raft(ctx)
    if raft is None:  # single voter: this broker is the whole quorum
        end = broker.metadata_log.end_offset
        now = int(time.time() * 1000)  # the leader itself: fetched and caught up "now"
        voter = _replica_state(broker.node_id, end, now, now)
        return _quorum(ctx, [broker.node_id], error_code=0, leader_id=broker.node_id,
                       leader_epoch=1, high_watermark=end, current_voters=[voter],
                       observers=[])
    status = raft.quorum_status()

    def replica(r: Any) -> dict[str, Any]:
        return _replica_state(r.replica_id, r.log_end_offset, r.last_fetch_ms,
                              r.last_caught_up_ms)

    if status.role != "leader":
        if not _from_quorum_peer(ctx):
            # Kafka's brokers forward DescribeQuorum to the active controller (KafkaApis
            # forwardToControllerOrFail), so any client can ask any broker.
            try:
                return await broker.forward_to_controller(ctx, request)
            except KafkaError:
                pass  # no controller reachable: answer with what this voter knows
        return _quorum(ctx, [], error_code=ErrorCode.not_leader_or_follower,
                       error_message=_NOT_LEADER_MESSAGE,
                       leader_id=status.leader_id, leader_epoch=status.epoch,
                       high_watermark=-1, current_voters=[], observers=[])
    return _quorum(ctx, [r.replica_id for r in status.voters], error_code=0,
                   leader_id=status.leader_id, leader_epoch=status.epoch,
                   high_watermark=status.high_watermark,
                   current_voters=[replica(r) for r in status.voters],
                   observers=[replica(r) for r in status.observers])


def _replica_state(replica_id: int, log_end_offset: int, last_fetch_ms: int,
                   last_caught_up_ms: int) -> dict[str, Any]:
    """A voter or observer (v2, KIP-853: no directory id, as for statically configured
    voters: the zero UUID). Times are wall-clock ms (v1+, KIP-836), -1 when unknown."""
    return dict(replica_id=replica_id, replica_directory_id=_ZERO_UUID,
                log_end_offset=log_end_offset, last_fetch_timestamp=last_fetch_ms,
                last_caught_up_timestamp=last_caught_up_ms)


def _quorum(ctx: RequestContext, voter_ids: list[int], **partition: Any) -> Any:
    """The response; v2 adds the voters' endpoints (`nodes`). Our quorum talks over the
    brokers' own listener, so that is the endpoint each voter has."""
    brokers = ctx.broker.image.brokers
    nodes = [dict(node_id=i, listeners=[dict(name=_LISTENER_NAME, host=brokers[i].host,
                                             port=brokers[i].port)])
             for i in voter_ids if i in brokers]
    partition.setdefault("error_message", None)
    return build(response_class(55, ctx.version), error_code=0, error_message=None,
                 topics=[dict(topic_name=METADATA_TOPIC,
                              partitions=[dict(partition_index=0, **partition)])],
                 nodes=nodes)


async def handle_metadata_fetch(ctx: RequestContext, request: Any) -> Any:
    """Fetch on __cluster_metadata-0: a quorum member pulling the metadata log."""
    from core.raft.wire import encode_entries
    cls = response_class(1, ctx.version)
    raft = _raft(ctx)
    t = request.topics[0]
    if raft is None or len(t.partitions) != 1:
        return build(cls, throttle_time=0, error_code=ErrorCode.inconsistent_voter_set,
                     session_id=0, responses=[])
    p = t.partitions[0]
    from core.protocol.build import timedelta_to_ms
    response = await raft.handle_inbound(request.replica_id, FetchRequest(
        request.replica_id, p.current_leader_epoch, p.fetch_offset, p.last_fetched_epoch,
        timedelta_to_ms(request.max_wait)))
    partition = dict(partition_index=0, error_code=response.error_code,
                     high_watermark=response.high_watermark, last_stable_offset=-1,
                     log_start_offset=raft.node.log.start_offset(), preferred_read_replica=-1,
                     current_leader=dict(leader_id=response.leader_id,
                                         leader_epoch=response.leader_epoch),
                     records=encode_entries(response.records, p.fetch_offset))
    if response.diverging_epoch >= 0:
        partition["diverging_epoch"] = dict(epoch=response.diverging_epoch,
                                            end_offset=response.diverging_end_offset)
    if response.snapshot_end_offset >= 0:  # KIP-630: below our log start, fetch a snapshot
        partition["snapshot_id"] = dict(end_offset=response.snapshot_end_offset,
                                        epoch=response.snapshot_epoch)
    return build(cls, throttle_time=0, error_code=0, session_id=0,
                 responses=[dict(topic=METADATA_TOPIC, partitions=[partition])])


@api(key=59, min_version=0, max_version=1)
async def handle_fetch_snapshot(ctx: RequestContext, request: Any) -> Any:
    """FetchSnapshot: a quorum member downloads a chunk of the leader's metadata snapshot."""
    from core.raft.wire import fetch_snapshot_partition
    cls = response_class(59, ctx.version)
    raft = _raft(ctx)
    topics = request.topics
    if raft is None or len(topics) != 1 or topics[0].name != METADATA_TOPIC \
            or len(topics[0].partitions) != 1:
        return build(cls, throttle_time=0, error_code=ErrorCode.inconsistent_voter_set,
                     topics=[])
    if request.cluster_id is not None and request.cluster_id != raft.cluster_id:
        return build(cls, throttle_time=0, error_code=ErrorCode.inconsistent_cluster_id,
                     topics=[])
    p = topics[0].partitions[0]
    if p.partition != 0:
        return build(cls, throttle_time=0, error_code=ErrorCode.unknown_topic_or_partition,
                     topics=[])
    response = await raft.handle_inbound(request.replica_id, FetchSnapshotRequest(
        request.replica_id, p.current_leader_epoch, p.snapshot_id.end_offset,
        p.snapshot_id.epoch, p.position, request.max_bytes))
    return build(cls, throttle_time=0, error_code=0, topics=[dict(
        name=METADATA_TOPIC, partitions=[fetch_snapshot_partition(response)])])
