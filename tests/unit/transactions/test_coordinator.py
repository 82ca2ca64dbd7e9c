"""The transaction coordinator's state machine over an in-memory log and fake markers."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from kio.schema.errors import ErrorCode as E

from core.common.config import BrokerConfig
from core.common.types import TopicPartition
from core.coordinator.store import InMemoryOffsetsStore
from core.coordinator.transaction_coordinator import TransactionCoordinator
from core.coordinator.transaction_state import TxnState

TP0, TP1 = TopicPartition("t", 0), TopicPartition("t", 1)


def run(fn):
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        asyncio.run(asyncio.wait_for(fn(*args, **kwargs), 10))
    return wrapper


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


class FakeMarkers:
    def __init__(self) -> None:
        self.written: list[tuple[int, int, bool, tuple[TopicPartition, ...]]] = []
        self.fail: set[TopicPartition] = set()
        self.block = asyncio.Event()
        self.block.set()

    async def write_markers(self, pid: int, epoch: int, coordinator_epoch: int, commit: bool,
                            partitions: list[TopicPartition]) -> dict[TopicPartition, E]:
        await self.block.wait()
        self.written.append((pid, epoch, commit, tuple(partitions)))
        return {tp: E.not_leader_or_follower if tp in self.fail else E.none
                for tp in partitions}


def make(store: InMemoryOffsetsStore | None = None, markers: FakeMarkers | None = None,
         clock: Clock | None = None) -> tuple[TransactionCoordinator, InMemoryOffsetsStore,
                                              FakeMarkers, Clock]:
    store = store or InMemoryOffsetsStore()
    markers = markers or FakeMarkers()
    clock = clock or Clock()
    ids = iter(range(1000, 2000))

    async def allocate() -> int:
        return next(ids)

    coordinator = TransactionCoordinator(
        node_id=1, config=BrokerConfig({"transaction.state.log.num.partitions": "3"}),
        store=store, markers=markers, allocate_producer_id=allocate,
        partition_exists=lambda tp: tp.topic != "missing", group_partition=lambda g: 2,
        clock=clock)
    return coordinator, store, markers, clock


async def elect(coordinator: TransactionCoordinator, epoch: int = 0) -> None:
    for p in range(3):
        await coordinator.on_elected(p, epoch)


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


@run
async def test_init_bumps_epoch_and_fences_by_epoch() -> None:
    c, _, _, _ = make()
    assert (await c.init_producer_id("a", 60000))[0] == E.not_coordinator
    await elect(c)
    assert await c.init_producer_id("a", 60000) == (E.none, 1000, 0)
    assert await c.init_producer_id("a", 60000) == (E.none, 1000, 1)
    assert (await c.init_producer_id("a", 10**9))[0] == E.invalid_transaction_timeout
    result = await c.add_partitions("a", 1000, 0, [TP0])
    assert result == {TP0: E.producer_fenced}
    assert (await c.add_partitions("a", 999, 1, [TP0]))[TP0] == E.invalid_producer_id_mapping


@run
async def test_commit_writes_markers_and_completes() -> None:
    c, _, markers, _ = make()
    await elect(c)
    _, pid, epoch = await c.init_producer_id("a", 60000)
    assert await c.add_partitions("a", pid, epoch, [TP0, TP1]) == {TP0: E.none, TP1: E.none}
    assert await c.add_offsets("a", pid, epoch, "group") == E.none
    meta = c.transaction("a")
    assert meta.state == TxnState.ONGOING
    assert TopicPartition("__consumer_offsets", 2) in meta.partitions
    assert await c.end_txn("a", pid, epoch, True) == E.none
    await settle()
    assert meta.state == TxnState.COMPLETE_COMMIT
    assert markers.written[0][:3] == (pid, epoch, True)
    assert set(markers.written[0][3]) == {TP0, TP1, TopicPartition("__consumer_offsets", 2)}
    assert meta.partitions == set()
    assert await c.end_txn("a", pid, epoch, True) == E.none  # a retry
    assert await c.end_txn("a", pid, epoch, False) == E.invalid_txn_state
    # the next transaction starts from an empty partition set
    assert (await c.add_partitions("a", pid, epoch, [TP1]))[TP1] == E.none
    assert meta.partitions == {TP1}


@run
async def test_markers_are_retried_until_written() -> None:
    c, _, markers, _ = make()
    await elect(c)
    _, pid, epoch = await c.init_producer_id("a", 60000)
    await c.add_partitions("a", pid, epoch, [TP0, TP1])
    markers.fail = {TP1}
    assert await c.end_txn("a", pid, epoch, False) == E.none
    await asyncio.sleep(0.15)
    assert c.transaction("a").state == TxnState.PREPARE_ABORT
    assert (await c.add_partitions("a", pid, epoch, [TP0]))[TP0] == E.concurrent_transactions
    markers.fail = set()
    await asyncio.sleep(0.5)
    assert c.transaction("a").state == TxnState.COMPLETE_ABORT
    assert markers.written[-1][3] == (TP1,)


@run
async def test_new_instance_fences_and_aborts_ongoing() -> None:
    c, _, markers, _ = make()
    await elect(c)
    _, pid, epoch = await c.init_producer_id("a", 60000)
    await c.add_partitions("a", pid, epoch, [TP0])
    assert (await c.init_producer_id("a", 60000))[0] == E.concurrent_transactions
    await settle()
    assert c.transaction("a").state == TxnState.COMPLETE_ABORT
    assert markers.written[-1][:3] == (pid, epoch + 1, False)
    assert await c.init_producer_id("a", 60000) == (E.none, pid, epoch + 2)
    # the zombie
    assert await c.end_txn("a", pid, epoch, True) == E.producer_fenced
    assert (await c.add_partitions("a", pid, epoch, [TP0]))[TP0] == E.producer_fenced


@run
async def test_kip360_retry_and_fencing_with_expected_epoch() -> None:
    c, _, _, _ = make()
    await elect(c)
    _, pid, epoch = await c.init_producer_id("a", 60000)
    assert await c.init_producer_id("a", 60000, pid, epoch) == (E.none, pid, epoch + 1)
    # the response was lost: a retry with the old epoch gets the same answer, no new bump
    assert await c.init_producer_id("a", 60000, pid, epoch) == (E.none, pid, epoch + 1)
    assert (await c.init_producer_id("a", 60000, pid + 5, 0))[0] == E.producer_fenced


@run
async def test_timeout_aborts_and_fences() -> None:
    c, _, _markers, clock = make()
    await elect(c)
    _, pid, epoch = await c.init_producer_id("a", 1000)
    await c.add_partitions("a", pid, epoch, [TP0])
    assert await c.abort_timed_out() == 0
    clock.now += 2
    assert await c.abort_timed_out() == 1
    await settle()
    assert c.transaction("a").state == TxnState.COMPLETE_ABORT
    assert c.transaction("a").producer_epoch == epoch + 1
    assert await c.end_txn("a", pid, epoch, True) == E.producer_fenced


@run
async def test_unknown_partition_and_empty_end() -> None:
    c, _, _, _ = make()
    await elect(c)
    _, pid, epoch = await c.init_producer_id("a", 60000)
    result = await c.add_partitions("a", pid, epoch, [TP0, TopicPartition("missing", 0)])
    assert result == {TP0: E.operation_not_attempted,
                      TopicPartition("missing", 0): E.unknown_topic_or_partition}
    assert await c.end_txn("a", pid, epoch, True) == E.invalid_txn_state


@run
async def test_state_survives_failover_and_prepared_txn_completes() -> None:
    store = InMemoryOffsetsStore()
    markers = FakeMarkers()
    c1, _, _, _ = make(store, markers)
    await elect(c1)
    _, pid, epoch = await c1.init_producer_id("a", 60000)
    await c1.add_partitions("a", pid, epoch, [TP0])
    _, pid_b, epoch_b = await c1.init_producer_id("b", 60000)
    await c1.add_partitions("b", pid_b, epoch_b, [TP1])
    markers.block.clear()  # the coordinator dies before writing markers
    assert await c1.end_txn("a", pid, epoch, True) == E.none
    await settle()
    for p in range(3):
        await c1.on_resigned(p)
    assert c1.transaction("a") is None
    markers.block.set()
    c2, _, _, _ = make(store, markers)
    await elect(c2, epoch=1)
    await settle()
    a = c2.transaction("a")
    assert a.state == TxnState.COMPLETE_COMMIT
    assert (pid, epoch, True, (TP0,)) in markers.written
    b = c2.transaction("b")
    assert b.state == TxnState.ONGOING and b.partitions == {TP1}
    listed = c2.list_transactions(states=["Ongoing"])
    assert [d.transactional_id for d in listed[1]] == ["b"]
    assert c2.describe("b").partitions == (TP1,)
    assert c2.describe("zzz").error == E.transactional_id_not_found
