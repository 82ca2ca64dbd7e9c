"""A GroupCoordinator over an in-memory store with a fake clock, and request builders."""

from __future__ import annotations

import asyncio
from typing import Any

from core.common.config import BrokerConfig
from core.coordinator.consumer_protocol import encode_assignment, encode_subscription
from core.coordinator.group_coordinator import GroupCoordinator
from core.coordinator.store import InMemoryOffsetsStore
from core.protocol.build import build
from core.protocol.codec import request_class

JOIN, SYNC, HEARTBEAT, LEAVE, COMMIT = 11, 14, 12, 13, 8


class FakeClock:
    """Seconds, like time.monotonic / time.time; advanced by the test."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance_ms(self, ms: int) -> None:
        self.now += ms / 1000


def make_coordinator(store: InMemoryOffsetsStore | None = None, clock: FakeClock | None = None,
                     **config: str) -> tuple[GroupCoordinator, InMemoryOffsetsStore, FakeClock]:
    props = {"offsets.topic.num.partitions": "4", "group.initial.rebalance.delay.ms": "0",
             "group.min.session.timeout.ms": "100"}
    props.update(config)
    store = store or InMemoryOffsetsStore()
    clock = clock or FakeClock()
    coordinator = GroupCoordinator(node_id=1, config=BrokerConfig(props), store=store,
                                   clock=clock, wall_clock=clock)
    return coordinator, store, clock


async def elect_all(coordinator: GroupCoordinator) -> None:
    for partition in range(coordinator.num_partitions):
        await coordinator.on_elected(partition)


def req(api_key: int, version: int, **fields: Any) -> Any:
    return build(request_class(api_key, version), **fields)


def join_req(group: str, member_id: str = "", *, version: int = 9, topics: tuple[str, ...] = ("t",),
             protocols: list[tuple[str, bytes]] | None = None, session_ms: int = 10_000,
             rebalance_ms: int = 30_000, instance_id: str | None = None,
             protocol_type: str = "consumer") -> Any:
    if protocols is None:
        protocols = [("range", encode_subscription(list(topics)))]
    return req(JOIN, version, group_id=group, session_timeout=session_ms,
               rebalance_timeout=rebalance_ms, member_id=member_id,
               group_instance_id=instance_id, protocol_type=protocol_type,
               protocols=[{"name": n, "metadata": m} for n, m in protocols])


def sync_req(group: str, generation: int, member_id: str,
             assignments: dict[str, bytes] | None = None, *, version: int = 5,
             instance_id: str | None = None) -> Any:
    return req(SYNC, version, group_id=group, generation_id=generation, member_id=member_id,
               group_instance_id=instance_id, protocol_type="consumer",
               assignments=[{"member_id": m, "assignment": a}
                            for m, a in (assignments or {}).items()])


def hb_req(group: str, generation: int, member_id: str, instance_id: str | None = None) -> Any:
    return req(HEARTBEAT, 4, group_id=group, generation_id=generation, member_id=member_id,
               group_instance_id=instance_id)


def leave_req(group: str, *members: tuple[str, str | None]) -> Any:
    return req(LEAVE, 5, group_id=group,
               members=[{"member_id": m, "group_instance_id": i} for m, i in members])


def commit_req(group: str, offsets: dict[tuple[str, int], int], *, generation: int = -1,
               member_id: str = "", metadata: str = "", version: int = 9) -> Any:
    topics: dict[str, list[dict[str, Any]]] = {}
    for (topic, partition), offset in offsets.items():
        topics.setdefault(topic, []).append(
            {"partition_index": partition, "committed_offset": offset,
             "committed_leader_epoch": 3, "committed_metadata": metadata})
    return req(COMMIT, version, group_id=group, generation_id_or_member_epoch=generation,
               member_id=member_id,
               topics=[{"name": t, "partitions": p} for t, p in topics.items()])


async def join(coordinator: GroupCoordinator, group: str, member_id: str = "",
               **kwargs: Any) -> Any:
    """Join, handling MEMBER_ID_REQUIRED like a client; returns a task for the final result."""
    from kio.schema.errors import ErrorCode
    version = kwargs.get("version", 9)
    first = asyncio.ensure_future(coordinator.join_group(
        join_req(group, member_id, **kwargs), version, "client", "/127.0.0.1"))
    await settle()
    if first.done() and first.result().error == ErrorCode.member_id_required:
        second = asyncio.ensure_future(coordinator.join_group(
            join_req(group, first.result().member_id, **kwargs), version, "client",
            "/127.0.0.1"))
        await settle()
        return second
    return first


async def settle() -> None:
    """Let every ready task run."""
    for _ in range(5):
        await asyncio.sleep(0)


def assignment_for(*partitions: int, topic: str = "t") -> bytes:
    return encode_assignment({topic: list(partitions)})


async def pass_initial_delay(coordinator: GroupCoordinator, clock: FakeClock,
                             delay_ms: int = 100) -> None:
    """Let the initial rebalance delay (extended by every newcomer) run out."""
    for _ in range(5):
        clock.advance_ms(delay_ms)
        await coordinator.tick()
        await settle()
