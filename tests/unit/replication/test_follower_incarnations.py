"""KIP-903, leader side: a follower's fetch state belongs to one incarnation (broker epoch).

A follower that restarts (new broker epoch, possibly an empty or truncated disk) must not be
re-added to the ISR, nor count for the high watermark, on what its previous incarnation had
fetched (Kafka: Replica.resetReplicaState / updateFetchStateOrThrow, Partition
.isReplicaIsrEligible). The leader learns epochs from its metadata image, both when the image
changes (ReplicaManager.apply_image -> Partition.observe_broker_epochs) and as of a Fetch
request's arrival (the handler stamps record_follower_fetch with the image's epoch).

Deterministic: a Partition over a stand-in log (offsets only) and a fake clock.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from core.common.config import BrokerConfig
from core.common.types import TopicPartition
from core.metadata.image import BrokerRegistration, MetadataImage, PartitionRegistration
from core.metadata.records import (
    PartitionChanged,
    PartitionCreated,
    RegisterBroker,
    TopicCreated,
    UnfenceBroker,
)
from core.replication import partition as partition_mod
from core.replication.partition import Partition
from core.replication.replica_manager import ReplicaManager
from core.storage.log_manager import LogManager

pytestmark = pytest.mark.timeout(30)

LAG_MAX_MS = 30_000
TP = TopicPartition("t", 0)


class Clock:
    def __init__(self) -> None:
        self.ms = 1_000_000.0

    def __call__(self) -> float:
        return self.ms

    def tick(self, ms: float = 10.0) -> None:
        self.ms += ms


class StubLog:
    """The offsets a leader Partition reads and moves."""

    def __init__(self, leo: int, hw: int) -> None:
        self.log_end_offset = leo
        self.high_watermark = hw


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(partition_mod, "_now_ms", c)
    return c


def brokers(**epochs: int) -> dict[int, BrokerRegistration]:
    """{"b2": 7} -> broker 2 registered (unfenced) at epoch 7."""
    return {int(k[1:]): BrokerRegistration(int(k[1:]), "127.0.0.1", 9000, None, e, False)
            for k, e in epochs.items()}


def leader(isr: tuple[int, ...], leo: int = 10, hw: int = 10, partition_epoch: int = 0
           ) -> Partition:
    reg = PartitionRegistration((1, 2, 3), isr, 1, 0, partition_epoch)
    p = Partition(TP, StubLog(leo, hw), 1, reg, min_insync_replicas=1)
    p.observe_broker_epochs(brokers(b1=5, b2=7, b3=9))
    return p


def shrink(p: Partition, isr: tuple[int, ...]) -> None:
    reg = p.registration
    p.update_registration(PartitionRegistration(reg.replicas, isr, reg.leader,
                                                reg.leader_epoch, reg.partition_epoch + 1))


def test_restarted_follower_is_not_re_added_on_its_old_incarnations_progress(clock) -> None:
    """Broker 3 was caught up (offset 10 = HW), left the ISR, and its old incarnation's last
    fetch landed after that. It restarts with an empty disk at epoch 10: the leader must not
    propose it for the ISR until the new incarnation itself reaches the HW."""
    p = leader(isr=(1, 2, 3))
    p.record_follower_fetch(3, 10, 9)
    clock.tick()
    shrink(p, (1, 2))  # broker 3 shut down: out of the ISR
    clock.tick()
    p.record_follower_fetch(3, 10, 9)  # the old incarnation's in-flight fetch
    clock.tick()
    assert p.isr_candidates(LAG_MAX_MS) == [1, 2, 3]  # (what the old state would allow)
    p.observe_broker_epochs(brokers(b1=5, b2=7, b3=10))  # broker 3 re-registered
    assert p.isr_candidates(LAG_MAX_MS) is None
    assert p.follower_broker_epoch(3) == 10
    # the new incarnation fetches from 0: behind the HW, still out
    clock.tick()
    p.record_follower_fetch(3, 0, 10)
    assert p.isr_candidates(LAG_MAX_MS) is None
    # it catches up: now it may join
    clock.tick()
    p.record_follower_fetch(3, 10, 10)
    assert p.isr_candidates(LAG_MAX_MS) == [1, 2, 3]


def test_a_fetch_from_a_new_incarnation_resets_before_the_image_is_applied(clock) -> None:
    """The Fetch handler's image already has epoch 10 for broker 3 (stamped on the request)
    while this partition has not seen that image yet: the fetch starts the state over."""
    p = leader(isr=(1, 2))
    clock.tick()
    p.record_follower_fetch(3, 10, 9)
    assert p.isr_candidates(LAG_MAX_MS) == [1, 2, 3]
    clock.tick()
    p.record_follower_fetch(3, 4, 10)  # new incarnation, truncated disk: behind the HW
    assert p.follower_broker_epoch(3) == 10
    assert p.followers[3].log_end_offset == 4
    assert p.isr_candidates(LAG_MAX_MS) is None


def test_a_stale_incarnations_fetch_is_ignored(clock) -> None:
    """A delayed Fetch of the old incarnation (stamped epoch 9) that completes after the
    state moved to epoch 10 does not count."""
    p = leader(isr=(1, 2))
    p.observe_broker_epochs(brokers(b1=5, b2=7, b3=10))
    clock.tick()
    p.record_follower_fetch(3, 10, 9)
    assert p.followers[3].log_end_offset == -1
    assert p.isr_candidates(LAG_MAX_MS) is None


def test_high_watermark_does_not_rest_on_a_restarted_isr_member(clock) -> None:
    """ISR {1,2,3}; broker 2's old incarnation had fetched up to 15, broker 3 up to 5 (HW 5).
    Broker 2 restarts; when broker 3 catches up, the HW must not jump to 15 on broker 2's
    previous progress (its new incarnation may hold nothing)."""
    p = leader(isr=(1, 2, 3), leo=20, hw=0)
    p.record_follower_fetch(2, 15, 7)
    p.record_follower_fetch(3, 5, 9)
    assert p.log.high_watermark == 5
    p.observe_broker_epochs(brokers(b1=5, b2=8, b3=9))
    p.record_follower_fetch(3, 20, 9)
    assert p.log.high_watermark == 5
    p.record_follower_fetch(2, 12, 8)  # the new incarnation has caught up to 12
    assert p.log.high_watermark == 12


def test_restarted_isr_member_gets_the_lag_time_to_fetch_then_is_shrunk(clock) -> None:
    p = leader(isr=(1, 2, 3))
    p.record_follower_fetch(2, 10, 7)
    p.record_follower_fetch(3, 10, 9)
    p.observe_broker_epochs(brokers(b1=5, b2=8, b3=9))
    clock.tick(LAG_MAX_MS - 100)
    p.record_follower_fetch(3, 10, 9)
    assert p.isr_candidates(LAG_MAX_MS) is None  # in its grace period
    clock.tick(200)
    assert p.isr_candidates(LAG_MAX_MS) == [1, 3]  # never fetched as epoch 8: shrunk


def test_same_epoch_and_unregistered_followers_keep_their_state(clock) -> None:
    p = leader(isr=(1, 2))
    p.record_follower_fetch(3, 10, 9)
    p.observe_broker_epochs(brokers(b1=5, b2=7, b3=9))  # unchanged
    assert p.followers[3].log_end_offset == 10
    p.observe_broker_epochs(brokers(b1=5, b2=7))  # 3 unregistered for now
    assert p.followers[3].log_end_offset == 10 and p.follower_broker_epoch(3) == 9
    p.observe_broker_epochs(brokers(b1=5, b2=7, b3=9))  # an older image: no change
    assert p.followers[3].log_end_offset == 10


def test_epochs_are_learned_without_reset_when_first_seen(clock) -> None:
    reg = PartitionRegistration((1, 2, 3), (1, 2), 1, 0, 0)
    p = Partition(TP, StubLog(10, 10), 1, reg, min_insync_replicas=1)
    assert p.follower_broker_epoch(3) == -1
    clock.tick()
    p.record_follower_fetch(3, 10)  # no epoch known: recorded, unchecked
    p.observe_broker_epochs(brokers(b1=5, b2=7, b3=9))
    assert p.follower_broker_epoch(3) == 9 and p.followers[3].log_end_offset == 10


# --- wiring: the ReplicaManager shows each new image to the partitions it leads -------------
@pytest.fixture
def logs(tmp_path: Path):
    manager = LogManager(tmp_path, BrokerConfig({"node.id": "1"}).topic_defaults())
    yield manager
    manager.close()


def _image(epochs: dict[int, int], isr: list[int]) -> MetadataImage:
    records = []
    for b, e in epochs.items():
        records += [RegisterBroker(b, "127.0.0.1", 9000 + b, None, e, f"i{b}-{e}"),
                    UnfenceBroker(b, e)]
    records += [TopicCreated("t", "t-id"), PartitionCreated("t", 0, [1, 2, 3], [1, 2, 3], 1)]
    if isr != [1, 2, 3]:
        records.append(PartitionChanged("t", 0, isr=isr))
    return MetadataImage().apply_batch(records, 10)


def test_replica_manager_resets_a_follower_when_the_image_shows_a_new_epoch(
        logs, clock) -> None:
    rm = ReplicaManager(1, BrokerConfig({"node.id": "1"}), logs)
    rm.apply_image(_image({1: 5, 2: 7, 3: 9}, [1, 2]))
    p = rm.partitions[TP]
    assert p.is_leader and p.follower_broker_epoch(3) == 9
    clock.tick()
    p.record_follower_fetch(3, 0, 9)
    assert p.followers[3].log_end_offset == 0
    rm.apply_image(_image({1: 5, 2: 7, 3: 10}, [1, 2]))
    assert p.follower_broker_epoch(3) == 10
    assert p.followers[3].log_end_offset == -1 and p.followers[3].last_fetch_ms == 0
