"""The group handlers over every version they register: requests decode, responses encode."""

from __future__ import annotations

import asyncio
from typing import Any

from kio.schema.errors import ErrorCode as E

import core.broker.handlers  # noqa: F401 - registers the handlers
from core.broker.api import REGISTRY, RequestContext
from core.common.types import TopicPartition
from core.metadata.image import MetadataImage
from core.metadata.records import PartitionCreated, TopicCreated
from core.protocol.codec import RequestHeader, decode_response, encode_response, response_class
from tests.unit.coordinator.harness import (
    assignment_for,
    commit_req,
    elect_all,
    make_coordinator,
    req,
)

#: the topics the tests commit to: topic -> partition count
TOPICS = {"t": 4, "u": 2}


def metadata_image(topics: dict[str, int] = TOPICS) -> MetadataImage:
    """A metadata image holding `topics` (one replica, on broker 1)."""
    records: list[Any] = []
    for name, count in topics.items():
        records.append(TopicCreated(name, f"id-{name}"))
        records += [PartitionCreated(name, p, [1], [1], 1) for p in range(count)]
    return MetadataImage().apply_batch(records, len(records) - 1)


class FakeBroker:
    def __init__(self, coordinator: Any, image: MetadataImage | None = None) -> None:
        self.group_coordinator = coordinator
        self.image = image if image is not None else metadata_image()

    async def coordinator_for(self, key_type: int, key: str) -> tuple[int, int, str, int]:
        if key_type == 1:
            return int(E.coordinator_not_available), -1, "", -1
        return 0, 1, "127.0.0.1", 9092


async def call(broker: FakeBroker, key: int, version: int, request: Any) -> Any:
    ctx = RequestContext(header=RequestHeader(key, version, 7, "tester"),
                         client_host="127.0.0.1", client_port=5555, broker=broker)
    response = await REGISTRY[key].handler(ctx, request)
    assert isinstance(response, response_class(key, version))
    frame = encode_response(key, version, 7, response)
    _, decoded = decode_response(key, version, frame[4:])
    return decoded


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 10))


def test_registered_versions():
    expected = {10: (0, 4), 11: (0, 9), 14: (0, 5), 12: (0, 4), 13: (0, 5), 8: (2, 9),
                9: (1, 9), 15: (0, 5), 16: (0, 5), 42: (0, 2), 47: (0, 0)}
    for key, (lo, hi) in expected.items():
        assert (REGISTRY[key].min_version, REGISTRY[key].max_version) == (lo, hi)


def test_group_lifecycle_through_every_version():
    async def body() -> None:
        for version in range(10):
            coordinator, _, _ = make_coordinator()
            await elect_all(coordinator)
            broker = FakeBroker(coordinator)
            group = f"g{version}"
            join = dict(group_id=group, session_timeout=10_000, rebalance_timeout=10_000,
                        member_id="", protocol_type="consumer",
                        protocols=[{"name": "range", "metadata": b"\0\0\0\0\0\0\0\0\0\0"}])
            r = await call(broker, 11, version, req(11, version, **join))
            if version >= 4:
                assert r.error_code == E.member_id_required
                join["member_id"] = r.member_id
                r = await call(broker, 11, version, req(11, version, **join))
            assert r.error_code == E.none, r
            assert r.leader == r.member_id and r.generation_id == 1
            member = r.member_id
            sync_version = min(version, 5)
            s = await call(broker, 14, sync_version, req(
                14, sync_version, group_id=group, generation_id=1, member_id=member,
                protocol_type="consumer", protocol_name="range",
                assignments=[{"member_id": member, "assignment": assignment_for(0)}]))
            assert s.error_code == E.none and s.assignment == assignment_for(0)
            hb_version = min(version, 4)
            h = await call(broker, 12, hb_version, req(12, hb_version, group_id=group,
                                                       generation_id=1, member_id=member))
            assert h.error_code == E.none
            commit_version = min(max(version, 2), 9)
            c = await call(broker, 8, commit_version, req(
                8, commit_version, group_id=group, generation_id_or_member_epoch=1,
                member_id=member, topics=[{"name": "t", "partitions": [
                    {"partition_index": 0, "committed_offset": 12,
                     "committed_metadata": "meta"}]}]))
            assert c.topics[0].partitions[0].error_code == E.none
            fetch_version = min(max(version, 1), 9)
            if fetch_version >= 8:
                f = await call(broker, 9, fetch_version, req(9, fetch_version, groups=[
                    {"group_id": group, "topics": None}]))
                parts = f.groups[0].topics[0].partitions
            else:
                f = await call(broker, 9, fetch_version, req(
                    9, fetch_version, group_id=group,
                    topics=[{"name": "t", "partition_indexes": [0, 1]}]))
                parts = f.topics[0].partitions
            assert parts[0].committed_offset == 12 and parts[0].metadata == "meta"
            dv = min(version, 5)
            d = await call(broker, 15, dv, req(15, dv, groups=[group, "nope"],
                                               include_authorized_operations=True))
            assert d.groups[0].group_state == "Stable"
            assert d.groups[0].members[0].member_assignment == assignment_for(0)
            assert d.groups[1].group_state == "Dead"
            lv = min(version, 5)
            listed = await call(broker, 16, lv, req(16, lv, states_filter=["Stable"]))
            assert [g.group_id for g in listed.groups] == [group]
            leave_version = min(version, 5)
            if leave_version >= 3:
                leave = req(13, leave_version, group_id=group, members=[{"member_id": member}])
            else:
                leave = req(13, leave_version, group_id=group, member_id=member)
            lr = await call(broker, 13, leave_version, leave)
            assert lr.error_code == E.none
            await asyncio.sleep(0)
            od = await call(broker, 47, 0, req(47, 0, group_id=group, topics=[
                {"name": "t", "partitions": [{"partition_index": 0}]}]))
            assert od.error_code == E.none
            gv = min(version, 2)
            dg = await call(broker, 42, gv, req(42, gv, groups_names=[group, "nope"]))
            assert [r.error_code for r in dg.results] == [E.none, E.group_id_not_found]

    run(body())


def test_find_coordinator_single_and_batched():
    async def body() -> None:
        coordinator, _, _ = make_coordinator()
        broker = FakeBroker(coordinator)
        for version in range(4):
            r = await call(broker, 10, version, req(10, version, key="g", key_type=0))
            assert (r.error_code, r.node_id, r.host, r.port) == (E.none, 1, "127.0.0.1", 9092)
        r = await call(broker, 10, 4, req(10, 4, key_type=0, coordinator_keys=["a", "b"]))
        assert [(c.key, c.node_id) for c in r.coordinators] == [("a", 1), ("b", 1)]
        r = await call(broker, 10, 4, req(10, 4, key_type=1, coordinator_keys=["tx"]))
        assert r.coordinators[0].error_code == E.coordinator_not_available

    run(body())


def test_no_coordinator_answers_coordinator_not_available():
    async def body() -> None:
        broker = FakeBroker(None)
        r = await call(broker, 12, 4, req(12, 4, group_id="g", generation_id=1, member_id="m"))
        assert r.error_code == E.coordinator_not_available
        r = await call(broker, 11, 9, req(11, 9, group_id="g", session_timeout=10_000,
                                          member_id="", protocol_type="consumer",
                                          protocols=[]))
        assert r.error_code == E.coordinator_not_available

    run(body())


def test_not_coordinator_in_offset_fetch_v1_is_per_partition():
    async def body() -> None:
        coordinator, _, _ = make_coordinator()  # leads nothing
        broker = FakeBroker(coordinator)
        r = await call(broker, 9, 1, req(9, 1, group_id="g",
                                         topics=[{"name": "t", "partition_indexes": [0]}]))
        assert r.topics[0].partitions[0].error_code == E.not_coordinator
        r = await call(broker, 9, 5, req(9, 5, group_id="g", topics=None))
        assert r.error_code == E.not_coordinator

    run(body())




def _partition_errors(response: Any) -> dict[tuple[str, int], E]:
    return {(t.name, p.partition_index): p.error_code
            for t in response.topics for p in t.partitions}


def test_commits_to_partitions_missing_from_the_metadata_are_refused():
    """OffsetCommit / TxnOffsetCommit: an unknown topic or a partition the topic does not have
    gets UNKNOWN_TOPIC_OR_PARTITION and is not stored; the known partitions are committed."""
    async def body() -> None:
        coordinator, _, _ = make_coordinator()
        await elect_all(coordinator)
        broker = FakeBroker(coordinator)
        topics = [{"name": "t", "partitions": [
                      {"partition_index": 1, "committed_offset": 5, "committed_metadata": ""},
                      {"partition_index": 9, "committed_offset": 5, "committed_metadata": ""}]},
                  {"name": "gone", "partitions": [
                      {"partition_index": 0, "committed_offset": 5, "committed_metadata": ""}]}]
        r = await call(broker, 8, 9, req(8, 9, group_id="g", generation_id_or_member_epoch=-1,
                                         member_id="", topics=topics))
        assert _partition_errors(r) == {("t", 1): E.none,
                                        ("t", 9): E.unknown_topic_or_partition,
                                        ("gone", 0): E.unknown_topic_or_partition}
        fetched = await coordinator.fetch_offsets("g", None)
        assert [(p.topic, p.partition, p.offset) for p in fetched.partitions] == [("t", 1, 5)]

        r = await call(broker, 28, 3, req(28, 3, transactional_id="tx", group_id="g",
                                          producer_id=7, producer_epoch=0, generation_id=-1,
                                          member_id="", group_instance_id=None, topics=topics))
        assert _partition_errors(r) == {("t", 1): E.none,
                                        ("t", 9): E.unknown_topic_or_partition,
                                        ("gone", 0): E.unknown_topic_or_partition}
        pending = coordinator.pending_transactional_offsets("g")
        assert {pid: set(offsets) for pid, offsets in pending.items()} == {
            7: {TopicPartition("t", 1)}}

        # nothing known left: the coordinator is not asked (no coordinator: still unknown)
        r = await call(FakeBroker(None), 8, 9, req(
            8, 9, group_id="g", generation_id_or_member_epoch=-1, member_id="",
            topics=topics[1:]))
        assert _partition_errors(r) == {("gone", 0): E.unknown_topic_or_partition}
        r = await call(FakeBroker(None), 8, 9, req(
            8, 9, group_id="g", generation_id_or_member_epoch=-1, member_id="",
            topics=topics))
        assert _partition_errors(r) == {("t", 1): E.coordinator_not_available,
                                        ("t", 9): E.unknown_topic_or_partition,
                                        ("gone", 0): E.unknown_topic_or_partition}

    run(body())


def test_offset_delete_of_partitions_missing_from_the_metadata():
    """OffsetDelete: missing partitions answer UNKNOWN_TOPIC_OR_PARTITION unless the group
    itself is in error (then only the group error, as Kafka)."""
    async def body() -> None:
        coordinator, _, _ = make_coordinator()
        await elect_all(coordinator)
        broker = FakeBroker(coordinator)
        await coordinator.commit_offsets(commit_req("g", {("t", 0): 3, ("u", 1): 4}), 9)
        r = await call(broker, 47, 0, req(47, 0, group_id="g", topics=[
            {"name": "t", "partitions": [{"partition_index": 0}, {"partition_index": 7}]},
            {"name": "gone", "partitions": [{"partition_index": 0}]}]))
        assert r.error_code == E.none
        assert _partition_errors(r) == {("t", 0): E.none,
                                        ("t", 7): E.unknown_topic_or_partition,
                                        ("gone", 0): E.unknown_topic_or_partition}
        fetched = await coordinator.fetch_offsets("g", None)
        assert [(p.topic, p.partition) for p in fetched.partitions] == [("u", 1)]
        r = await call(broker, 47, 0, req(47, 0, group_id="nope", topics=[
            {"name": "gone", "partitions": [{"partition_index": 0}]}]))
        assert r.error_code == E.group_id_not_found and r.topics == ()

    run(body())
