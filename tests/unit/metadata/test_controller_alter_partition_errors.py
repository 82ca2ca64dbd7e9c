"""The controller's other AlterPartition refusals, with the codes Kafka's KRaft controller
gives them (ReplicationControlManager.validateAlterPartitionData, in its order):

* leader epoch newer than the controller's -> NOT_CONTROLLER (this node's image lags: the
  leader should look for the active controller); the same for a newer partition epoch;
* leader epoch older than the partition's -> FENCED_LEADER_EPOCH;
* a sender that is not the partition's leader -> INVALID_REQUEST;
* partition epoch older than the partition's -> INVALID_UPDATE_VERSION;
* an ISR naming a non-replica, a duplicate, or leaving out the leader -> INVALID_REQUEST;
* a change that completes a reassignment and moves leadership away from the sender is
  committed, and the sender is answered NEW_LEADER_ELECTED (AlterPartition v2+).

Every refusal leaves the partition and the metadata log as they were. Deterministic: a
QuorumController over an in-memory metadata log (the Cluster of the epoch tests).
"""

from __future__ import annotations

import pytest
from kio.schema.errors import ErrorCode

from core.metadata.controller import IsrProposal
from core.metadata.image import PartitionRegistration

from .test_controller_alter_partition_epochs import TOPIC, Cluster, refused_with, run

pytestmark = pytest.mark.timeout(30)


async def _refused(c: Cluster, code: ErrorCode, proposal: IsrProposal,
                   sender: int = 1) -> None:
    """`proposal` from `sender` is refused with `code` and changes nothing."""
    before, offset = c.part(), c.image.offset
    [result] = await c.controller.alter_partitions(sender, c.epochs[sender], [proposal])
    assert refused_with(result, code), result
    assert c.part() == before and c.image.offset == offset


def _with(c: Cluster, isr: list[int], *, leader_epoch: int = 0,
          partition_epoch: int = 0) -> IsrProposal:
    """The proposal for `isr` with its epochs moved by the given deltas."""
    p = c.proposal(isr)
    return IsrProposal(p.topic, p.partition, p.leader_epoch + leader_epoch,
                       p.partition_epoch + partition_epoch, p.new_isr)


def test_sender_not_the_leader_gets_invalid_request() -> None:
    async def go() -> None:
        c = await Cluster().start()
        assert c.part().leader == 1
        await _refused(c, ErrorCode.invalid_request, c.proposal([2, 3]), sender=2)
    run(go())


def test_older_leader_epoch_gets_fenced_leader_epoch() -> None:
    async def go() -> None:
        c = await Cluster().start()
        await _refused(c, ErrorCode.fenced_leader_epoch, _with(c, [1, 2], leader_epoch=-1))
    run(go())


def test_older_leader_epoch_is_fenced_before_the_leader_check() -> None:
    """A deposed leader with its old epoch: FENCED_LEADER_EPOCH (Kafka checks the epoch
    first), so it knows its view is stale rather than its request malformed."""
    async def go() -> None:
        c = await Cluster().start()
        stale = c.proposal([1, 2, 3])
        # move the leadership away by fencing 1; unfenced again, 1 proposes with its old view
        await c.controller.heartbeat(1, -1, want_fence=True, want_shutdown=False)
        await c.controller.heartbeat(1, c.epochs[1], want_fence=False, want_shutdown=False)
        assert c.part().leader != 1
        await _refused(c, ErrorCode.fenced_leader_epoch, stale, sender=1)
    run(go())


def test_newer_leader_epoch_gets_not_controller() -> None:
    async def go() -> None:
        c = await Cluster().start()
        await _refused(c, ErrorCode.not_controller, _with(c, [1, 2], leader_epoch=1))
    run(go())


def test_newer_partition_epoch_gets_not_controller() -> None:
    async def go() -> None:
        c = await Cluster().start()
        await _refused(c, ErrorCode.not_controller, _with(c, [1, 2], partition_epoch=1))
    run(go())


def test_older_partition_epoch_gets_invalid_update_version() -> None:
    async def go() -> None:
        c = await Cluster().start()
        stale = c.proposal([1, 2])
        assert isinstance(await c.propose([1, 3]), PartitionRegistration)  # epoch moves on
        await _refused(c, ErrorCode.invalid_update_version, stale)
    run(go())


@pytest.mark.parametrize("isr", [[1, 2, 4], [1, 2, 2], [2, 3]],
                         ids=["not-a-replica", "duplicate", "without-the-leader"])
def test_invalid_isr_gets_invalid_request(isr: list[int]) -> None:
    async def go() -> None:
        c = await Cluster().start()
        await c.register(4)  # registered, but not a replica of the partition
        await _refused(c, ErrorCode.invalid_request, c.proposal(isr))
    run(go())


def test_completing_a_reassignment_that_moves_leadership_answers_new_leader_elected() -> None:
    """Replicas 1,2,3 -> 2,3,4 with leader 1: when leader 1 adds 4 to the ISR the
    reassignment completes without 1, and 2 takes over. The change is committed; 1 hears
    NEW_LEADER_ELECTED (it must learn the new state from metadata)."""
    async def go() -> None:
        c = await Cluster().start()
        await c.register(4)
        [error] = (await c.controller.alter_reassignments([(TOPIC, 0, [2, 3, 4])])).values()
        assert error is None
        assert c.part().is_reassigning and c.part().leader == 1
        offset = c.image.offset
        result = await c.propose([*c.part().isr, 4])
        assert refused_with(result, ErrorCode.new_leader_elected), result
        assert c.image.offset > offset
        after = c.part()
        assert after.replicas == (2, 3, 4) and after.leader == 2 and not after.is_reassigning
    run(go())


def test_completing_a_reassignment_that_keeps_the_leader_is_a_success() -> None:
    async def go() -> None:
        c = await Cluster().start()
        await c.register(4)
        await c.controller.alter_reassignments([(TOPIC, 0, [1, 2, 4])])
        result = await c.propose([*c.part().isr, 4])
        assert isinstance(result, PartitionRegistration)
        assert result.leader == 1 and result.replicas == (1, 2, 4)
    run(go())
