"""How the partition leader (core.broker.quorum.propose_isr) reacts to each AlterPartition
refusal, as Kafka's Partition.handleAlterPartitionError does, and its KIP-903 check that an
expansion rests on the current incarnation's fetches.

* FENCED_LEADER_EPOCH, INVALID_UPDATE_VERSION, INVALID_REQUEST, NEW_LEADER_ELECTED, unknown
  partition: our view is out of date (or the change was made and moved the leadership): the
  change is given up until new metadata for the partition arrives (at most
  ISR_METADATA_WAIT_MS), then recomputed at once;
* NOT_CONTROLLER, INELIGIBLE_REPLICA: proposed again after ISR_RETRY_BACKOFF_MS;
* none of them raises, none counts as an ISR change, and no proposal is re-sent before its
  wait is over (no spinning).

A real Partition over a stand-in log and a fake broker; the controller's answers are scripted.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from kio.schema.errors import ErrorCode

from core.broker import quorum
from core.common.types import TopicPartition
from core.metadata.image import MetadataImage, PartitionRegistration
from core.replication import partition as partition_mod
from core.replication.partition import Partition

from .test_alter_partition_sender import EPOCHS, FakeBroker, make_image, response

pytestmark = pytest.mark.timeout(30)

LAG_MAX_MS = 30_000
TP = TopicPartition("t", 0)


class StubLog:
    def __init__(self, leo: int = 10, hw: int = 10) -> None:
        self.log_end_offset = leo
        self.high_watermark = hw


def leading(image: MetadataImage) -> Partition:
    """Broker 1 leads t-0 (replicas 1,2,3, ISR 1,2 in `image`) and knows the epochs."""
    reg = image.partition(TP)
    assert reg is not None
    p = Partition(TP, StubLog(), 1, reg, min_insync_replicas=1)
    p.observe_broker_epochs(image.brokers)
    return p


def caught_up(p: Partition, follower: int, epoch: int) -> None:
    time.sleep(0.002)  # strictly after the registration's timestamp
    p.record_follower_fetch(follower, p.log.high_watermark, epoch)


def now_ms() -> float:
    return time.monotonic() * 1000


AWAIT = [ErrorCode.fenced_leader_epoch, ErrorCode.invalid_update_version,
         ErrorCode.invalid_request, ErrorCode.new_leader_elected,
         ErrorCode.unknown_topic_or_partition, ErrorCode.unknown_topic_id]


@pytest.mark.parametrize("code", AWAIT, ids=lambda c: c.name)
def test_stale_view_waits_for_metadata_then_recomputes(sent, code) -> None:
    image = make_image()
    broker, p = FakeBroker(image), leading(image)
    caught_up(p, 3, EPOCHS[3])
    proposal = p.isr_candidates(LAG_MAX_MS)
    assert proposal == [1, 2, 3]
    sent.answers.append(response(partition=code))
    asyncio.run(quorum.propose_isr(broker, p, proposal))  # must not raise
    assert len(sent) == 1
    assert broker.metrics.isr_expands.value == 0
    assert not p.isr_change_pending
    # no re-proposal on the same view: long after the usual backoff, still waiting
    assert p.isr_retry_at_ms >= now_ms() + quorum.ISR_METADATA_WAIT_MS - 1000
    assert p.isr_retry_at_ms > now_ms() + quorum.ISR_RETRY_BACKOFF_MS
    assert p.isr_candidates(LAG_MAX_MS) is None
    # the same registration again (an unrelated metadata batch): still waiting
    p.update_registration(p.registration)
    assert p.isr_candidates(LAG_MAX_MS) is None
    # new metadata for the partition: the change is recomputed from it at once
    reg = p.registration
    p.update_registration(PartitionRegistration(reg.replicas, reg.isr, reg.leader,
                                                reg.leader_epoch, reg.partition_epoch + 1))
    assert p.isr_candidates(LAG_MAX_MS) == [1, 2, 3]


def test_metadata_that_came_during_the_request_is_not_waited_for(monkeypatch) -> None:
    """INVALID_UPDATE_VERSION answered to a request sent from a stale view, while the new
    registration was applied in flight: nothing left to wait for, recomputed at once."""
    image = make_image()
    broker, p = FakeBroker(image), leading(image)
    caught_up(p, 3, EPOCHS[3])

    async def fake(broker: Any, api_key: int, version: int, **fields: Any) -> Any:
        reg = p.registration
        p.update_registration(PartitionRegistration(reg.replicas, reg.isr, reg.leader,
                                                    reg.leader_epoch, reg.partition_epoch + 1))
        return response(partition=ErrorCode.invalid_update_version)

    monkeypatch.setattr(quorum, "_to_controller", fake)
    asyncio.run(quorum.propose_isr(broker, p, [1, 2, 3]))
    assert p.isr_retry_at_ms == 0.0
    assert p.isr_candidates(LAG_MAX_MS) == [1, 2, 3]


@pytest.mark.parametrize("code", [ErrorCode.not_controller, ErrorCode.ineligible_replica],
                         ids=lambda c: c.name)
def test_retriable_refusal_backs_off_for_the_retry_interval(sent, code) -> None:
    image = make_image()
    broker, p = FakeBroker(image), leading(image)
    caught_up(p, 3, EPOCHS[3])
    sent.answers.append(response(partition=code))
    asyncio.run(quorum.propose_isr(broker, p, [1, 2, 3]))
    assert broker.metrics.isr_expands.value == 0 and not p.isr_change_pending
    wait = p.isr_retry_at_ms - now_ms()
    assert 0 < wait <= quorum.ISR_RETRY_BACKOFF_MS
    assert p.isr_candidates(LAG_MAX_MS) is None


def test_top_level_not_controller_backs_off_too(sent) -> None:
    image = make_image()
    broker, p = FakeBroker(image), leading(image)
    sent.answers.append(response(top=ErrorCode.not_controller))
    asyncio.run(quorum.propose_isr(broker, p, [1, 2, 3]))
    assert 0 < p.isr_retry_at_ms - now_ms() <= quorum.ISR_RETRY_BACKOFF_MS


def test_local_controller_refusal_is_handled_the_same() -> None:
    class Controller:
        async def alter_partitions(self, broker_id, broker_epoch, proposals):
            from core.common.errors import KafkaError
            return [KafkaError("stale", ErrorCode.invalid_update_version)]

    image = make_image()
    broker = FakeBroker(image, controller=Controller())
    p = leading(image)
    asyncio.run(quorum.propose_isr(broker, p, [1]))
    assert broker.metrics.isr_shrinks.value == 0
    assert p.isr_retry_at_ms > now_ms() + quorum.ISR_RETRY_BACKOFF_MS


# --- KIP-903: an expansion rests on the current incarnation's fetches ----------------------
def test_not_proposed_on_an_old_incarnations_fetch(sent) -> None:
    """Broker 3 re-registered at epoch 10 in our image, but this partition's state for it is
    still that of epoch 9 (the partition has not been shown the image yet): the leader does
    not propose adding it (Kafka's isBrokerEpochIsrEligible)."""
    image = make_image()
    p = leading(image)
    caught_up(p, 3, EPOCHS[3])
    newer = make_image(epochs={1: 5, 2: 7, 3: 10})
    asyncio.run(quorum.propose_isr(FakeBroker(newer), p, [1, 2, 3]))
    assert sent == []


def test_proposed_with_the_new_incarnations_epoch_once_it_fetched(sent) -> None:
    p = leading(make_image())
    newer = make_image(epochs={1: 5, 2: 7, 3: 10})
    p.observe_broker_epochs(newer.brokers)
    caught_up(p, 3, 10)
    assert p.isr_candidates(LAG_MAX_MS) == [1, 2, 3]
    asyncio.run(quorum.propose_isr(FakeBroker(newer), p, [1, 2, 3]))
    [(_, _, fields)] = sent
    [part] = fields["topics"][0]["partitions"]
    assert [(m["broker_id"], m["broker_epoch"]) for m in part["new_isr_with_epochs"]] == [
        (1, 5), (2, 7), (3, 10)]


def test_eligible_isr_epoch_check() -> None:
    image = make_image()
    assert quorum.eligible_isr(image, (1, 2), [1, 2, 3], lambda b: 9) == [1, 2, 3]
    assert quorum.eligible_isr(image, (1, 2), [1, 2, 3], lambda b: -1) == [1, 2, 3]
    assert quorum.eligible_isr(image, (1, 2), [1, 2, 3], lambda b: 8) == [1, 2]
    # members already in the ISR are not re-checked (a shrink never adds anyone)
    assert quorum.eligible_isr(image, (1, 2, 3), [1, 3], lambda b: 8) == [1, 3]
    assert partition_mod.UNKNOWN_BROKER_EPOCH == quorum.NO_BROKER_EPOCH
