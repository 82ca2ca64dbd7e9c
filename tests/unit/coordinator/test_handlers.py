"""The group handlers over every version they register: requests decode, responses encode."""

from __future__ import annotations

import asyncio
from typing import Any

from kio.schema.errors import ErrorCode as E

import core.broker.handlers  # noqa: F401 - registers the handlers
from core.broker.api import REGISTRY, RequestContext
from core.protocol.codec import RequestHeader, decode_response, encode_response, response_class
from tests.unit.coordinator.harness import (
    assignment_for,
    elect_all,
    make_coordinator,
    req,
)


class FakeBroker:
    def __init__(self, coordinator: Any) -> None:
        self.group_coordinator = coordinator

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


