"""One partition on one broker: its log plus leader or follower state.

The leader tracks each follower's log end offset (from their Fetch requests), advances the high
watermark to the minimum LEO of the ISR, wakes delayed produces (acks=all) and delayed fetches,
and proposes ISR shrinks / expands. A follower only holds its log; a fetcher feeds it.

KIP-903, leader side: each follower's fetch state belongs to one incarnation of that broker,
named by its broker epoch. The leader learns the epoch from its metadata image (when the image
changes, and as of each Fetch request's arrival; our Fetch stops at v12, so there is no
ReplicaState.ReplicaEpoch to read). When the epoch changes the follower restarted, possibly
with an empty or truncated disk: its state is forgotten (Kafka's Replica.resetReplicaState), so
neither the high watermark nor an ISR expansion can rest on what the previous incarnation had
fetched, and a fetch stamped with an older epoch than the state's is ignored (Kafka's
Replica.updateFetchStateOrThrow fences such a stale update).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sized
from dataclasses import dataclass, field
from typing import TypeVar

from core.common.errors import (
    FencedLeaderEpochError,
    NotEnoughReplicasError,
    NotLeaderOrFollowerError,
    RequestTimedOutError,
    UnknownLeaderEpochError,
)
from core.common.types import TopicPartition
from core.metadata.image import BrokerRegistration, PartitionRegistration
from core.replication.quota import ReplicationQuota

log = logging.getLogger(__name__)

_Records = TypeVar("_Records", bound=Sized)


#: a follower's broker epoch not known (yet): its fetches are not checked against one
UNKNOWN_BROKER_EPOCH = -1


@dataclass(slots=True)
class FollowerState:
    """What the leader knows of one follower, as of the incarnation `broker_epoch`."""

    log_end_offset: int = -1
    last_caught_up_ms: float = 0.0
    last_fetch_ms: float = 0.0
    broker_epoch: int = UNKNOWN_BROKER_EPOCH

    def reset(self, broker_epoch: int, now_ms: float, in_sync: bool) -> None:
        """A new incarnation: forget the previous one's progress. An ISR member keeps
        replica.lag.time.max.ms from now to prove itself before a shrink, others start
        out of date (Kafka's resetReplicaState); neither counts as having fetched."""
        self.log_end_offset = -1
        self.last_fetch_ms = 0.0
        self.last_caught_up_ms = now_ms if in_sync else 0.0
        self.broker_epoch = broker_epoch


@dataclass(slots=True)
class PartitionState:
    registration: PartitionRegistration
    followers: dict[int, FollowerState] = field(default_factory=dict)


class Partition:
    """A partition replica on this broker."""

    def __init__(self, tp: TopicPartition, log_: object, node_id: int,
                 registration: PartitionRegistration, min_insync_replicas: int,
                 leader_quota: ReplicationQuota | None = None) -> None:
        self.tp = tp
        self.log = log_  # core.storage.log.Log
        self.node_id = node_id
        self.registration = registration
        self.min_insync_replicas = min_insync_replicas
        self.followers: dict[int, FollowerState] = {}
        self._data_event = asyncio.Event()
        self._hw_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self.isr_change_pending = False
        #: when the ISR last changed: only a follower that fetched since may rejoin
        self._registered_ms = _now_ms()
        #: after a refused ISR change, when to propose again
        self.isr_retry_at_ms = 0.0
        #: this broker's leader-side replication throttle (KIP-73), if any
        self.leader_quota = leader_quota
        self._become(registration)

    # role --------------------------------------------------------------------------------
    @property
    def is_leader(self) -> bool:
        return self.registration.leader == self.node_id

    @property
    def leader_epoch(self) -> int:
        return self.registration.leader_epoch

    def update_registration(self, registration: PartitionRegistration) -> bool:
        """Apply a new registration from metadata; returns True when the role/epoch changed."""
        old = self.registration
        self.registration = registration
        self.isr_change_pending = False
        if old.isr != registration.isr:
            self._registered_ms = _now_ms()
        if old.partition_epoch != registration.partition_epoch:
            self.isr_retry_at_ms = 0.0  # the metadata a refused change waited for is here
        if (old.leader, old.leader_epoch) != (registration.leader, registration.leader_epoch):
            self._become(registration)
            return True
        self._maybe_advance_hw()
        return False

    def _become(self, registration: PartitionRegistration) -> None:
        now = _now_ms()
        if registration.leader == self.node_id:
            self.followers = {b: FollowerState(last_caught_up_ms=now, last_fetch_ms=now)
                              for b in registration.replicas if b != self.node_id}
            self._maybe_advance_hw()
        else:
            self.followers = {}
            self._fail_waiters(NotLeaderOrFollowerError(
                f"{self.tp}: leadership moved to {registration.leader}"))
        self._wake_fetchers()

    # leader: epochs ----------------------------------------------------------------------
    def check_leader_epoch(self, current_leader_epoch: int, *, need_leader: bool = True) -> None:
        """Validate a client's current_leader_epoch (-1 means 'not given') as Kafka does."""
        if need_leader and not self.is_leader:
            raise NotLeaderOrFollowerError(f"{self.tp}: broker {self.node_id} is not the leader")
        if current_leader_epoch < 0:
            return
        if current_leader_epoch < self.leader_epoch:
            raise FencedLeaderEpochError(f"{self.tp}: epoch {current_leader_epoch} is fenced")
        if current_leader_epoch > self.leader_epoch:
            raise UnknownLeaderEpochError(f"{self.tp}: epoch {current_leader_epoch} unknown")

    # leader: produce ---------------------------------------------------------------------
    def append_as_leader(self, records: bytes, acks: int) -> object:
        """Append a producer's batches; returns the storage AppendResult."""
        if not self.is_leader:
            raise NotLeaderOrFollowerError(f"{self.tp}: broker {self.node_id} is not the leader")
        if acks == -1 and len(self.registration.isr) < self.min_insync_replicas:
            raise NotEnoughReplicasError(
                f"{self.tp}: ISR {list(self.registration.isr)} is smaller than "
                f"min.insync.replicas {self.min_insync_replicas}")
        result = self.log.append_as_leader(records, leader_epoch=self.leader_epoch)
        self._maybe_advance_hw()
        self._wake_fetchers()
        return result

    async def wait_for_hw(self, offset: int, timeout_s: float) -> None:
        """acks=all: wait until the high watermark passes `offset` (delayed produce)."""
        if self.log.high_watermark > offset:
            return
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        self._hw_waiters.append((offset, fut))
        # a timer instead of asyncio.wait_for, which wraps every delayed produce in a Task
        timer = loop.call_later(timeout_s, _expire, fut, self.tp, timeout_s)
        try:
            await fut
        finally:
            timer.cancel()

    # leader: followers -------------------------------------------------------------------
    def observe_broker_epochs(self, brokers: Mapping[int, BrokerRegistration]) -> None:
        """The metadata image's broker registrations: a follower registered at another epoch
        than its fetch state's is a new incarnation, whose state starts over. A follower with
        no registration keeps its state (it cannot join the ISR meanwhile; it comes back at a
        new epoch)."""
        for b, state in self.followers.items():
            registration = brokers.get(b)
            if registration is not None and registration.epoch != state.broker_epoch:
                # False (an older image than a fetch already showed us) needs nothing
                self._adopt_broker_epoch(b, state, registration.epoch)

    def _adopt_broker_epoch(self, follower_id: int, state: FollowerState, epoch: int) -> bool:
        """Move `state` to broker epoch `epoch` (not the state's): at first sight (a new
        leader) it is just taken; a newer one is a new incarnation, whose state starts over.
        False when `epoch` is older than the state's: a stale incarnation, to be ignored."""
        if state.broker_epoch == UNKNOWN_BROKER_EPOCH:
            state.broker_epoch = epoch
            return True
        if epoch < state.broker_epoch:
            return False
        log.info("%s: follower %d is a new incarnation (broker epoch %d -> %d): its fetch "
                 "state starts over", self.tp, follower_id, state.broker_epoch, epoch)
        state.reset(epoch, _now_ms(), follower_id in self.registration.isr)
        return True

    def follower_broker_epoch(self, follower_id: int) -> int:
        """The broker epoch of the incarnation whose fetches the follower's state holds."""
        state = self.followers.get(follower_id)
        return state.broker_epoch if state is not None else UNKNOWN_BROKER_EPOCH

    def record_follower_fetch(self, follower_id: int, fetch_offset: int,
                              broker_epoch: int = UNKNOWN_BROKER_EPOCH) -> None:
        """A follower fetched from `fetch_offset`: it has everything before it.

        `broker_epoch` is the follower's broker epoch as of the Fetch request (the leader's
        metadata image when it arrived): a newer one than the state's starts the state over
        (a new incarnation); an older one is a stale incarnation's fetch and is ignored."""
        state = self.followers.get(follower_id)
        if state is None:
            return
        if broker_epoch != UNKNOWN_BROKER_EPOCH and broker_epoch != state.broker_epoch \
                and not self._adopt_broker_epoch(follower_id, state, broker_epoch):
            return
        now = _now_ms()
        state.log_end_offset = fetch_offset
        state.last_fetch_ms = now
        if fetch_offset >= self.log.log_end_offset:
            state.last_caught_up_ms = now
        self._maybe_advance_hw()

    def throttle_replica_read(self, replica_id: int, data: _Records) -> _Records | bytes:
        """Leader side of the replication throttle (KIP-73), applied to what a fetch read for
        this partition (bytes, or any sized region such as a sendfile FileRegion): a follower
        outside the ISR of a throttled partition gets nothing while the leader quota is
        exceeded (Kafka's shouldLeaderThrottle); bytes served for a throttled partition are
        recorded. Consumers (replica_id < 0) and unthrottled partitions pass untouched."""
        quota = self.leader_quota
        if replica_id < 0 or quota is None or not len(data) or not quota.is_throttled(self.tp):
            return data
        if replica_id not in self.registration.isr and quota.is_quota_exceeded():
            close = getattr(data, "close", None)
            if close is not None:  # a file region holds a descriptor: release it now
                close()
            return b""
        quota.record(len(data))
        return data

    def isr_candidates(self, lag_time_max_ms: int) -> list[int] | None:
        """The ISR the leader should propose (shrink laggards, expand caught-up followers),
        or None when it is already right."""
        now = _now_ms()
        if not self.is_leader or self.isr_change_pending or now < self.isr_retry_at_ms:
            return None
        isr = set(self.registration.isr)
        new = {self.node_id}
        for b, state in self.followers.items():
            caught_up = now - state.last_caught_up_ms <= lag_time_max_ms
            if b in isr:
                keep = caught_up  # shrink: not caught up for replica.lag.time.max.ms
            else:  # expand: alive (fetched since the ISR last changed) and has the HW
                keep = (state.last_fetch_ms > self._registered_ms
                        and 0 <= self.log.high_watermark <= state.log_end_offset)
            if keep:
                new.add(b)
        if new == isr:
            return None
        return [b for b in self.registration.replicas if b in new]

    def _maybe_advance_hw(self) -> None:
        if not self.is_leader:
            return
        leo = self.log.log_end_offset
        hw = leo
        for b in self.registration.isr:
            if b == self.node_id:
                continue
            state = self.followers.get(b)
            hw = min(hw, state.log_end_offset if state else 0)
        if hw > self.log.high_watermark:
            self.log.high_watermark = hw
            self._complete_waiters()
            self._wake_fetchers()

    def _complete_waiters(self) -> None:
        hw = self.log.high_watermark
        remaining = []
        for offset, fut in self._hw_waiters:
            if fut.done():
                continue
            if hw > offset:
                fut.set_result(None)
            else:
                remaining.append((offset, fut))
        self._hw_waiters = remaining

    def _fail_waiters(self, error: Exception) -> None:
        for _, fut in self._hw_waiters:
            if not fut.done():
                fut.set_exception(error)
        self._hw_waiters = []

    # fetch wake-ups ----------------------------------------------------------------------
    def _wake_fetchers(self) -> None:
        self._data_event.set()
        self._data_event = asyncio.Event()

    @property
    def data_event(self) -> asyncio.Event:
        """An event set at the next append or HW change (for delayed fetch)."""
        return self._data_event

    def close(self) -> None:
        self._fail_waiters(NotLeaderOrFollowerError(f"{self.tp} is no longer hosted here"))
        self._wake_fetchers()


def _expire(fut: asyncio.Future[None], tp: TopicPartition, timeout_s: float) -> None:
    if not fut.done():
        fut.set_exception(RequestTimedOutError(
            f"{tp}: not replicated to the ISR within {timeout_s * 1000:.0f} ms"))


def _now_ms() -> float:
    return time.monotonic() * 1000.0
