"""RaftMetadataLog.append answers "committed" only for its own entries.

An append waits until the high watermark passes its last entry. If the leader is cut off
before that, the next leader writes other entries at those offsets, and once the old leader
rejoins, truncates and fetches them, its high watermark passes the offset too: the append
must then fail (NotControllerError: the controller's operation did not happen), not report
success for what another leader committed there (a CreateTopics answered OK for a topic that
does not exist). The RaftMetadataLog under test drives a node of the seeded simulation
(tests/simulation/sim.py) instead of its own, its messages carried by the simulation.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from core.broker.raft_io import RaftMetadataLog
from core.common.errors import NotControllerError
from core.raft.node import RaftNode
from tests.simulation.sim import Faults, Simulation

pytestmark = pytest.mark.timeout(60)


def metadata_log(sim: Simulation, node: RaftNode, directory: Path) -> RaftMetadataLog:
    voters = {i: ("127.0.0.1", 1) for i in sim.voter_ids}
    log = RaftMetadataLog(node.node_id, voters, directory, "c", election_timeout_ms=1000,
                          fetch_timeout_ms=2000)
    log.node = node
    log._dispatch = lambda outbound: sim._send(node.node_id, outbound)  # type: ignore[method-assign]
    return log


async def drive(sim: Simulation, log: RaftMetadataLog, task: asyncio.Task[int],
                max_steps: int = 200_000) -> None:
    for _ in range(max_steps):
        if task.done():
            return
        sim.step()
        log._deliver()
        await asyncio.sleep(0)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_append_replaced_by_the_next_leader_fails(seed: int, tmp_path: Path) -> None:
    async def body() -> None:
        sim = Simulation(seed=seed, voters=3, faults=Faults(append_rate=0))
        assert sim.run_until(lambda: sim.stable_leader() is not None, 10_000)
        old = sim.stable_leader()
        assert old is not None
        assert sim.run_until(lambda: old.leader_caught_up, 5_000)
        log = metadata_log(sim, old, tmp_path)
        try:
            committed = asyncio.get_running_loop().create_task(log.append([b"kept"]))
            await drive(sim, log, committed)
            kept = await committed  # the control: committed while it leads
            assert old.log.epoch_at(kept) == old.epoch

            sim.group[old.node_id] = 1  # cut off: its next append cannot commit
            lost = asyncio.get_running_loop().create_task(log.append([b"lost"]))
            await asyncio.sleep(0)
            lost_at, lost_epoch = old.log.end_offset() - 1, old.epoch
            assert sim.run_until(lambda: any(n.epoch > old.epoch for n in sim.leaders()),
                                 10_000)
            [new] = [n for n in sim.leaders() if n.epoch > old.epoch]
            for i in range(3):
                sim.client_append(f"won-{i}".encode(), new)
            assert sim.run_until(lambda: new.high_watermark > lost_at + 1, 5_000)
            assert not lost.done()
            sim.heal()
            await drive(sim, log, lost)
            # the old leader now knows an entry of the new leader is committed there
            assert old.high_watermark > lost_at and old.log.epoch_at(lost_at) != lost_epoch
            with pytest.raises(NotControllerError):
                await lost
        finally:
            log._log.close()
    asyncio.run(body())
