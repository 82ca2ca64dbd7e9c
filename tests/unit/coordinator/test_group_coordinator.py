"""The classic group coordinator's state machine, driven by a fake clock over an in-memory store."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any

from kio.schema.errors import ErrorCode as E

from core.coordinator.group import GroupState
from tests.unit.coordinator.harness import (
    assignment_for,
    commit_req,
    elect_all,
    hb_req,
    join,
    join_req,
    leave_req,
    make_coordinator,
    pass_initial_delay,
    settle,
    sync_req,
)


def run(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        asyncio.run(asyncio.wait_for(fn(*args, **kwargs), 10))
    return wrapper


async def stable_group(coord, clock, group="g", n=2, **kwargs):
    """n members joined and synced; returns (generation, [member ids], leader).

    Every member first gets its id (MEMBER_ID_REQUIRED); pending members hold the join phase
    open until all of them joined, so they land in one generation.
    """
    pending = [await coord.join_group(join_req(group, **kwargs), 9, "c", "/h") for _ in range(n)]
    assert all(p.error == E.member_id_required for p in pending)
    futures = [asyncio.ensure_future(coord.join_group(join_req(group, p.member_id, **kwargs),
                                                      9, "c", "/h")) for p in pending]
    await settle()
    results = [await f for f in futures]
    assert all(r.error == E.none for r in results), results
    generation = results[0].generation_id
    leader = results[0].leader_id
    ids = [r.member_id for r in results]
    assignments = {m: assignment_for(i) for i, m in enumerate(ids)}
    syncs = []
    for r in results:
        syncs.append(asyncio.ensure_future(coord.sync_group(
            sync_req(group, generation, r.member_id,
                     assignments if r.member_id == leader else None,
                     instance_id=kwargs.get("instance_id")), 5)))
    for s in syncs:
        assert (await s).error == E.none
    assert coord.group(group).state is GroupState.STABLE
    return generation, ids, leader


@run
async def test_first_join_requires_member_id_then_single_member_group_stabilizes():
    coord, _store, _clock = make_coordinator()
    await elect_all(coord)
    first = await coord.join_group(join_req("g"), 9, "cli", "/h")
    assert first.error == E.member_id_required
    assert first.member_id.startswith("cli-")
    result = await coord.join_group(join_req("g", first.member_id), 9, "cli", "/h")
    assert result.error == E.none
    assert result.generation_id == 1
    assert result.leader_id == first.member_id
    assert result.protocol_name == "range"
    assert [m[0] for m in result.members] == [first.member_id]
    sync = await coord.sync_group(
        sync_req("g", 1, first.member_id, {first.member_id: assignment_for(0, 1)}), 5)
    assert sync.error == E.none and sync.assignment == assignment_for(0, 1)
    assert coord.group("g").state is GroupState.STABLE
    assert await coord.heartbeat(hb_req("g", 1, first.member_id), 4) == E.none


@run
async def test_join_v3_gets_member_id_directly():
    coord, _, _ = make_coordinator()
    await elect_all(coord)
    result = await coord.join_group(join_req("g", version=3), 3, "cli", "/h")
    assert result.error == E.none and result.member_id


@run
async def test_two_members_join_sync_and_followers_get_no_member_list():
    coord, _, clock = make_coordinator()
    await elect_all(coord)
    generation, ids, leader = await stable_group(coord, clock)
    assert generation == 1 and leader in ids
    group = coord.group("g")
    assert {m: group.members[m].assignment for m in ids} == \
        {m: assignment_for(i) for i, m in enumerate(ids)}


@run
async def test_new_member_triggers_rebalance_and_heartbeat_says_rebalance_in_progress():
    coord, _, clock = make_coordinator()
    await elect_all(coord)
    generation, ids, _leader = await stable_group(coord, clock)
    newcomer = await join(coord, "g")
    await settle()
    assert coord.group("g").state is GroupState.PREPARING_REBALANCE
    for m in ids:
        assert await coord.heartbeat(hb_req("g", generation, m), 4) == E.rebalance_in_progress
    # commits with the current generation are still accepted while preparing (cooperative)
    res = await coord.commit_offsets(commit_req("g", {("t", 0): 5}, generation=generation,
                                                member_id=ids[0]), 9)
    assert res[0].error == E.none
    rejoins = [asyncio.ensure_future(coord.join_group(join_req("g", m), 9, "c", "/h"))
               for m in ids]
    results = [await f for f in [*rejoins, newcomer]]
    assert {r.generation_id for r in results} == {generation + 1}
    assert coord.group("g").state is GroupState.COMPLETING_REBALANCE
    # old generation is now illegal
    assert await coord.heartbeat(hb_req("g", generation, ids[0]), 4) == E.illegal_generation
    # a heartbeat while completing the rebalance is fine
    assert await coord.heartbeat(hb_req("g", generation + 1, ids[0]), 4) == E.none
    # commits while completing the rebalance get REBALANCE_IN_PROGRESS
    res = await coord.commit_offsets(commit_req("g", {("t", 0): 6}, generation=generation + 1,
                                                member_id=ids[0]), 9)
    assert res[0].error == E.rebalance_in_progress


@run
async def test_unknown_member_and_stale_generation_errors():
    coord, _, clock = make_coordinator()
    await elect_all(coord)
    generation, ids, _ = await stable_group(coord, clock)
    assert await coord.heartbeat(hb_req("g", generation, "nobody"), 4) == E.unknown_member_id
    assert await coord.heartbeat(hb_req("nogroup", 1, "x"), 4) == E.unknown_member_id
    assert await coord.heartbeat(hb_req("g", generation - 1, ids[0]), 4) == E.illegal_generation
    sync = await coord.sync_group(sync_req("g", generation + 5, ids[0]), 5)
    assert sync.error == E.illegal_generation
    res = await coord.commit_offsets(commit_req("g", {("t", 0): 1}, generation=generation,
                                                member_id="nobody"), 9)
    assert res[0].error == E.unknown_member_id
    res = await coord.commit_offsets(commit_req("g", {("t", 0): 1}, generation=generation + 1,
                                                member_id=ids[0]), 9)
    assert res[0].error == E.illegal_generation
    # a simple consumer may not commit for a group with members
    res = await coord.commit_offsets(commit_req("g", {("t", 0): 1}), 9)
    assert res[0].error == E.unknown_member_id
    joined = await coord.join_group(join_req("g", "nobody"), 9, "c", "/h")
    assert joined.error == E.unknown_member_id


@run
async def test_session_timeout_removes_member_and_others_rebalance():
    coord, _, clock = make_coordinator()
    await elect_all(coord)
    generation, ids, _leader = await stable_group(coord, clock, session_ms=1000)
    alive, dead = ids
    for _ in range(2):
        clock.advance_ms(600)
        assert await coord.heartbeat(hb_req("g", generation, alive), 4) == E.none
        await coord.tick()
    group = coord.group("g")
    assert dead not in group.members
    assert group.state is GroupState.PREPARING_REBALANCE
    assert await coord.heartbeat(hb_req("g", generation, alive), 4) == E.rebalance_in_progress
    result = await coord.join_group(join_req("g", alive, session_ms=1000), 9, "c", "/h")
    assert result.error == E.none and result.generation_id == generation + 1
    assert result.leader_id == alive and [m[0] for m in result.members] == [alive]


@run
async def test_rebalance_timeout_drops_members_that_do_not_rejoin():
    coord, _, clock = make_coordinator()
    await elect_all(coord)
    generation, ids, _ = await stable_group(coord, clock, session_ms=60_000, rebalance_ms=5000)
    stays, _silent = ids
    pending = asyncio.ensure_future(coord.join_group(
        join_req("g", stays, session_ms=60_000, rebalance_ms=5000, topics=("t", "u")),
        9, "c", "/h"))
    await settle()
    assert not pending.done()
    clock.advance_ms(5001)
    await coord.tick()
    result = await pending
    assert result.error == E.none and result.generation_id == generation + 1
    assert list(coord.group("g").members) == [stays]


@run
async def test_leave_group_batched_and_last_member_empties_group():
    coord, _store, clock = make_coordinator()
    await elect_all(coord)
    generation, ids, _ = await stable_group(coord, clock)
    result = await coord.leave_group(leave_req("g", (ids[0], None), ("ghost", None)), 5)
    assert [e for _, _, e in result.members] == [E.none, E.unknown_member_id]
    assert coord.group("g").state is GroupState.PREPARING_REBALANCE
    result = await coord.leave_group(leave_req("g", (ids[1], None)), 5)
    assert result.members[0][2] == E.none
    await settle()
    group = coord.group("g")
    assert group.state is GroupState.EMPTY and group.generation_id == generation + 1


@run
async def test_member_leaving_during_completing_rebalance_fails_pending_syncs():
    coord, _, clock = make_coordinator(**{"group.initial.rebalance.delay.ms": "100"})
    await elect_all(coord)
    futures = [await join(coord, "g") for _ in range(2)]
    await pass_initial_delay(coord, clock)
    results = [await f for f in futures]
    follower = next(r for r in results if r.member_id != r.leader_id)
    leader = next(r for r in results if r.member_id == r.leader_id)
    waiting = asyncio.ensure_future(coord.sync_group(
        sync_req("g", follower.generation_id, follower.member_id), 5))
    await settle()
    assert not waiting.done()
    await coord.leave_group(leave_req("g", (leader.member_id, None)), 5)
    assert (await waiting).error == E.rebalance_in_progress


@run
async def test_static_member_rejoin_keeps_assignment_without_rebalance():
    coord, _, clock = make_coordinator(**{"group.initial.rebalance.delay.ms": "100"})
    await elect_all(coord)
    a_join = await join(coord, "g", instance_id="a")
    b_join = await join(coord, "g", instance_id="b")
    await pass_initial_delay(coord, clock)
    a, b = await a_join, await b_join
    assert a.error == b.error == E.none and a.generation_id == b.generation_id == 1
    # both joined in one generation; sync
    assert a.leader_id == b.leader_id
    leader, follower = (a, b) if a.member_id == a.leader_id else (b, a)
    fsync = asyncio.ensure_future(coord.sync_group(
        sync_req("g", 1, follower.member_id, instance_id="b" if follower is b else "a"), 5))
    lsync = await coord.sync_group(sync_req(
        "g", 1, leader.member_id,
        {leader.member_id: assignment_for(0), follower.member_id: assignment_for(1)},
        instance_id="a" if leader is a else "b"), 5)
    assert lsync.error == E.none and (await fsync).assignment == assignment_for(1)
    follower_instance = "b" if follower is b else "a"
    # the follower restarts: same instance id, no member id
    again = await coord.join_group(join_req("g", instance_id=follower_instance), 9, "c", "/h")
    assert again.error == E.none and again.member_id != follower.member_id
    assert again.generation_id == 1 and not again.skip_assignment
    assert coord.group("g").state is GroupState.STABLE
    sync = await coord.sync_group(sync_req("g", 1, again.member_id,
                                           instance_id=follower_instance), 5)
    assert sync.assignment == assignment_for(1)
    # the old incarnation is fenced
    assert await coord.heartbeat(hb_req("g", 1, follower.member_id, follower_instance), 4) == \
        E.fenced_instance_id
    # the leader restarting gets skip_assignment and the member list (v9)
    leader_instance = "a" if leader is a else "b"
    lagain = await coord.join_group(join_req("g", instance_id=leader_instance), 9, "c", "/h")
    assert lagain.skip_assignment and lagain.leader_id == lagain.member_id
    assert len(lagain.members) == 2
    assert coord.group("g").state is GroupState.STABLE


@run
async def test_static_member_survives_session_timeout_only_if_back_in_time():
    coord, _, clock = make_coordinator()
    await elect_all(coord)
    r = await (await join(coord, "g", instance_id="a", session_ms=1000))
    await coord.sync_group(sync_req("g", 1, r.member_id, {r.member_id: b""}, instance_id="a"), 5)
    clock.advance_ms(1500)
    await coord.tick()
    group = coord.group("g")
    assert group.state is GroupState.EMPTY and not group.members
    assert group.generation_id == 2


@run
async def test_leave_by_instance_id_and_fencing():
    coord, _, _clock = make_coordinator()
    await elect_all(coord)
    r = await (await join(coord, "g", instance_id="a"))
    res = await coord.leave_group(leave_req("g", ("wrong", "a")), 5)
    assert res.members[0][2] == E.fenced_instance_id
    res = await coord.leave_group(leave_req("g", ("", "a"), ("", "zzz")), 5)
    assert [m[2] for m in res.members] == [E.none, E.unknown_member_id]
    assert r.member_id not in coord.group("g").members


@run
async def test_initial_rebalance_delay_collects_members():
    coord, _, clock = make_coordinator(**{"group.initial.rebalance.delay.ms": "3000"})
    await elect_all(coord)
    first = await join(coord, "g")
    await settle()
    assert not first.done()
    clock.advance_ms(2000)
    await coord.tick()
    second = await join(coord, "g")  # extends the delay
    await settle()
    clock.advance_ms(1500)
    await coord.tick()
    await settle()
    assert not first.done() and not second.done()
    clock.advance_ms(3000)
    await coord.tick()
    results = [await first, await second]
    assert {r.generation_id for r in results} == {1}
    assert len(coord.group("g").members) == 2


@run
async def test_protocol_selection_and_inconsistent_protocols():
    coord, _, clock = make_coordinator(**{"group.initial.rebalance.delay.ms": "100"})
    await elect_all(coord)
    sub = b"\0\0\0\0\0\0\xff\xff\xff\xff"
    first = await join(coord, "g", protocols=[("cooperative-sticky", sub), ("range", sub)])
    second = await join(coord, "g", protocols=[("range", sub), ("cooperative-sticky", sub)])
    third = await join(coord, "g", protocols=[("range", sub)])
    await pass_initial_delay(coord, clock)
    results = [await f for f in (first, second, third)]
    assert {r.protocol_name for r in results} == {"range"}
    bad = await coord.join_group(join_req("g", protocols=[("roundrobin", sub)]), 9, "c", "/h")
    assert bad.error == E.inconsistent_group_protocol
    other_type = await coord.join_group(join_req("g", protocol_type="connect"), 9, "c", "/h")
    assert other_type.error == E.inconsistent_group_protocol


@run
async def test_session_timeout_bounds_and_invalid_group_and_not_coordinator():
    coord, _, _ = make_coordinator(**{"group.min.session.timeout.ms": "6000"})
    res = await coord.join_group(join_req("g", session_ms=6000), 9, "c", "/h")
    assert res.error == E.not_coordinator
    await elect_all(coord)
    res = await coord.join_group(join_req("g", session_ms=1000), 9, "c", "/h")
    assert res.error == E.invalid_session_timeout
    res = await coord.join_group(join_req("", session_ms=6000), 9, "c", "/h")
    assert res.error == E.invalid_group_id


@run
async def test_simple_consumer_commit_and_fetch():
    coord, _, _ = make_coordinator()
    await elect_all(coord)
    res = await coord.commit_offsets(commit_req("simple", {("t", 0): 10, ("t", 1): 20},
                                                metadata="m"), 9)
    assert [r.error for r in res] == [E.none, E.none]
    fetched = await coord.fetch_offsets("simple", [("t", [0, 1, 2])])
    assert [(p.partition, p.offset, p.metadata, p.leader_epoch) for p in fetched.partitions] == \
        [(0, 10, "m", 3), (1, 20, "m", 3), (2, -1, "", -1)]
    everything = await coord.fetch_offsets("simple", None)
    assert len(everything.partitions) == 2
    assert coord.group("simple").state is GroupState.EMPTY
    # a member-ish commit to an unknown group is rejected
    res = await coord.commit_offsets(commit_req("other", {("t", 0): 1}, generation=3,
                                                member_id="m"), 9)
    assert res[0].error == E.illegal_generation
    assert coord.group("other") is None


@run
async def test_oversized_offset_metadata_and_oversized_group_metadata():
    coord, _store, _clock = make_coordinator(**{"message.max.bytes": "20000"})
    await elect_all(coord)
    res = await coord.commit_offsets(commit_req("g", {("t", 0): 1}, metadata="x" * 5000), 9)
    assert res[0].error == E.offset_metadata_too_large
    # an assignment too big for one __consumer_offsets record fails the sync, as in Kafka
    r = await (await join(coord, "g"))
    sync = await coord.sync_group(sync_req("g", 1, r.member_id, {r.member_id: b"x" * 50_000}), 5)
    assert sync.error == E.unknown_server_error
    assert coord.group("g").state is GroupState.PREPARING_REBALANCE


@run
async def test_store_failure_maps_to_not_coordinator():
    coord, store, _ = make_coordinator()
    await elect_all(coord)
    partition = coord.partition_for("g")
    store.fenced.add(partition)
    res = await coord.commit_offsets(commit_req("g", {("t", 0): 1}), 9)
    assert res[0].error == E.not_coordinator


@run
async def test_state_is_reloaded_after_restart():
    coord, store, clock = make_coordinator()
    await elect_all(coord)
    generation, ids, leader = await stable_group(coord, clock, session_ms=5000)
    res = await coord.commit_offsets(commit_req("g", {("t", 0): 42, ("t", 1): 7},
                                                generation=generation, member_id=ids[0]), 9)
    assert all(r.error == E.none for r in res)
    await coord.commit_offsets(commit_req("simple", {("u", 3): 99}), 9)
    await coord.commit_offsets(commit_req("simple", {("u", 3): 100}), 9)
    await coord.commit_offsets(commit_req("gone", {("u", 0): 1}), 9)
    assert (await coord.delete_groups(["gone"]))[0][1] == E.none

    # "restart": a new coordinator over the same store
    again, _, _ = make_coordinator(store=store, clock=clock)
    await elect_all(again)
    group = again.group("g")
    assert group.state is GroupState.STABLE and group.generation_id == generation
    assert set(group.members) == set(ids) and group.leader_id == leader
    assert group.members[ids[1]].assignment == assignment_for(1)
    fetched = await again.fetch_offsets("g", None)
    assert [(p.topic, p.partition, p.offset) for p in fetched.partitions] == \
        [("t", 0, 42), ("t", 1, 7)]
    assert (await again.fetch_offsets("simple", [("u", [3])])).partitions[0].offset == 100
    assert again.group("gone") is None
    # members keep heartbeating with the loaded generation
    assert await again.heartbeat(hb_req("g", generation, ids[0]), 4) == E.none
    # and the ones that do not are expired after their session timeout
    clock.advance_ms(4000)
    assert await again.heartbeat(hb_req("g", generation, ids[0]), 4) == E.none
    clock.advance_ms(2000)
    await again.tick()
    assert ids[1] not in again.group("g").members


@run
async def test_loading_and_resignation():
    coord, _store, clock = make_coordinator()
    await elect_all(coord)
    partition = coord.partition_for("g")
    _, ids, _ = await stable_group(coord, clock)
    r = coord.group("g").members[ids[0]]
    # one member rejoins and waits for the other; resignation answers it
    other = asyncio.ensure_future(coord.join_group(join_req("g", r.member_id, topics=("x",)),
                                                   9, "c", "/h"))
    await settle()
    assert not other.done()
    await coord.on_resigned(partition)
    assert (await other).error == E.not_coordinator
    assert await coord.heartbeat(hb_req("g", 1, r.member_id), 4) == E.not_coordinator
    assert (await coord.fetch_offsets("g", None)).error == E.not_coordinator


@run
async def test_delete_groups_and_offset_delete():
    coord, _, clock = make_coordinator()
    await elect_all(coord)
    generation, ids, _ = await stable_group(coord, clock)
    await coord.commit_offsets(commit_req("g", {("t", 0): 5, ("other", 0): 6},
                                          generation=generation, member_id=ids[0]), 9)
    results = await coord.delete_groups(["g", "missing"])
    assert results == [("g", E.non_empty_group), ("missing", E.group_id_not_found)]
    deleted = await coord.delete_offsets("g", [("t", [0]), ("other", [0])])
    assert deleted.error == E.none
    assert {(p.topic, p.error) for p in deleted.partitions} == \
        {("t", E.group_subscribed_to_topic), ("other", E.none)}
    assert [p.topic for p in (await coord.fetch_offsets("g", None)).partitions] == ["t"]
    for m in ids:
        await coord.leave_group(leave_req("g", (m, None)), 5)
    await settle()
    assert coord.group("g").state is GroupState.EMPTY
    deleted = await coord.delete_offsets("g", [("t", [0])])
    assert deleted.error == E.none and deleted.partitions[0].error == E.none
    assert (await coord.delete_groups(["g"])) == [("g", E.none)]
    assert coord.group("g") is None
    assert (await coord.delete_offsets("g", [("t", [0])])).error == E.group_id_not_found


@run
async def test_list_and_describe_groups_and_console_view():
    coord, _, clock = make_coordinator()
    await elect_all(coord)
    _generation, ids, _leader = await stable_group(coord, clock)
    await coord.commit_offsets(commit_req("simple", {("t", 0): 1}), 9)
    error, listed = coord.list_groups()
    assert error == E.none
    assert {(g.group_id, g.state, g.protocol_type) for g in listed} == \
        {("g", "Stable", "consumer"), ("simple", "Empty", "")}
    _, stable = coord.list_groups(states=["stable"])
    assert [g.group_id for g in stable] == ["g"]
    described = coord.describe_group("g")
    assert described.state == "Stable" and described.protocol == "range"
    assert {m.member_id for m in described.members} == set(ids)
    assert all(m.assignment for m in described.members)
    assert coord.describe_group("nope").state == "Dead"
    views = {v.group_id: v for v in coord.groups_overview()}
    assert views["simple"].offsets == {("t", 0): 1}
    assert sorted(p for m in views["g"].members for p in m.assignment["t"]) == [0, 1]


@run
async def test_offset_retention_expires_offsets_of_empty_groups():
    coord, store, clock = make_coordinator(**{"offsets.retention.minutes": "1"})
    await elect_all(coord)
    await coord.commit_offsets(commit_req("simple", {("t", 0): 1}), 9)
    clock.advance_ms(30_000)
    assert await coord.expire_offsets() == 0
    clock.advance_ms(31_000)
    assert await coord.expire_offsets() == 1
    assert coord.group("simple") is None
    again, _, _ = make_coordinator(store=store, clock=clock)
    await elect_all(again)
    assert again.group("simple") is None


@run
async def test_pending_member_expires_if_it_never_comes_back():
    coord, _, clock = make_coordinator()
    await elect_all(coord)
    first = await coord.join_group(join_req("g", session_ms=1000), 9, "c", "/h")
    assert first.error == E.member_id_required
    clock.advance_ms(1001)
    await coord.tick()
    assert coord.group("g") is None
    late = await coord.join_group(join_req("g", first.member_id), 9, "c", "/h")
    assert late.error == E.unknown_member_id


@run
async def test_members_that_never_sync_are_removed():
    coord, _, clock = make_coordinator(**{"group.initial.rebalance.delay.ms": "100"})
    await elect_all(coord)
    futures = [await join(coord, "g", rebalance_ms=2000) for _ in range(2)]
    await pass_initial_delay(coord, clock)
    results = [await f for f in futures]
    leader = next(r for r in results if r.member_id == r.leader_id)
    sync = asyncio.ensure_future(coord.sync_group(
        sync_req("g", 1, leader.member_id, {r.member_id: b"" for r in results}), 5))
    assert (await sync).error == E.none
    clock.advance_ms(2001)
    await coord.tick()
    group = coord.group("g")
    assert list(group.members) == [leader.member_id]
    assert group.state is GroupState.PREPARING_REBALANCE
