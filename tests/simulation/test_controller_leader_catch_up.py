"""A freshly elected controller acts only once it has applied what the previous one committed.

Seeded Raft simulation (tests/simulation/sim.py), three voters, no random faults. The controller
on the first leader L creates topic `a.b` (or hands out a producer id block); at the very step
its high watermark covers those records L is cut off and crashed, so the follower that acked
them holds them in its log but has not learnt they are committed (a follower learns the high
watermark one fetch later, and that answer is lost). It becomes the leader N of the next epoch
with an image that lacks them, and stays so until its own epoch-start entry commits (Raft: a
leader's high watermark moves only once it covers that entry).

In that window N's controller must not act on its image: with a short wait it answers
NOT_CONTROLLER (a CreateTopics of `a.b`, or of the colliding `a_b`, would otherwise pass and
create the topic twice; the producer id block would be handed out twice); with the default
wait it defers the request until N has caught up and then refuses it correctly
(TOPIC_ALREADY_EXISTS, INVALID_TOPIC_EXCEPTION), or hands out the next block.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest
from kio.schema.errors import ErrorCode

from core.common.config import BrokerConfig
from core.common.errors import KafkaError, NotControllerError
from core.metadata.controller import QuorumController
from core.metadata.image import MetadataImage
from core.metadata.records import decode_record
from core.raft.node import NotLeader, RaftNode
from tests.simulation.sim import Faults, Simulation

pytestmark = pytest.mark.timeout(60)

SEEDS = [1, 2, 3, 4, 5]
NEVER_MS = 10**9  # a crashed node is not restarted in these runs


class SimMetadataLog:
    """The controller's MetadataLog over one node of the simulation, as RaftMetadataLog is over
    a real RaftNode: appends commit once the high watermark passes them (the simulation is run
    until then), and the image is the fold of what the node's state machine was handed."""

    def __init__(self, sim: Simulation, node_id: int) -> None:
        self.sim = sim
        self.node_id = node_id
        #: cut the node off at the step its high watermark covers the next append
        self.isolate_on_commit = False

    @property
    def node(self) -> RaftNode:
        node = self.sim.nodes[self.node_id]
        assert node is not None
        return node

    def is_leader(self) -> bool:
        return self.node.is_leader

    def leader_ready(self) -> bool:
        return self.node.leader_caught_up

    def leader_id(self) -> int:
        leader = self.node.leader_id
        return -1 if leader is None else leader

    def add_listener(self, listener) -> None:  # pragma: no cover - not used here
        pass

    def add_batch_listener(self, listener) -> None:  # pragma: no cover - not used here
        pass

    async def append(self, entries: list[bytes]) -> int:
        node = self.node
        base = node.append(entries)
        if isinstance(base, NotLeader):
            raise NotControllerError("not the leader")
        self.sim._send(self.node_id, node.take_outbound())
        last = base + len(entries) - 1
        assert self.sim.run_until(lambda: node.high_watermark > last, 5_000), "not committed"
        if self.isolate_on_commit:
            self.sim.group[self.node_id] = 1  # the answers carrying the new HW are lost
        return last

    def image(self) -> MetadataImage:
        delivered = self.sim.delivered[self.node_id]
        if not delivered:
            return MetadataImage()
        return MetadataImage().apply_batch([decode_record(e.data) for e in delivered],
                                           delivered[-1].offset)


@dataclass
class Failover:
    sim: Simulation
    old: QuorumController
    new: QuorumController
    new_log: SimMetadataLog


def controller(sim: Simulation, node_id: int) -> tuple[QuorumController, SimMetadataLog]:
    log = SimMetadataLog(sim, node_id)
    return QuorumController(node_id, BrokerConfig({}), log, log.image), log


async def failover_after(seed: int,
                         last_op: Callable[[QuorumController], Awaitable[object]]) -> Failover:
    """L's controller registers brokers 1-3, then runs `last_op`; L is cut off and crashed
    as `last_op`'s records commit; returns once another voter N leads (not yet caught up)."""
    sim = Simulation(seed=seed, voters=3, faults=Faults(append_rate=0,
                                                        restart_after_ms=(NEVER_MS, NEVER_MS)))
    assert sim.run_until(lambda: sim.stable_leader() is not None, 10_000)
    leader = sim.stable_leader()
    assert leader is not None
    assert sim.run_until(lambda: leader.leader_caught_up, 5_000)
    old, old_log = controller(sim, leader.node_id)
    for b in (1, 2, 3):
        epoch = await old.register_broker(b, "127.0.0.1", 9000 + b, None, f"inc-{b}")
        await old.heartbeat(b, epoch, want_fence=False, want_shutdown=False)
    sim.run_for(500)  # every follower has applied all of that
    old_log.isolate_on_commit = True
    await last_op(old)
    sim.crash(leader.node_id)
    assert sim.run_until(lambda: bool(sim.leaders()), 10_000), "no new leader"
    [new_leader] = sim.leaders()
    new, new_log = controller(sim, new_leader.node_id)
    return Failover(sim, old, new, new_log)


def catch_up(f: Failover) -> None:
    assert f.sim.run_until(lambda: f.new_log.node.leader_caught_up, 5_000)


async def create_a_b(c: QuorumController) -> object:
    return await c.create_topic("a.b", 1, 3)


async def allocate(c: QuorumController) -> object:
    return await c.allocate_producer_ids(2, 1)


def code_of(exc: BaseException) -> ErrorCode:
    assert isinstance(exc, KafkaError), repr(exc)
    return exc.code


@pytest.mark.parametrize("seed", SEEDS)
def test_new_leader_refuses_create_topics_until_it_has_applied_the_committed_topic(
        seed: int) -> None:
    async def body() -> None:
        f = await failover_after(seed, create_a_b)
        assert "a.b" in f.old._image().topics
        # the window: N leads, its image lacks the committed topic
        assert f.new.is_active() and not f.new_log.leader_ready()
        assert "a.b" not in f.new._image().topics
        f.new.ready_timeout_s = 0.05  # the simulation does not move while we wait
        for name in ("a.b", "a_b"):
            with pytest.raises(KafkaError) as refused:
                await f.new.create_topic(name, 1, 3)
            assert code_of(refused.value) == ErrorCode.not_controller, name
        assert f.new_log.node.log.end_offset() == f.new_log.node.epoch_start_offset + 1, \
            "nothing appended in the window"
        catch_up(f)
        assert f.new_log.leader_ready() and "a.b" in f.new._image().topics
        with pytest.raises(KafkaError) as exists:
            await f.new.create_topic("a.b", 1, 3)
        assert code_of(exists.value) == ErrorCode.topic_already_exists
        with pytest.raises(KafkaError) as collides:
            await f.new.create_topic("a_b", 1, 3)
        assert code_of(collides.value) == ErrorCode.invalid_topic_exception
        assert str(collides.value) == "Topic 'a_b' collides with existing topic: a.b"
        assert set(f.new._image().topics) == {"a.b"}
        created = await f.new.create_topic("c", 1, 3)  # and it does act once caught up
        assert created.name == "c" and "c" in f.new._image().topics
    asyncio.run(body())


@pytest.mark.parametrize("seed", SEEDS)
def test_new_leader_defers_create_topics_until_caught_up_then_refuses_the_duplicate(
        seed: int) -> None:
    async def body() -> None:
        f = await failover_after(seed, create_a_b)
        assert not f.new_log.leader_ready() and "a.b" not in f.new._image().topics
        task = asyncio.get_running_loop().create_task(f.new.create_topic("a.b", 1, 3))
        for _ in range(5):
            await asyncio.sleep(0.01)
        assert not task.done(), "acted before catching up"
        steps = 0
        while not task.done() and steps < 100_000:  # run the quorum while it waits
            f.sim.step()
            steps += 1
            await asyncio.sleep(0)
        with pytest.raises(KafkaError) as exists:
            await task
        assert code_of(exists.value) == ErrorCode.topic_already_exists
        assert set(f.new._image().topics) == {"a.b"}
    asyncio.run(body())


@pytest.mark.parametrize("seed", SEEDS)
def test_new_leader_never_hands_out_a_producer_id_block_twice(seed: int) -> None:
    async def body() -> None:
        blocks: list[tuple[int, int]] = []

        async def first_block(c: QuorumController) -> object:
            blocks.append(await c.allocate_producer_ids(2, 1))
            return blocks[-1]
        f = await failover_after(seed, first_block)
        [(start, length)] = blocks
        assert f.new._image().next_producer_id == start, "the window: block not applied"
        f.new.ready_timeout_s = 0.05
        with pytest.raises(KafkaError) as refused:
            await f.new.allocate_producer_ids(3, 1)
        assert code_of(refused.value) == ErrorCode.not_controller
        catch_up(f)
        second, _ = await f.new.allocate_producer_ids(3, 1)
        assert second >= start + length
    asyncio.run(body())
