"""GroupCoordinator.on_partitions_deleted: committed offsets of deleted partitions go from every
group (in memory and as tombstones in __consumer_offsets), as Kafka's onPartitionsDeleted."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any

from kio.schema.errors import ErrorCode as E

from core.common.types import TopicPartition
from core.coordinator import records as rec
from core.coordinator.group import GroupState
from core.coordinator.store import InMemoryOffsetsStore
from core.records.batch import build_control_batch, iter_records
from tests.unit.coordinator.harness import (
    commit_req,
    elect_all,
    leave_req,
    make_coordinator,
    req,
    settle,
)
from tests.unit.coordinator.test_group_coordinator import stable_group

T = [TopicPartition("t", p) for p in range(3)]


def run(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        asyncio.run(asyncio.wait_for(fn(*args, **kwargs), 10))
    return wrapper


async def committed(coordinator: Any, group: str) -> dict[tuple[str, int], int]:
    result = await coordinator.fetch_offsets(group, None)
    assert result.error == E.none
    return {(p.topic, p.partition): p.offset for p in result.partitions}


def tombstones(store: InMemoryOffsetsStore, partition: int) -> list[Any]:
    """The decoded keys of every tombstone in a __consumer_offsets partition."""
    return [rec.decode_key(bytes(r.key)) for batch in store.read(partition)
            for r in iter_records(batch) if r.key is not None and r.value is None]


async def empty_member_group(coordinator: Any, clock: Any, group: str,
                             offsets: dict[tuple[str, int], int]) -> None:
    """A consumer group (generation 1) that committed `offsets`, then every member left."""
    generation, ids, _ = await stable_group(coordinator, clock, group)
    results = await coordinator.commit_offsets(
        commit_req(group, offsets, generation=generation, member_id=ids[0]), 9)
    assert all(r.error == E.none for r in results)
    for member in ids:
        await coordinator.leave_group(leave_req(group, (member, None)), 5)
    await settle()
    assert coordinator.group(group).state is GroupState.EMPTY


@run
async def test_offsets_of_deleted_partitions_go_and_stay_gone_after_reload():
    coord, store, clock = make_coordinator()
    await elect_all(coord)
    await empty_member_group(coord, clock, "both", {("t", 0): 3, ("t", 1): 4, ("u", 0): 5})
    await empty_member_group(coord, clock, "only-t", {("t", 0): 6})
    await coord.commit_offsets(commit_req("simple", {("t", 2): 7}), 9)
    await coord.commit_offsets(commit_req("other", {("u", 1): 8}), 9)

    assert await coord.on_partitions_deleted(T) == 4

    # other topics' offsets stay, and so does their (Empty) group
    assert await committed(coord, "both") == {("u", 0): 5}
    assert coord.group("both").state is GroupState.EMPTY
    assert await committed(coord, "other") == {("u", 1): 8}
    # Empty groups left without offsets are removed, as Kafka's cleanupGroupMetadata does
    assert coord.group("only-t") is None and coord.group("simple") is None
    assert await committed(coord, "only-t") == {}
    assert coord.describe_group("only-t").state == "Dead"
    assert {g.group_id for g in coord.list_groups()[1]} == {"both", "other"}

    # tombstones: one per removed offset; a group tombstone only for the group that had a
    # generation (a group used only for offsets never wrote its metadata, as in Kafka)
    written = [k for p in range(coord.num_partitions) for k in tombstones(store, p)]
    assert sorted((k.group, k.topic, k.partition) for k in written
                  if isinstance(k, rec.OffsetKey)) == \
        [("both", "t", 0), ("both", "t", 1), ("only-t", "t", 0), ("simple", "t", 2)]
    assert [k.group for k in written if isinstance(k, rec.GroupKey)] == ["only-t"]

    # a new coordinator reading the same log (restart, failover) does not bring them back
    again, _, _ = make_coordinator(store=store, clock=clock)
    await elect_all(again)
    assert await committed(again, "both") == {("u", 0): 5}
    assert again.group("only-t") is None and again.group("simple") is None
    assert await committed(again, "other") == {("u", 1): 8}


@run
async def test_a_group_with_members_keeps_them_and_a_recreated_topic_starts_afresh():
    coord, _store, clock = make_coordinator()
    await elect_all(coord)
    generation, ids, _ = await stable_group(coord, clock)
    await coord.commit_offsets(commit_req("g", {("t", 0): 10, ("t", 1): 11},
                                          generation=generation, member_id=ids[0]), 9)
    assert await coord.on_partitions_deleted(T[:2]) == 2
    group = coord.group("g")
    assert group.state is GroupState.STABLE and set(group.members) == set(ids)
    assert await committed(coord, "g") == {}
    assert (await coord.fetch_offsets("g", [("t", [0])])).partitions[0].offset == -1
    # commits after the deletion (the topic recreated) are kept
    await coord.commit_offsets(commit_req("g", {("t", 0): 2}, generation=generation,
                                          member_id=ids[0]), 9)
    assert await committed(coord, "g") == {("t", 0): 2}
    # deleting what no group has is a no-op
    assert await coord.on_partitions_deleted([TopicPartition("nothing", 0)]) == 0
    assert await coord.on_partitions_deleted([]) == 0
    assert await committed(coord, "g") == {("t", 0): 2}


@run
async def test_only_groups_of_led_partitions_are_cleaned():
    coord, store, _clock = make_coordinator()
    await elect_all(coord)
    await coord.commit_offsets(commit_req("simple", {("t", 0): 1, ("u", 0): 2}), 9)
    partition = coord.partition_for("simple")
    await coord.on_resigned(partition)
    assert await coord.on_partitions_deleted(T) == 0
    assert tombstones(store, partition) == []
    # whoever leads the partition next cleans only what it is told about
    await coord.on_elected(partition)
    assert await committed(coord, "simple") == {("t", 0): 1, ("u", 0): 2}


@run
async def test_deleted_while_loading_is_applied_once_loaded():
    coord, store, clock = make_coordinator()
    await elect_all(coord)
    for i in range(100):  # enough batches for the load to yield midway
        await coord.commit_offsets(commit_req("simple", {("t", 0): i, ("u", 0): i}), 9)
    partition = coord.partition_for("simple")
    again, _, _ = make_coordinator(store=store, clock=clock)
    loading = asyncio.ensure_future(again.on_elected(partition))
    await asyncio.sleep(0)
    assert again.owned_partitions == {partition: "loading"}
    assert await again.on_partitions_deleted([T[0]]) == 0
    await loading
    assert await committed(again, "simple") == {("u", 0): 99}
    assert [(k.topic, k.partition) for k in tombstones(store, partition)] == [("t", 0)]
    # a reload in between starts over: nothing is left pending
    third, _, _ = make_coordinator(store=store, clock=clock)
    await third.on_elected(partition)
    assert await committed(third, "simple") == {("u", 0): 99}


class GatedStore(InMemoryOffsetsStore):
    """Appends wait for `gate` once it is set (a commit in flight)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate: asyncio.Event | None = None

    async def append(self, partition: int, batch: bytes) -> int:
        base = await super().append(partition, batch)
        if self.gate is not None:
            await self.gate.wait()
        return base


@run
async def test_a_commit_in_flight_when_its_partition_is_deleted_is_not_applied():
    store = GatedStore()
    coord, _, _ = make_coordinator(store=store)
    await elect_all(coord)
    await coord.commit_offsets(commit_req("simple", {("u", 0): 1}), 9)
    store.gate = asyncio.Event()
    in_flight = asyncio.ensure_future(coord.commit_offsets(
        commit_req("simple", {("t", 0): 5, ("u", 0): 6}), 9))
    await settle()
    assert not in_flight.done()
    deleting = asyncio.ensure_future(coord.on_partitions_deleted([T[0]]))
    await settle()
    store.gate.set()
    assert [r.error for r in await in_flight] == [E.none, E.none]
    await deleting
    assert await committed(coord, "simple") == {("u", 0): 6}
    assert coord.group("simple").commits_in_flight == []
    store.gate = None
    await coord.commit_offsets(commit_req("simple", {("t", 0): 7}), 9)
    assert await committed(coord, "simple") == {("t", 0): 7, ("u", 0): 6}


def txn_commit(group: str, pid: int, offsets: dict[tuple[str, int], int]) -> Any:
    topics: dict[str, list[dict[str, Any]]] = {}
    for (topic, partition), offset in offsets.items():
        topics.setdefault(topic, []).append(dict(partition_index=partition,
                                                 committed_offset=offset,
                                                 committed_leader_epoch=-1,
                                                 committed_metadata=""))
    return req(28, 3, transactional_id="tx", group_id=group, producer_id=pid,
               producer_epoch=0, generation_id=-1, member_id="",
               topics=[dict(name=t, partitions=p) for t, p in topics.items()])


def commit_marker(store: InMemoryOffsetsStore, partition: int, pid: int) -> None:
    batch = build_control_batch(commit=True, producer_id=pid, producer_epoch=0,
                                coordinator_epoch=0, timestamp_ms=1)
    base = store.next_offset.get(partition, 0)
    store.batches.setdefault(partition, []).append(
        (base, base.to_bytes(8, "big", signed=True) + batch[8:]))
    store.next_offset[partition] = base + 1


@run
async def test_pending_transactional_offsets_of_deleted_partitions_go_too():
    coord, store, _ = make_coordinator()
    await elect_all(coord)
    partition = coord.partition_for("g")
    results = await coord.txn_commit_offsets(txn_commit("g", 7, {("t", 0): 3, ("u", 0): 4}), 3)
    assert [r.error for r in results] == [E.none, E.none]
    await coord.on_partitions_deleted([T[0]])
    assert set(coord.pending_transactional_offsets("g")[7]) == {TopicPartition("u", 0)}
    fetched = await coord.fetch_offsets("g", [("t", [0])], require_stable=True)
    assert fetched.partitions[0].error == E.none  # no longer unstable
    # the group holds pending offsets: it is not removed
    assert coord.group("g") is not None
    commit_marker(store, partition, 7)
    await coord.complete_txn(7, [partition], True)
    assert await committed(coord, "g") == {("u", 0): 4}
    # the transaction's records precede the tombstone in the log: a reload agrees
    again, _, _ = make_coordinator(store=store)
    await elect_all(again)
    assert await committed(again, "g") == {("u", 0): 4}


@run
async def test_a_group_whose_only_offsets_were_pending_in_a_transaction_is_removed():
    coord, _store, _ = make_coordinator()
    await elect_all(coord)
    await coord.txn_commit_offsets(txn_commit("g", 7, {("t", 0): 3}), 3)
    assert coord.group("g") is not None
    await coord.on_partitions_deleted([T[0]])
    assert coord.group("g") is None
    assert coord.pending_transactional_offsets("g") == {}


@run
async def test_many_groups_get_their_tombstones_below_the_batch_size_limit():
    """One batch per group, as Kafka: every group's tombstones of a big topic in one batch
    would be refused (RECORD_LIST_TOO_LARGE) and the offsets would come back on reload."""
    coord, store, _ = make_coordinator(**{"message.max.bytes": "20000"})
    await elect_all(coord)
    partitions = range(200)
    groups = [f"g{i}" for i in range(30)]
    for group in groups:
        results = await coord.commit_offsets(
            commit_req(group, {("big", p): p for p in partitions} | {("u", 0): 1}), 9)
        assert {r.error for r in results} == {E.none}
    removed = await coord.on_partitions_deleted(TopicPartition("big", p) for p in partitions)
    assert removed == 200 * len(groups)
    again, _, _ = make_coordinator(store=store)
    await elect_all(again)
    for group in groups:
        assert await committed(again, group) == {("u", 0): 1}
