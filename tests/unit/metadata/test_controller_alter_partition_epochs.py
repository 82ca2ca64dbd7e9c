"""The controller checks broker epochs on AlterPartition as Kafka's KRaft controller does.

* The sender (BrokerId, BrokerEpoch) must be registered at exactly that epoch
  (ClusterControlManager.checkBrokerEpoch): otherwise STALE_BROKER_EPOCH for the whole
  request, -1 and an unregistered sender included, and nothing changes.
* KIP-903: every member of the proposed ISR must be registered, not fenced (a controlled
  shutdown fences the broker in the heartbeat that completes it) and, where the proposal
  names an epoch (v3 NewIsrWithEpochs), registered at that epoch; otherwise that partition
  gets INELIGIBLE_REPLICA (ReplicationControlManager.ineligibleReplicasForIsr) and stays as
  it was. An epoch of -1 (v2 requests) skips only the epoch comparison.

A QuorumController over an in-memory metadata log; every case is deterministic.
"""

from __future__ import annotations

import asyncio

import pytest
from kio.schema.errors import ErrorCode

from core.common.config import BrokerConfig
from core.common.errors import KafkaError
from core.common.types import TopicPartition
from core.metadata.controller import NO_BROKER_EPOCH, IsrProposal, QuorumController
from core.metadata.image import MetadataImage, PartitionRegistration
from core.metadata.records import MetadataRecord, PartitionCreated, TopicCreated, decode_record

pytestmark = pytest.mark.timeout(30)

TOPIC = "t"


class MemoryMetadataLog:
    """A single-voter metadata log in memory: appends are committed and applied at once."""

    def __init__(self) -> None:
        self.image = MetadataImage()

    def is_leader(self) -> bool:
        return True

    def leader_id(self) -> int:
        return 1

    def add_listener(self, listener) -> None:  # pragma: no cover - not used here
        pass

    def add_batch_listener(self, listener) -> None:  # pragma: no cover - not used here
        pass

    async def append(self, entries: list[bytes]) -> int:
        offset = self.image.offset + len(entries)
        self.image = self.image.apply_batch([decode_record(e) for e in entries], offset)
        return offset


class Cluster:
    """Three registered, unfenced brokers and topic `t` (one partition on 1, 2, 3)."""

    def __init__(self) -> None:
        self.log = MemoryMetadataLog()
        self.controller = QuorumController(1, BrokerConfig({}), self.log,
                                           lambda: self.log.image)
        self.epochs: dict[int, int] = {}

    async def start(self, topic_isr: list[int] | None = None) -> Cluster:
        for b in (1, 2, 3):
            await self.register(b)
        await self.controller.create_topic(TOPIC, 1, 3, assignments={0: [1, 2, 3]})
        if topic_isr is not None:  # shrink to `topic_isr` with a valid proposal
            await self.propose(topic_isr)
        return self

    async def register(self, broker_id: int) -> int:
        """(Re-)register `broker_id` (a new incarnation: the epoch grows) and unfence it."""
        epoch = await self.controller.register_broker(broker_id, "127.0.0.1", 9000 + broker_id,
                                                      None, f"incarnation-{broker_id}")
        await self.controller.heartbeat(broker_id, epoch, want_fence=False, want_shutdown=False)
        self.epochs[broker_id] = epoch
        return epoch

    async def append(self, *records: MetadataRecord) -> None:
        await self.log.append([r.encode() for r in records])

    @property
    def image(self) -> MetadataImage:
        return self.log.image

    def part(self, topic: str = TOPIC) -> PartitionRegistration:
        reg = self.image.partition(TopicPartition(topic, 0))
        assert reg is not None
        return reg

    def proposal(self, isr: list[int], epochs: dict[int, int] | None = None,
                 topic: str = TOPIC) -> IsrProposal:
        """The leader's proposal at the current leader/partition epochs; each member's epoch
        from `epochs`, else its registered epoch."""
        reg = self.part(topic)
        epochs = {**self.epochs, **(epochs or {})}
        return IsrProposal(topic, 0, reg.leader_epoch, reg.partition_epoch,
                           tuple((b, epochs.get(b, NO_BROKER_EPOCH)) for b in isr))

    async def propose(self, isr: list[int], epochs: dict[int, int] | None = None, *,
                      topic: str = TOPIC, sender: int = 1, sender_epoch: int | None = None):
        epoch = self.epochs[sender] if sender_epoch is None else sender_epoch
        [result] = await self.controller.alter_partitions(
            sender, epoch, [self.proposal(isr, epochs, topic)])
        return result


def run(coro):
    return asyncio.run(coro)


def refused_with(result, code: ErrorCode) -> bool:
    return isinstance(result, KafkaError) and result.code == code


# --- control: a proposal with the right epochs is accepted ---------------------------------
def test_current_epochs_change_the_isr() -> None:
    async def go() -> None:
        c = await Cluster().start()
        before = c.part()
        result = await c.propose([1, 2])
        assert isinstance(result, PartitionRegistration)
        assert c.part().isr == (1, 2) == result.isr
        assert c.part().partition_epoch == before.partition_epoch + 1
    run(go())


# --- rule 1: the sender's broker epoch ----------------------------------------------------
def test_sender_with_a_stale_epoch_gets_stale_broker_epoch_and_nothing_changes() -> None:
    """Broker 1 restarted (epoch 1 -> 2): a request still carrying epoch 1 is refused."""
    async def go() -> None:
        c = await Cluster().start()
        old = c.epochs[1]
        assert await c.register(1) == old + 1
        before, offset = c.part(), c.image.offset
        with pytest.raises(KafkaError) as info:
            await c.propose([1, 2], sender_epoch=old)
        assert info.value.code == ErrorCode.stale_broker_epoch
        assert c.part() == before and c.image.offset == offset
    run(go())


def test_sender_epoch_from_the_future_is_stale_too() -> None:
    async def go() -> None:
        c = await Cluster().start()
        with pytest.raises(KafkaError) as info:
            await c.propose([1, 2], sender_epoch=c.epochs[1] + 1)
        assert info.value.code == ErrorCode.stale_broker_epoch
        assert c.part().isr == (1, 2, 3)
    run(go())


def test_sender_epoch_minus_one_is_no_exemption() -> None:
    """Kafka's checkBrokerEpoch compares -1 like any other epoch (no registration has it)."""
    async def go() -> None:
        c = await Cluster().start()
        with pytest.raises(KafkaError) as info:
            await c.propose([1, 2], sender_epoch=-1)
        assert info.value.code == ErrorCode.stale_broker_epoch
        assert c.part().isr == (1, 2, 3)
    run(go())


def test_unregistered_sender_gets_stale_broker_epoch() -> None:
    async def go() -> None:
        c = await Cluster().start()
        offset = c.image.offset
        with pytest.raises(KafkaError) as info:
            await c.controller.alter_partitions(7, 1, [c.proposal([1, 2])])
        assert info.value.code == ErrorCode.stale_broker_epoch
        assert c.image.offset == offset
    run(go())


def test_stale_sender_changes_no_partition_of_a_batch() -> None:
    async def go() -> None:
        c = await Cluster().start()
        await c.controller.create_topic("u", 1, 3, assignments={0: [1, 2, 3]})
        old = c.epochs[1]
        await c.register(1)
        offset = c.image.offset
        with pytest.raises(KafkaError) as info:
            await c.controller.alter_partitions(
                1, old, [c.proposal([1, 2]), c.proposal([1, 3], topic="u")])
        assert info.value.code == ErrorCode.stale_broker_epoch
        assert c.image.offset == offset
        assert c.part().isr == c.part("u").isr == (1, 2, 3)
    run(go())


# --- rule 2 (KIP-903): every member of the new ISR ---------------------------------------
def test_member_with_an_old_epoch_is_ineligible() -> None:
    """Broker 3 restarted (new epoch) while the leader's view still has its old one: the
    leader cannot add it back with that view."""
    async def go() -> None:
        c = await Cluster().start(topic_isr=[1, 2])
        old = c.epochs[3]
        await c.register(3)
        before, offset = c.part(), c.image.offset
        result = await c.propose([1, 2, 3], epochs={3: old})
        assert refused_with(result, ErrorCode.ineligible_replica)
        assert c.part() == before and c.image.offset == offset
        # the same expansion with its current epoch is accepted
        assert isinstance(await c.propose([1, 2, 3]), PartitionRegistration)
        assert c.part().isr == (1, 2, 3)
    run(go())


def test_member_epoch_mismatch_refuses_a_shrink_too() -> None:
    """Kafka checks every member of the proposed ISR, not only the ones it adds."""
    async def go() -> None:
        c = await Cluster().start()
        result = await c.propose([1, 2], epochs={2: c.epochs[2] + 5})
        assert refused_with(result, ErrorCode.ineligible_replica)
        assert c.part().isr == (1, 2, 3)
    run(go())


def test_leader_member_epoch_is_checked_too() -> None:
    async def go() -> None:
        c = await Cluster().start()
        result = await c.propose([1, 2], epochs={1: c.epochs[1] + 1})
        assert refused_with(result, ErrorCode.ineligible_replica)
        assert c.part().isr == (1, 2, 3)
    run(go())


def test_member_epoch_minus_one_skips_only_the_epoch_comparison() -> None:
    """v2 requests (no member epochs) still change the ISR: -1 is 'not checked'."""
    async def go() -> None:
        c = await Cluster().start(topic_isr=[1, 2])
        result = await c.propose([1, 2, 3], epochs={3: NO_BROKER_EPOCH})
        assert isinstance(result, PartitionRegistration)
        assert c.part().isr == (1, 2, 3)
    run(go())


def test_fenced_member_is_ineligible_even_without_an_epoch() -> None:
    async def go() -> None:
        c = await Cluster().start(topic_isr=[1, 2])
        await c.controller.heartbeat(3, -1, want_fence=True, want_shutdown=False)
        assert c.image.brokers[3].fenced
        for epochs in ({}, {3: NO_BROKER_EPOCH}):
            result = await c.propose([1, 2, 3], epochs=epochs)
            assert refused_with(result, ErrorCode.ineligible_replica)
            assert c.part().isr == (1, 2)
    run(go())


def test_member_in_controlled_shutdown_is_ineligible() -> None:
    """A broker that asked to shut down leaves every ISR and is fenced at once; a leader
    whose view predates that cannot add it back."""
    async def go() -> None:
        c = await Cluster().start()
        fenced, done = await c.controller.heartbeat(3, c.epochs[3], want_fence=False,
                                                    want_shutdown=True)
        assert (fenced, done) == (True, True)
        assert c.part().isr == (1, 2)
        result = await c.propose([1, 2, 3])
        assert refused_with(result, ErrorCode.ineligible_replica)
        assert c.part().isr == (1, 2)
    run(go())


def test_unregistered_member_is_ineligible() -> None:
    async def go() -> None:
        c = await Cluster().start()
        # replica 4 was assigned but broker 4 never registered
        await c.append(TopicCreated("w", "w-id"), PartitionCreated("w", 0, [1, 4], [1], 1))
        result = await c.propose([1, 4], topic="w")
        assert refused_with(result, ErrorCode.ineligible_replica)
        assert c.part("w").isr == (1,)
    run(go())


def test_ineligible_partition_does_not_hold_back_the_others() -> None:
    async def go() -> None:
        c = await Cluster().start(topic_isr=[1, 2])
        await c.controller.create_topic("u", 1, 3, assignments={0: [1, 2, 3]})
        old = c.epochs[3]
        await c.register(3)
        bad = c.proposal([1, 2, 3], epochs={3: old})
        good = c.proposal([1, 3], topic="u")
        refused, accepted = await c.controller.alter_partitions(1, c.epochs[1], [bad, good])
        assert refused_with(refused, ErrorCode.ineligible_replica)
        assert isinstance(accepted, PartitionRegistration)
        assert c.part().isr == (1, 2)
        assert c.part("u").isr == (1, 3) == accepted.isr
    run(go())
