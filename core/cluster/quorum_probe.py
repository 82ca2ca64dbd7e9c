"""The supervisor's metadata-quorum requests: DescribeQuorum, and EndQuorumEpoch on behalf of
a dead leader.

When the supervisor sees the active controller (the Raft leader) die, it sends the surviving
voters exactly the EndQuorumEpoch a gracefully resigning Kafka leader sends (KIP-595):
leader_id = the dead broker, leader_epoch = its epoch, preferred_successors ordered by
replication progress (the leader's last DescribeQuorum), so the first successor starts an
election at once instead of waiting out controller.quorum.fetch.timeout.ms. The request
carries a null cluster_id, which Kafka's KafkaRaftClient accepts (hasValidClusterId).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from core.common.errors import KafkaError
from core.network.client import KafkaConnection

DESCRIBE_QUORUM = 55
END_QUORUM_EPOCH = 54
METADATA_TOPIC = "__cluster_metadata"
CLIENT_ID = "kaflab-supervisor"


@dataclass(frozen=True, slots=True)
class QuorumView:
    """One broker's DescribeQuorum answer: the leader it knows and, from the leader itself,
    each voter's log end offset (empty from a non-leader, which answers NOT_LEADER)."""

    error_code: int
    leader_id: int
    leader_epoch: int
    voters: Mapping[int, int]  # voter id -> log end offset


async def describe_quorum(host: str, port: int, timeout: float = 0.5) -> QuorumView | None:
    """DescribeQuorum (v0/v1) of __cluster_metadata-0 at host:port; None if it does not answer."""
    try:
        conn = await KafkaConnection.connect(host, port, client_id=CLIENT_ID, timeout=timeout)
        async with conn:
            response = await conn.request(
                DESCRIBE_QUORUM, max_version=1, timeout=timeout,
                topics=[{"topic_name": METADATA_TOPIC, "partitions": [{"partition_index": 0}]}])
    except (KafkaError, OSError, TimeoutError):
        return None
    if int(response.error_code) != 0 or not response.topics \
            or not response.topics[0].partitions:
        return None
    p = response.topics[0].partitions[0]
    return QuorumView(int(p.error_code), int(p.leader_id), int(p.leader_epoch),
                      {int(v.replica_id): int(v.log_end_offset) for v in p.current_voters})


def preferred_successors(voters: Sequence[int], dead: int,
                         progress: Mapping[int, int] | None = None) -> tuple[int, ...]:
    """The surviving voters as Kafka's resigning leader orders them: by log end offset
    (most caught up first) when known, then by id."""
    progress = progress or {}
    return tuple(sorted((v for v in voters if v != dead),
                        key=lambda v: (-progress.get(v, -1), v)))


async def end_quorum_epoch(host: str, port: int, leader_id: int, leader_epoch: int,
                           successors: Sequence[int], timeout: float = 0.5) -> int | None:
    """Send EndQuorumEpoch v0 for (leader_id, leader_epoch) to the voter at host:port; its
    error code (0 accepted), or None if it did not answer."""
    try:
        conn = await KafkaConnection.connect(host, port, client_id=CLIENT_ID, timeout=timeout)
        async with conn:
            response = await conn.request(
                END_QUORUM_EPOCH, version=0, timeout=timeout, cluster_id=None,
                topics=[{"topic_name": METADATA_TOPIC, "partitions": [{
                    "partition_index": 0, "leader_id": leader_id,
                    "leader_epoch": leader_epoch,
                    "preferred_successors": list(successors)}]}])
    except (KafkaError, OSError, TimeoutError):
        return None
    if int(response.error_code) != 0 or not response.topics:
        return int(response.error_code)
    return int(response.topics[0].partitions[0].error_code)


async def end_dead_leader_epoch(dead: int, survivors: Mapping[int, tuple[str, int]],
                                voters: Sequence[int],
                                last_leader_view: QuorumView | None = None,
                                timeout: float = 0.5) -> tuple[int, tuple[int, ...]] | None:
    """If the survivors still follow `dead` as the Raft leader, end its epoch on their behalf:
    EndQuorumEpoch to every surviving voter. Returns (epoch, successors) when sent, None when
    `dead` was not the leader any survivor knows (or a newer leader is already known)."""
    ids = list(survivors)
    views = await asyncio.gather(*(describe_quorum(*survivors[i], timeout) for i in ids))
    known = [v for v in views if v is not None and v.leader_id >= 0]
    epochs = [v.leader_epoch for v in known if v.leader_id == dead]
    if not epochs:
        return None
    epoch = max(epochs)
    if any(v.leader_id != dead and v.leader_epoch >= epoch for v in known):
        return None  # someone already follows a newer leader
    progress = None
    if last_leader_view is not None and last_leader_view.leader_id == dead \
            and last_leader_view.leader_epoch == epoch:
        progress = last_leader_view.voters
    successors = preferred_successors(voters, dead, progress)
    targets = [i for i in successors if i in survivors]
    await asyncio.gather(*(end_quorum_epoch(*survivors[i], dead, epoch, successors, timeout)
                           for i in targets))
    return epoch, successors
