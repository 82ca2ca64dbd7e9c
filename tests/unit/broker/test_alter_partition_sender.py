"""The partition leader's AlterPartition (core.broker.quorum.propose_isr).

It sends v3 with its own registered broker epoch and each proposed ISR member's epoch from
its metadata image (KIP-903); it does not propose adding a follower its image shows fenced or
unregistered (Kafka's Partition.isReplicaIsrEligible); a STALE_BROKER_EPOCH answer holds ISR
changes until the broker re-registers, an INELIGIBLE_REPLICA one backs that partition off, and
the retry is recomputed from the metadata image of that moment. Nothing raises.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from types import SimpleNamespace
from typing import Any

import pytest
from kio.schema.errors import ErrorCode

from core.broker import quorum
from core.common.types import TopicPartition
from core.metadata.image import MetadataImage, PartitionRegistration
from core.metadata.records import (
    FenceBroker,
    MetadataRecord,
    PartitionCreated,
    RegisterBroker,
    TopicCreated,
    UnfenceBroker,
)

pytestmark = pytest.mark.timeout(30)

TOPIC_ID = str(uuid.UUID(int=42))
EPOCHS = {1: 5, 2: 7, 3: 9}


def make_image(*extra: MetadataRecord, epochs: dict[int, int] = EPOCHS) -> MetadataImage:
    records: list[MetadataRecord] = []
    for b, e in epochs.items():
        records += [RegisterBroker(b, "127.0.0.1", 9000 + b, None, e, f"i{b}"),
                    UnfenceBroker(b, e)]
    records += [TopicCreated("t", TOPIC_ID), PartitionCreated("t", 0, [1, 2, 3], [1, 2], 1)]
    return MetadataImage().apply_batch([*records, *extra], 100)


class Counter:
    def __init__(self) -> None:
        self.value = 0

    def inc(self) -> None:
        self.value += 1


class FakeBroker:
    """What propose_isr reads from a BrokerServer; not the controller unless told."""

    def __init__(self, image: MetadataImage, epoch: int = EPOCHS[1],
                 controller: Any = None) -> None:
        self.node_id = 1
        self.broker_epoch = epoch
        self.image = image
        self.controller = controller
        self.metrics = SimpleNamespace(isr_shrinks=Counter(), isr_expands=Counter())

    def is_controller(self) -> bool:
        return self.controller is not None


def make_partition(image: MetadataImage) -> SimpleNamespace:
    tp = TopicPartition("t", 0)
    reg = image.partition(tp)
    assert reg is not None
    return SimpleNamespace(tp=tp, registration=reg, isr_change_pending=False,
                           isr_retry_at_ms=0.0)


def response(top: int = 0, partition: int = 0) -> SimpleNamespace:
    return SimpleNamespace(error_code=ErrorCode(top), topics=[] if top else [SimpleNamespace(
        partitions=[SimpleNamespace(error_code=ErrorCode(partition))])])


class Sent(list):
    """Requests propose_isr sent (api key, version, fields); `answers` are the controller's
    next responses (then: success)."""

    def __init__(self) -> None:
        super().__init__()
        self.answers: list[SimpleNamespace] = []


def members(fields: dict[str, Any]) -> list[tuple[int, int]]:
    [topic] = fields["topics"]
    [part] = topic["partitions"]
    return [(m["broker_id"], m["broker_epoch"]) for m in part["new_isr_with_epochs"]]


def test_sends_v3_with_own_epoch_and_members_epochs_from_the_image(sent) -> None:
    image = make_image()
    broker, partition = FakeBroker(image), make_partition(image)
    asyncio.run(quorum.propose_isr(broker, partition, [1, 2, 3]))
    [(key, version, fields)] = sent
    assert (key, version) == (56, 3)
    assert fields["broker_id"] == 1 and fields["broker_epoch"] == EPOCHS[1]
    assert members(fields) == [(1, 5), (2, 7), (3, 9)]
    assert fields["topics"][0]["topic_id"] == uuid.UUID(TOPIC_ID)
    assert broker.metrics.isr_expands.value == 1


def test_local_controller_gets_the_same_epochs() -> None:
    calls = []

    class Controller:
        async def alter_partitions(self, broker_id, broker_epoch, proposals):
            calls.append((broker_id, broker_epoch, proposals))
            return [PartitionRegistration((1, 2, 3), (1,), 1, 0, 1)]

    image = make_image()
    broker = FakeBroker(image, controller=Controller())
    asyncio.run(quorum.propose_isr(broker, make_partition(image), [1]))
    [(broker_id, epoch, [proposal])] = calls
    assert (broker_id, epoch) == (1, EPOCHS[1])
    assert proposal.new_isr == ((1, 5),)
    assert broker.metrics.isr_shrinks.value == 1


@pytest.mark.parametrize("follower_state", ["fenced", "unregistered"])
def test_does_not_propose_adding_an_ineligible_follower(sent, follower_state) -> None:
    if follower_state == "fenced":
        image = make_image(FenceBroker(3, EPOCHS[3]))
    else:
        image = make_image(epochs={1: 5, 2: 7})
    partition = make_partition(image)
    asyncio.run(quorum.propose_isr(FakeBroker(image), partition, [1, 2, 3]))
    assert sent == []
    assert not partition.isr_change_pending


def test_nothing_is_sent_before_registration(sent) -> None:
    image = make_image()
    asyncio.run(quorum.propose_isr(FakeBroker(image, epoch=-1), make_partition(image), [1]))
    assert sent == []


def test_stale_broker_epoch_holds_isr_changes_until_re_registration(sent) -> None:
    image = make_image()
    broker = FakeBroker(image)
    first, second = make_partition(image), make_partition(image)
    sent.answers.append(response(top=ErrorCode.stale_broker_epoch))
    asyncio.run(quorum.propose_isr(broker, first, [1, 2, 3]))  # must not raise
    assert len(sent) == 1
    assert not first.isr_change_pending
    assert first.isr_retry_at_ms > time.monotonic() * 1000
    # another partition in the same round: held, nothing sent with the stale epoch
    asyncio.run(quorum.propose_isr(broker, second, [1, 2, 3]))
    assert len(sent) == 1
    # the lifecycle loop re-registered: the next proposal carries the new epoch
    broker.broker_epoch = 6
    asyncio.run(quorum.propose_isr(broker, second, [1, 2, 3]))
    assert len(sent) == 2 and sent[1][2]["broker_epoch"] == 6


def test_ineligible_replica_backs_off_and_retries_with_fresh_epochs(sent) -> None:
    image = make_image()
    broker, partition = FakeBroker(image), make_partition(image)
    sent.answers.append(response(partition=ErrorCode.ineligible_replica))
    asyncio.run(quorum.propose_isr(broker, partition, [1, 2, 3]))  # must not raise
    assert not partition.isr_change_pending
    assert partition.isr_retry_at_ms > time.monotonic() * 1000
    assert broker.metrics.isr_expands.value == 0
    # broker 3 re-registered meanwhile (epoch 10): the retry names the epoch of that moment
    broker.image = make_image(epochs={1: 5, 2: 7, 3: 10})
    asyncio.run(quorum.propose_isr(broker, partition, [1, 2, 3]))
    assert members(sent[1][2]) == [(1, 5), (2, 7), (3, 10)]
    assert broker.metrics.isr_expands.value == 1


def test_refusal_is_logged_not_raised(sent) -> None:
    image = make_image()
    sent.answers.append(response(partition=ErrorCode.fenced_leader_epoch))
    partition = make_partition(image)
    asyncio.run(quorum.propose_isr(FakeBroker(image), partition, [1]))
    assert not partition.isr_change_pending
    assert partition.isr_retry_at_ms > time.monotonic() * 1000
