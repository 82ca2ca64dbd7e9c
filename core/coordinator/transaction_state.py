"""A transactional id's state and its state machine (Kafka's TransactionMetadata / TxnState).

    Empty / CompleteCommit / CompleteAbort --AddPartitions--> Ongoing
    Ongoing --EndTxn(commit)--> PrepareCommit --markers written--> CompleteCommit
    Ongoing --EndTxn(abort), timeout, fencing--> PrepareAbort --markers--> CompleteAbort
    Empty / Complete* --InitProducerId--> Empty (epoch bumped)
    Ongoing --InitProducerId--> PrepareEpochFence (memory only) --> PrepareAbort (epoch bumped)

Transitions are computed as new immutable `TxnLogValue`s (what is written to
__transaction_state); the coordinator applies one to the metadata only once it is durable.
No I/O here.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from core.common.types import TopicPartition
from core.coordinator.txn_records import TxnLogValue

__all__ = ["MAX_EPOCH", "TxnMetadata", "TxnState", "can_transition"]

#: Short.MAX_VALUE; an epoch that reached MAX_EPOCH - 1 is exhausted and the id gets a new pid
MAX_EPOCH = 32767


class TxnState(enum.IntEnum):
    """Kafka's TransactionState ids (the status byte of TransactionLogValue)."""

    EMPTY = 0
    ONGOING = 1
    PREPARE_COMMIT = 2
    PREPARE_ABORT = 3
    COMPLETE_COMMIT = 4
    COMPLETE_ABORT = 5
    DEAD = 6
    PREPARE_EPOCH_FENCE = 7

    @property
    def display(self) -> str:
        """The name ListTransactions / DescribeTransactions report."""
        return _NAMES[self]

    @classmethod
    def from_display(cls, name: str) -> TxnState | None:
        return _BY_NAME.get(name)

    @property
    def is_prepare(self) -> bool:
        return self in (TxnState.PREPARE_COMMIT, TxnState.PREPARE_ABORT)

    @property
    def is_complete(self) -> bool:
        return self in (TxnState.COMPLETE_COMMIT, TxnState.COMPLETE_ABORT)


_NAMES = {
    TxnState.EMPTY: "Empty", TxnState.ONGOING: "Ongoing",
    TxnState.PREPARE_COMMIT: "PrepareCommit", TxnState.PREPARE_ABORT: "PrepareAbort",
    TxnState.COMPLETE_COMMIT: "CompleteCommit", TxnState.COMPLETE_ABORT: "CompleteAbort",
    TxnState.DEAD: "Dead", TxnState.PREPARE_EPOCH_FENCE: "PrepareEpochFence",
}
_BY_NAME = {v: k for k, v in _NAMES.items()}

_VALID_PREVIOUS: dict[TxnState, frozenset[TxnState]] = {
    TxnState.EMPTY: frozenset({TxnState.EMPTY, TxnState.COMPLETE_COMMIT,
                               TxnState.COMPLETE_ABORT}),
    TxnState.ONGOING: frozenset({TxnState.ONGOING, TxnState.EMPTY, TxnState.COMPLETE_COMMIT,
                                 TxnState.COMPLETE_ABORT}),
    TxnState.PREPARE_COMMIT: frozenset({TxnState.ONGOING}),
    TxnState.PREPARE_ABORT: frozenset({TxnState.ONGOING, TxnState.PREPARE_EPOCH_FENCE}),
    TxnState.COMPLETE_COMMIT: frozenset({TxnState.PREPARE_COMMIT}),
    TxnState.COMPLETE_ABORT: frozenset({TxnState.PREPARE_ABORT}),
    TxnState.DEAD: frozenset({TxnState.EMPTY, TxnState.COMPLETE_COMMIT,
                              TxnState.COMPLETE_ABORT}),
    TxnState.PREPARE_EPOCH_FENCE: frozenset({TxnState.ONGOING}),
}


def can_transition(old: TxnState, new: TxnState) -> bool:
    """Whether Kafka allows `old` -> `new`."""
    return old in _VALID_PREVIOUS[new]


class IllegalTransition(Exception):
    """A bug: the coordinator asked for a transition Kafka does not allow."""


@dataclass(slots=True)
class TxnMetadata:
    """What the coordinator keeps per transactional id."""

    transactional_id: str
    producer_id: int
    producer_epoch: int
    timeout_ms: int
    state: TxnState = TxnState.EMPTY
    partitions: set[TopicPartition] = field(default_factory=set)
    start_ms: int = -1
    last_update_ms: int = -1
    #: the id/epoch before the last bump, to recognise a retried InitProducerId (KIP-360)
    last_producer_id: int = -1
    last_producer_epoch: int = -1
    #: a write for this id is in flight: other requests get CONCURRENT_TRANSACTIONS
    pending: TxnState | None = None
    #: __transaction_state partition leader epoch when the state was loaded or last written
    coordinator_epoch: int = 0

    # --- transitions (pure: return the value to persist) ------------------------------------

    def _value(self, state: TxnState, now_ms: int, *, producer_id: int | None = None,
               epoch: int | None = None, timeout_ms: int | None = None,
               partitions: set[TopicPartition] | None = None,
               start_ms: int | None = None) -> TxnLogValue:
        if not can_transition(self.state, state):
            raise IllegalTransition(
                f"{self.transactional_id}: {self.state.display} -> {state.display}")
        return TxnLogValue(
            self.producer_id if producer_id is None else producer_id,
            self.producer_epoch if epoch is None else epoch,
            self.timeout_ms if timeout_ms is None else timeout_ms, int(state),
            frozenset(self.partitions if partitions is None else partitions), now_ms,
            self.start_ms if start_ms is None else start_ms)

    def prepare_init(self, producer_id: int, epoch: int, timeout_ms: int,
                     now_ms: int) -> TxnLogValue:
        """InitProducerId: a fresh Empty state with the (bumped or new) producer id/epoch."""
        return self._value(TxnState.EMPTY, now_ms, producer_id=producer_id, epoch=epoch,
                           timeout_ms=timeout_ms, partitions=set(), start_ms=-1)

    def prepare_add_partitions(self, added: set[TopicPartition], now_ms: int) -> TxnLogValue:
        ongoing = self.state == TxnState.ONGOING
        return self._value(TxnState.ONGOING, now_ms,
                           partitions=(self.partitions if ongoing else set()) | added,
                           start_ms=self.start_ms if ongoing else now_ms)

    def prepare_end(self, commit: bool, now_ms: int, *, bump_epoch: bool = False,
                    ) -> TxnLogValue:
        state = TxnState.PREPARE_COMMIT if commit else TxnState.PREPARE_ABORT
        epoch = self.producer_epoch + 1 if bump_epoch else self.producer_epoch
        return self._value(state, now_ms, epoch=epoch)

    def prepare_complete(self, now_ms: int) -> TxnLogValue:
        state = (TxnState.COMPLETE_COMMIT if self.state == TxnState.PREPARE_COMMIT
                 else TxnState.COMPLETE_ABORT)
        return self._value(state, now_ms, partitions=set())

    def apply(self, value: TxnLogValue) -> None:
        """Adopt a persisted value (after a successful write, or while loading)."""
        if (value.producer_id, value.producer_epoch) != (self.producer_id,
                                                          self.producer_epoch):
            self.last_producer_id = self.producer_id
            self.last_producer_epoch = self.producer_epoch
        self.producer_id = value.producer_id
        self.producer_epoch = value.producer_epoch
        self.timeout_ms = value.timeout_ms
        self.state = TxnState(value.status)
        self.partitions = set(value.partitions)
        self.last_update_ms = value.last_update_ms
        self.start_ms = value.start_ms

    @classmethod
    def from_value(cls, transactional_id: str, value: TxnLogValue) -> TxnMetadata:
        meta = cls(transactional_id, value.producer_id, value.producer_epoch, value.timeout_ms)
        meta.apply(value)
        meta.last_producer_id = meta.last_producer_epoch = -1
        return meta

    @property
    def epoch_exhausted(self) -> bool:
        return self.producer_epoch >= MAX_EPOCH - 1
