"""RaftDriver over the in-process asyncio transport, with file-backed logs and stores."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from core.raft.driver import InProcessNetwork, NotLeaderError, RaftDriver
from core.raft.file_log import FileLog
from core.raft.node import CommittedEntry, RaftNode
from core.raft.store import FileQuorumStore

FAST = {"election_timeout_ms": 150, "election_jitter_ms": 150, "fetch_timeout_ms": 500,
        "fetch_max_wait_ms": 100, "request_timeout_ms": 100}


def make_cluster(tmp_path: Path, network: InProcessNetwork, ids: list[int], voters: list[int],
                 applied: dict[int, list[CommittedEntry]]) -> dict[int, RaftDriver]:
    drivers = {}
    for i in ids:
        node = RaftNode(i, voters, FileLog(tmp_path / f"n{i}" / "raft.log", fsync=False),
                        FileQuorumStore(tmp_path / f"n{i}" / "quorum-state"),
                        rng=random.Random(i), **FAST)
        applied[i] = []
        drivers[i] = RaftDriver(node, network.transport(i), tick_interval_ms=10,
                                on_commit=applied[i].extend)
    return drivers


async def leader_of(drivers: dict[int, RaftDriver], timeout_s: float = 5.0) -> RaftDriver:
    async with asyncio.timeout(timeout_s):
        while True:
            leaders = [d for d in drivers.values() if d.node.is_leader]
            top = max(d.node.epoch for d in drivers.values())
            if len(leaders) == 1 and leaders[0].node.epoch == top:
                return leaders[0]
            await asyncio.sleep(0.01)


async def _scenario(tmp_path: Path) -> None:
    network = InProcessNetwork()
    applied: dict[int, list[CommittedEntry]] = {}
    drivers = make_cluster(tmp_path, network, [1, 2, 3, 4], [1, 2, 3], applied)
    for d in drivers.values():
        d.start()
    try:
        leader = await leader_of(drivers)
        offset = await leader.append_and_wait([b"a", b"b"])
        follower = next(d for d in drivers.values() if d is not leader)
        with pytest.raises(NotLeaderError):
            await follower.append_and_wait([b"x"])
        for d in drivers.values():
            await d.wait_for(lambda n: n.high_watermark > offset, 5)
        await asyncio.sleep(0.05)
        for i in drivers:
            assert [e.data for e in applied[i]] == [b"a", b"b"], i

        # cut the leader off: the others elect a new one and keep committing
        network.isolated.add(leader.node.node_id)
        rest = {i: d for i, d in drivers.items() if d is not leader}
        new_leader = await leader_of(rest)
        await new_leader.append_and_wait([b"c"])
        network.isolated.clear()
        await leader.wait_for(lambda n: not n.is_leader and n.high_watermark > 0, 5)
        new_id = new_leader.node.node_id
        await drivers[4].wait_for(lambda n: n.leader_id == new_id, 5)
        await new_leader.wait_for(lambda n: bool(n.status().observers), 5)
        status = new_leader.status()
        assert status.leader_id == new_leader.node.node_id
        assert [o.replica_id for o in status.observers] == [4]

        # graceful resignation hands over quickly
        new_leader.resign()
        third = await leader_of(drivers)
        last = await third.append_and_wait([b"d"])
        for d in drivers.values():
            await d.wait_for(lambda n: n.high_watermark > last, 5)
        await asyncio.sleep(0.05)
        for i in drivers:
            assert [e.data for e in applied[i]] == [b"a", b"b", b"c", b"d"], i
    finally:
        for d in drivers.values():
            await d.stop()


@pytest.mark.timeout(30)
def test_driver_cluster_elects_replicates_and_fails_over(tmp_path: Path) -> None:
    asyncio.run(_scenario(tmp_path))


def test_restart_from_files_keeps_committed_entries(tmp_path: Path) -> None:
    async def first() -> None:
        network = InProcessNetwork()
        drivers = make_cluster(tmp_path, network, [1, 2, 3], [1, 2, 3], {})
        for d in drivers.values():
            d.start()
        leader = await leader_of(drivers)
        await leader.append_and_wait([b"kept"])
        for d in drivers.values():
            await d.stop()

    async def second() -> None:
        network = InProcessNetwork()
        applied: dict[int, list[CommittedEntry]] = {}
        drivers = make_cluster(tmp_path, network, [1, 2, 3], [1, 2, 3], applied)
        for d in drivers.values():
            d.start()
        leader = await leader_of(drivers)
        last = await leader.append_and_wait([b"new"])
        for d in drivers.values():
            await d.wait_for(lambda n: n.high_watermark > last, 5)
        await asyncio.sleep(0.05)
        for d in drivers.values():
            await d.stop()
        for entries in applied.values():
            assert [e.data for e in entries] == [b"kept", b"new"]

    asyncio.run(first())
    asyncio.run(second())
