"""The transaction coordinator (Kafka's TransactionCoordinator + TransactionStateManager +
TransactionMarkerChannelManager, KIP-98 / KIP-360 / KIP-447).

The coordinator of a transactional id is the leader of its __transaction_state partition; the
broker calls `on_elected` / `on_resigned` as leadership comes and goes, and the state of every
id of the partition is read back on election, so a transaction survives the loss of a broker:
transactions found in PrepareCommit / PrepareAbort get their markers (re)sent and are
completed; Ongoing ones are aborted when they time out.

Everything runs on the broker's event loop without locks. A write to __transaction_state for an
id marks it `pending`; other requests for that id meanwhile get CONCURRENT_TRANSACTIONS, as in
Kafka. A new state is adopted in memory only once durable (acks=all), and only if this broker
still coordinates the partition with the same coordinator epoch.

The coordinator does no I/O itself: `TxnStateStore` (the partition's log) and `MarkerWriter`
(WriteTxnMarkers to partition leaders) are given by the broker; tests use in-memory fakes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from kio.schema.errors import ErrorCode

from core.common.config import BrokerConfig
from core.common.errors import CorruptRecordError, KafkaError
from core.common.types import TopicPartition
from core.coordinator.transaction_state import TxnMetadata, TxnState
from core.coordinator.txn_records import (
    TxnLogValue,
    decode_txn_key,
    decode_txn_value,
    encode_txn_key,
    encode_txn_value,
    txn_partition_for,
)
from core.records.batch import build_batch, iter_records

log = logging.getLogger(__name__)

E = ErrorCode
TXN_TOPIC = "__transaction_state"
OFFSETS_TOPIC = "__consumer_offsets"
DEFAULT_ABORT_INTERVAL_MS = 10_000
MARKER_RETRY_BACKOFF_S = 0.1
_LOADING, _LOADED = "loading", "loaded"

_APPEND_UNAVAILABLE = {E.unknown_topic_or_partition, E.not_enough_replicas,
                       E.not_enough_replicas_after_append, E.request_timed_out}
_APPEND_NOT_COORDINATOR = {E.not_leader_or_follower, E.kafka_storage_error}
#: marker results that end the attempt for a partition (done, or the partition is gone)
_MARKER_DONE = {E.none, E.unknown_topic_or_partition}


class TxnStateStore(Protocol):
    """The __transaction_state partitions, as seen by their leader (like OffsetsStore)."""

    async def append(self, partition: int, batch: bytes) -> int:
        """Append one batch; resolves once replicated to the ISR (acks=all)."""
        ...

    def read(self, partition: int) -> Iterable[bytes]:
        """Every batch of the partition from the log start."""
        ...


class MarkerWriter(Protocol):
    """Writes transaction markers to the leaders of data partitions."""

    async def write_markers(self, producer_id: int, producer_epoch: int,
                            coordinator_epoch: int, commit: bool,
                            partitions: list[TopicPartition],
                            ) -> dict[TopicPartition, ErrorCode]:
        """WriteTxnMarkers for one transaction; a result per partition."""
        ...


@dataclass(frozen=True, slots=True)
class TxnDescription:
    """DescribeTransactions / ListTransactions view of one transactional id."""

    transactional_id: str
    error: ErrorCode
    state: str = ""
    timeout_ms: int = 0
    start_ms: int = -1
    producer_id: int = -1
    producer_epoch: int = -1
    partitions: tuple[TopicPartition, ...] = ()


def _append_error(code: ErrorCode) -> ErrorCode:
    """Kafka's mapping of __transaction_state append errors to what clients see."""
    if code == E.none:
        return code
    if code in _APPEND_UNAVAILABLE:
        return E.coordinator_not_available
    if code in _APPEND_NOT_COORDINATOR:
        return E.not_coordinator
    return E.unknown_server_error


class TransactionCoordinator:
    """Transactions of the transactional ids whose __transaction_state partition we lead."""

    def __init__(self, *, node_id: int, config: BrokerConfig, store: TxnStateStore,
                 markers: MarkerWriter, allocate_producer_id: Callable[[], Awaitable[int]],
                 partition_exists: Callable[[TopicPartition], bool] = lambda tp: True,
                 group_partition: Callable[[str], int] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.node_id = node_id
        self.config = config
        self._store = store
        self._markers = markers
        self._allocate = allocate_producer_id
        self._partition_exists = partition_exists
        self._group_partition = group_partition
        self._clock = clock
        self.num_partitions: int = int(config["transaction.state.log.num.partitions"])
        self.max_timeout_ms: int = int(config["transaction.max.timeout.ms"])
        raw = getattr(config, "raw", {}) or {}
        self.abort_interval_ms = int(raw.get(
            "transaction.abort.timed.out.transaction.cleanup.interval.ms",
            DEFAULT_ABORT_INTERVAL_MS))
        #: partition -> (status, coordinator epoch)
        self._partitions: dict[int, tuple[str, int]] = {}
        self._txns: dict[str, TxnMetadata] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._timer: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ lifecycle

    def _now(self) -> int:
        return int(self._clock() * 1000)

    def partition_for(self, transactional_id: str) -> int:
        """The __transaction_state partition of `transactional_id` (Kafka's hash)."""
        return txn_partition_for(transactional_id, self.num_partitions)

    @property
    def owned_partitions(self) -> dict[int, str]:
        return {p: status for p, (status, _) in self._partitions.items()}

    async def start(self) -> None:
        """Start the timed-out transaction abort loop."""
        if self._timer is None:
            self._timer = asyncio.get_running_loop().create_task(self._run(),
                                                                 name="txn-timeouts")

    async def stop(self) -> None:
        """Stop timers and marker tasks; in-memory state is dropped (the log has it)."""
        if self._timer is not None:
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer
            self._timer = None
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for partition in list(self._partitions):
            await self.on_resigned(partition)

    async def _run(self) -> None:
        interval = max(self.abort_interval_ms, 10) / 1000
        while True:
            await asyncio.sleep(interval)
            try:
                await self.abort_timed_out()
            except Exception:
                log.exception("transaction timeout check failed")

    def _spawn(self, coro: Awaitable[Any], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def on_elected(self, partition: int, coordinator_epoch: int) -> None:
        """This broker now leads __transaction_state-`partition`: load its ids, then finish
        the transactions that were being committed or aborted."""
        current = self._partitions.get(partition)
        if current is not None:
            if coordinator_epoch > current[1]:
                self._partitions[partition] = (current[0], coordinator_epoch)
                for meta in self._txns.values():
                    if self.partition_for(meta.transactional_id) == partition:
                        meta.coordinator_epoch = coordinator_epoch
            return
        self._partitions[partition] = (_LOADING, coordinator_epoch)
        values: dict[str, TxnLogValue | None] = {}
        for count, batch in enumerate(self._store.read(partition), 1):
            for record in iter_records(batch):
                if record.key is None or record.is_control:
                    continue
                try:
                    tid = decode_txn_key(bytes(record.key))
                    values[tid] = (None if record.value is None
                                   else decode_txn_value(bytes(record.value)))
                except (CorruptRecordError, UnicodeDecodeError) as exc:
                    log.warning("skipping unreadable __transaction_state-%d record at %d: %s",
                                partition, record.offset, exc)
            if count % 64 == 0:
                await asyncio.sleep(0)
                if self._partitions.get(partition, (None,))[0] != _LOADING:
                    return
        if self._partitions.get(partition) != (_LOADING, coordinator_epoch):
            return
        resume = []
        for tid, value in values.items():
            if value is None or value.status == TxnState.DEAD:
                continue
            meta = TxnMetadata.from_value(tid, value)
            meta.coordinator_epoch = coordinator_epoch
            self._txns[tid] = meta
            if meta.state.is_prepare:
                resume.append(meta)
        self._partitions[partition] = (_LOADED, coordinator_epoch)
        log.info("loaded __transaction_state-%d (epoch %d): %d transactional ids, "
                 "%d to complete", partition, coordinator_epoch,
                 sum(1 for m in self._txns.values()
                     if self.partition_for(m.transactional_id) == partition), len(resume))
        for meta in resume:
            self._spawn(self._complete(meta), f"txn-complete-{meta.transactional_id}")

    async def on_resigned(self, partition: int) -> None:
        """No longer the leader of `partition`: forget its ids (a marker task in flight
        notices and stops)."""
        self._partitions.pop(partition, None)
        for tid in [t for t in self._txns if self.partition_for(t) == partition]:
            del self._txns[tid]

    # ------------------------------------------------------------------ validation

    def _coordinator_error(self, transactional_id: str | None) -> ErrorCode | None:
        if not transactional_id:
            return E.invalid_request
        status = self._partitions.get(self.partition_for(transactional_id))
        if status is None:
            return E.not_coordinator
        if status[0] == _LOADING:
            return E.coordinator_load_in_progress
        return None

    def _owns(self, meta: TxnMetadata) -> bool:
        """Still the coordinator of `meta`, at the epoch it was loaded/written with."""
        status = self._partitions.get(self.partition_for(meta.transactional_id))
        return (status is not None and status[1] == meta.coordinator_epoch
                and self._txns.get(meta.transactional_id) is meta)

    def _check_producer(self, meta: TxnMetadata | None, producer_id: int,
                        producer_epoch: int) -> ErrorCode | None:
        if meta is None or meta.producer_id != producer_id:
            return E.invalid_producer_id_mapping
        if producer_epoch != meta.producer_epoch:
            return E.producer_fenced
        if meta.pending is not None:
            return E.concurrent_transactions
        return None

    # ------------------------------------------------------------------ persistence

    async def _write(self, meta: TxnMetadata, value: TxnLogValue) -> ErrorCode:
        """Persist `value` for `meta` and adopt it; the mapped error otherwise."""
        partition = self.partition_for(meta.transactional_id)
        meta.pending = TxnState(value.status)
        try:
            batch = build_batch([(encode_txn_key(meta.transactional_id),
                                  encode_txn_value(value), [])], timestamp_ms=self._now())
            await self._store.append(partition, batch)
            code = E.none
        except KafkaError as exc:
            code = exc.code
        except Exception:
            log.exception("append to __transaction_state-%d failed", partition)
            code = E.unknown_server_error
        finally:
            meta.pending = None
        code = _append_error(code)
        if code == E.none:
            if not self._owns(meta):
                return E.not_coordinator
            meta.apply(value)
        return code

    # ------------------------------------------------------------------ InitProducerId

    async def init_producer_id(self, transactional_id: str, timeout_ms: int,
                               expected_pid: int = -1, expected_epoch: int = -1,
                               ) -> tuple[ErrorCode, int, int]:
        """InitProducerId with a transactional id: (error, producer id, epoch)."""
        if not 0 < timeout_ms <= self.max_timeout_ms:
            return E.invalid_transaction_timeout, -1, -1
        error = self._coordinator_error(transactional_id)
        if error is not None:
            return error, -1, -1
        meta = self._txns.get(transactional_id)
        if meta is None:
            pid = await self._allocate()
            error = self._coordinator_error(transactional_id)
            if error is not None:
                return error, -1, -1
            meta = self._txns.get(transactional_id)
            if meta is None:
                status = self._partitions[self.partition_for(transactional_id)]
                meta = TxnMetadata(transactional_id, pid, -1, timeout_ms)
                meta.coordinator_epoch = status[1]
                self._txns[transactional_id] = meta
        if meta.pending is not None:
            return E.concurrent_transactions, -1, -1
        if expected_pid >= 0 and expected_pid not in (meta.producer_id, meta.last_producer_id):
            return E.producer_fenced, -1, -1
        state = meta.state
        if state.is_prepare:
            return E.concurrent_transactions, -1, -1
        if state == TxnState.ONGOING:
            # a new instance of this producer: fence the old one and abort its transaction
            await self._abort(meta, bump_epoch=True, reason="fenced by a new producer")
            return E.concurrent_transactions, -1, -1
        if state not in (TxnState.EMPTY, TxnState.COMPLETE_COMMIT, TxnState.COMPLETE_ABORT):
            return E.unknown_server_error, -1, -1
        if expected_pid >= 0:
            current = (meta.producer_id, meta.producer_epoch)
            if (expected_pid, expected_epoch) != current and meta.producer_epoch != -1:
                if (expected_pid, expected_epoch) == (meta.last_producer_id,
                                                      meta.last_producer_epoch):
                    return E.none, meta.producer_id, meta.producer_epoch  # a retried bump
                return E.producer_fenced, -1, -1
        if meta.epoch_exhausted:
            pid, epoch = await self._allocate(), 0
            if self._txns.get(transactional_id) is not meta or meta.pending is not None:
                return E.concurrent_transactions, -1, -1
        else:
            pid, epoch = meta.producer_id, meta.producer_epoch + 1
        value = meta.prepare_init(pid, epoch, timeout_ms, self._now())
        error = await self._write(meta, value)
        if error != E.none:
            return error, -1, -1
        log.info("transactional id %s: producer id %d epoch %d", transactional_id, pid, epoch)
        return E.none, pid, epoch

    # ------------------------------------------------------------------ AddPartitions

    async def add_partitions(self, transactional_id: str, producer_id: int,
                             producer_epoch: int, partitions: Iterable[TopicPartition],
                             verify_only: bool = False) -> dict[TopicPartition, ErrorCode]:
        """AddPartitionsToTxn: a result per partition (one error for all, as Kafka)."""
        wanted = list(dict.fromkeys(partitions))

        def everyone(err: ErrorCode) -> dict[TopicPartition, ErrorCode]:
            return dict.fromkeys(wanted, err)

        error = self._coordinator_error(transactional_id)
        if error is not None:
            return everyone(error)
        meta = self._txns.get(transactional_id)
        error = self._check_producer(meta, producer_id, producer_epoch)
        if error is not None:
            return everyone(error)
        assert meta is not None
        if verify_only:
            return {tp: E.none if tp in meta.partitions and meta.state == TxnState.ONGOING
                    else E.invalid_txn_state for tp in wanted}
        if meta.state.is_prepare or meta.state == TxnState.PREPARE_EPOCH_FENCE:
            return everyone(E.concurrent_transactions)
        unknown = [tp for tp in wanted if not self._partition_exists(tp)]
        if unknown:
            result = everyone(E.operation_not_attempted)
            result.update(dict.fromkeys(unknown, E.unknown_topic_or_partition))
            return result
        added = set(wanted) - meta.partitions
        if meta.state == TxnState.ONGOING and not added:
            return everyone(E.none)
        error = await self._write(meta, meta.prepare_add_partitions(added, self._now()))
        return everyone(error)

    async def add_offsets(self, transactional_id: str, producer_id: int, producer_epoch: int,
                          group_id: str) -> ErrorCode:
        """AddOffsetsToTxn: add the group's __consumer_offsets partition to the transaction."""
        if self._group_partition is None:
            return E.coordinator_not_available
        tp = TopicPartition(OFFSETS_TOPIC, self._group_partition(group_id))
        result = await self.add_partitions(transactional_id, producer_id, producer_epoch, [tp])
        return result[tp]

    # ------------------------------------------------------------------ EndTxn

    async def end_txn(self, transactional_id: str, producer_id: int, producer_epoch: int,
                      commit: bool) -> ErrorCode:
        """EndTxn: answers once PrepareCommit/PrepareAbort is durable; markers follow."""
        error = self._coordinator_error(transactional_id)
        if error is not None:
            return error
        meta = self._txns.get(transactional_id)
        error = self._check_producer(meta, producer_id, producer_epoch)
        if error is not None:
            return error
        assert meta is not None
        state = meta.state
        if state == TxnState.ONGOING:
            value = meta.prepare_end(commit, self._now())
            error = await self._write(meta, value)
            if error == E.none:
                self._spawn(self._complete(meta), f"txn-complete-{transactional_id}")
            return error
        if state == TxnState.COMPLETE_COMMIT:
            return E.none if commit else E.invalid_txn_state
        if state == TxnState.COMPLETE_ABORT:
            return E.invalid_txn_state if commit else E.none
        if state == TxnState.PREPARE_COMMIT:
            return E.concurrent_transactions if commit else E.invalid_txn_state
        if state == TxnState.PREPARE_ABORT:
            return E.invalid_txn_state if commit else E.concurrent_transactions
        return E.invalid_txn_state  # Empty: nothing to end

    # ------------------------------------------------------------------ aborts and markers

    async def _abort(self, meta: TxnMetadata, *, bump_epoch: bool, reason: str) -> ErrorCode:
        """Ongoing -> PrepareAbort (optionally fencing the producer by an epoch bump)."""
        if meta.state != TxnState.ONGOING or meta.pending is not None:
            return E.concurrent_transactions
        log.info("aborting transaction of %s (producer %d epoch %d): %s",
                 meta.transactional_id, meta.producer_id, meta.producer_epoch, reason)
        bump = bump_epoch and not meta.epoch_exhausted
        error = await self._write(meta, meta.prepare_end(False, self._now(), bump_epoch=bump))
        if error == E.none:
            self._spawn(self._complete(meta), f"txn-abort-{meta.transactional_id}")
        return error

    async def abort_timed_out(self) -> int:
        """Abort (and fence) every Ongoing transaction older than its timeout; how many."""
        now = self._now()
        count = 0
        for meta in list(self._txns.values()):
            loaded = self._partitions.get(self.partition_for(meta.transactional_id),
                                          (None,))[0] == _LOADED
            expired = (meta.state == TxnState.ONGOING and meta.pending is None
                       and meta.start_ms >= 0 and now - meta.start_ms > meta.timeout_ms)
            if loaded and expired and await self._abort(
                    meta, bump_epoch=True,
                    reason=f"timed out after {meta.timeout_ms} ms") == E.none:
                count += 1
        return count

    async def _complete(self, meta: TxnMetadata) -> None:
        """Send the markers of a prepared transaction until every partition has them, then
        write CompleteCommit / CompleteAbort. Stops if this broker stops coordinating it."""
        commit = meta.state == TxnState.PREPARE_COMMIT
        remaining = sorted(meta.partitions)
        backoff = MARKER_RETRY_BACKOFF_S
        while remaining:
            if not self._owns(meta) or not meta.state.is_prepare:
                return
            try:
                results = await self._markers.write_markers(
                    meta.producer_id, meta.producer_epoch, meta.coordinator_epoch, commit,
                    remaining)
            except Exception as exc:  # connection trouble: retry the lot
                log.info("markers for %s failed: %r; retrying", meta.transactional_id, exc)
                results = {}
            remaining = [tp for tp in remaining
                         if results.get(tp, E.unknown_server_error) not in _MARKER_DONE]
            if remaining:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 1.0)
        while self._owns(meta) and meta.state.is_prepare:
            if meta.pending is not None:
                await asyncio.sleep(0.01)
                continue
            error = await self._write(meta, meta.prepare_complete(self._now()))
            if error == E.none:
                log.info("transaction of %s %s", meta.transactional_id,
                         "committed" if commit else "aborted")
                return
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 1.0)

    # ------------------------------------------------------------------ admin APIs

    def describe(self, transactional_id: str) -> TxnDescription:
        """DescribeTransactions for one id."""
        error = self._coordinator_error(transactional_id)
        if error is not None:
            return TxnDescription(transactional_id, error)
        meta = self._txns.get(transactional_id)
        if meta is None:
            return TxnDescription(transactional_id, E.transactional_id_not_found)
        return TxnDescription(transactional_id, E.none, meta.state.display, meta.timeout_ms,
                              meta.start_ms, meta.producer_id, meta.producer_epoch,
                              tuple(sorted(meta.partitions)))

    def list_transactions(self, states: Iterable[str] = (), producer_ids: Iterable[int] = (),
                          min_duration_ms: int = -1, pattern: str | None = None,
                          ) -> tuple[ErrorCode, list[TxnDescription], list[str]]:
        """ListTransactions: (error, matching ids, unknown state filters)."""
        wanted_states = set(states)
        unknown = [s for s in wanted_states if TxnState.from_display(s) is None]
        pids = set(producer_ids)
        regex = re.compile(pattern) if pattern else None
        now = self._now()
        loading = any(status == _LOADING for status, _ in self._partitions.values())
        found = []
        for meta in self._txns.values():
            if wanted_states and meta.state.display not in wanted_states:
                continue
            if pids and meta.producer_id not in pids:
                continue
            if min_duration_ms >= 0 and (meta.state != TxnState.ONGOING or meta.start_ms < 0
                                         or now - meta.start_ms < min_duration_ms):
                continue
            if regex is not None and not regex.search(meta.transactional_id):
                continue
            found.append(self.describe(meta.transactional_id))
        return (E.coordinator_load_in_progress if loading else E.none), found, unknown

    def transaction(self, transactional_id: str) -> TxnMetadata | None:
        """The live metadata (tests and diagnostics)."""
        return self._txns.get(transactional_id)
