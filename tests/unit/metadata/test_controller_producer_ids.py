"""AllocateProducerIds checks the broker epoch as Kafka's ProducerIdControlManager does
(ClusterControlManager.checkBrokerEpoch first): a sender that is not registered, or not at
exactly its registered epoch (-1 included), gets STALE_BROKER_EPOCH and no block is taken."""

from __future__ import annotations

import asyncio

import pytest
from kio.schema.errors import ErrorCode

from core.common.errors import KafkaError
from tests.unit.metadata.test_controller_alter_partition_epochs import Cluster

pytestmark = pytest.mark.timeout(30)


def run(body):
    return asyncio.run(body())


def test_a_broker_at_its_registered_epoch_gets_consecutive_blocks() -> None:
    async def body():
        cluster = await Cluster().start()
        first = await cluster.controller.allocate_producer_ids(2, cluster.epochs[2])
        second = await cluster.controller.allocate_producer_ids(3, cluster.epochs[3])
        return first, second
    (start1, len1), (start2, len2) = run(body)
    assert len1 == len2 > 0
    assert start2 == start1 + len1


@pytest.mark.parametrize("case", ["previous incarnation", "minus one", "unregistered"])
def test_a_stale_or_unknown_sender_gets_stale_broker_epoch_and_no_block(case: str) -> None:
    async def body():
        cluster = await Cluster().start()
        old = cluster.epochs[2]
        await cluster.register(2)  # broker 2 restarts: a new epoch
        sender, epoch = {"previous incarnation": (2, old), "minus one": (2, -1),
                         "unregistered": (9, 1)}[case]
        before = cluster.image.next_producer_id
        with pytest.raises(KafkaError) as raised:
            await cluster.controller.allocate_producer_ids(sender, epoch)
        assert cluster.image.next_producer_id == before, "a refused request took a block"
        # the current incarnation still gets its block
        start, _ = await cluster.controller.allocate_producer_ids(2, cluster.epochs[2])
        assert start == before
        return raised.value
    error = run(body)
    assert error.code == ErrorCode.stale_broker_epoch
