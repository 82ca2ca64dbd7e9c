"""TxnOffsetCommit in the group coordinator: pending until the marker, reload from the log."""

from __future__ import annotations

import asyncio

from kio.schema.errors import ErrorCode as E

from core.common.types import TopicPartition
from core.coordinator.store import InMemoryOffsetsStore
from core.records.batch import build_control_batch
from tests.unit.coordinator.harness import elect_all, make_coordinator, req

TXN_COMMIT, FETCH = 28, 9
TP = TopicPartition("t", 0)


def txn_commit(group: str, pid: int, offset: int, epoch: int = 0) -> object:
    return req(TXN_COMMIT, 3, transactional_id="tx", group_id=group, producer_id=pid,
               producer_epoch=epoch, generation_id=-1, member_id="",
               topics=[dict(name="t", partitions=[dict(partition_index=0,
                                                       committed_offset=offset,
                                                       committed_leader_epoch=-1,
                                                       committed_metadata="")])])


async def fetched(coordinator, group: str, stable: bool = False):
    result = await coordinator.fetch_offsets(group, [("t", [0])], stable)
    return result.partitions[0]


def marker(store: InMemoryOffsetsStore, partition: int, pid: int, commit: bool) -> None:
    batch = build_control_batch(commit=commit, producer_id=pid, producer_epoch=0,
                                coordinator_epoch=0, timestamp_ms=1)
    base = store.next_offset.get(partition, 0)
    store.batches.setdefault(partition, []).append(
        (base, base.to_bytes(8, "big", signed=True) + batch[8:]))
    store.next_offset[partition] = base + 1


def test_pending_until_commit_marker_and_reload() -> None:
    async def body() -> None:
        coordinator, store, _ = make_coordinator()
        await elect_all(coordinator)
        partition = coordinator.partition_for("g")
        results = await coordinator.txn_commit_offsets(txn_commit("g", 7, 10), 3)
        assert [r.error for r in results] == [E.none]
        assert (await fetched(coordinator, "g")).offset == -1
        assert (await fetched(coordinator, "g", True)).error == E.unstable_offset_commit
        marker(store, partition, 7, True)
        await coordinator.complete_txn(7, [partition], True)
        assert (await fetched(coordinator, "g", True)).offset == 10

        # an aborted transaction leaves the committed offset alone
        await coordinator.txn_commit_offsets(txn_commit("g", 7, 20), 3)
        marker(store, partition, 7, False)
        await coordinator.complete_txn(7, [partition], False)
        assert (await fetched(coordinator, "g")).offset == 10

        # an open transaction at the end of the log stays pending after a reload
        await coordinator.txn_commit_offsets(txn_commit("g", 8, 30), 3)
        again, _, _ = make_coordinator(store=store)
        await elect_all(again)
        assert (await fetched(again, "g")).offset == 10
        assert (await fetched(again, "g", True)).error == E.unstable_offset_commit
        await again.complete_txn(8, [partition], True)
        assert (await fetched(again, "g")).offset == 30

    asyncio.run(asyncio.wait_for(body(), 10))
