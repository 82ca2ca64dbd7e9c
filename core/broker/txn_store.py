"""The broker's side of transactions: __transaction_state partitions as a TxnStateStore, the
WriteTxnMarkers channel to partition leaders, and the wiring of the TransactionCoordinator.

Coordinator writes (transaction state, markers, transactional offset commits) go through the
partition leader like a produce with acks=all, with origin "coordinator" (control batches
allowed, no sequence checks), and resolve once the high watermark has passed them.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from typing import Any

from kio.schema.errors import ErrorCode

from core.broker.offsets_store import OFFSETS_TOPIC, BrokerOffsetsStore
from core.common.errors import (
    KafkaError,
    NotEnoughReplicasError,
    NotLeaderOrFollowerError,
    TopicAlreadyExistsError,
)
from core.common.types import TopicPartition
from core.records.batch import build_control_batch

log = logging.getLogger(__name__)

TXN_TOPIC = "__transaction_state"
WRITE_TXN_MARKERS = 27
_APPEND_TIMEOUT_S = 5.0
_MARKER_REQUEST_TIMEOUT_S = 10.0


def append_as_coordinator(partition: Any, batch: bytes) -> Any:
    """Append `batch` to a partition this broker leads, as the coordinator (acks=all checks:
    leadership and min.insync.replicas). Returns the storage AppendResult."""
    if not partition.is_leader:
        raise NotLeaderOrFollowerError(f"{partition.tp}: not the leader")
    if "origin" in _partition_append_params():
        return partition.append_as_leader(batch, -1, origin="coordinator")
    if len(partition.registration.isr) < partition.min_insync_replicas:
        raise NotEnoughReplicasError(
            f"{partition.tp}: ISR {list(partition.registration.isr)} is smaller than "
            f"min.insync.replicas {partition.min_insync_replicas}")
    result = partition.log.append_as_leader(batch, leader_epoch=partition.leader_epoch,
                                            origin="coordinator")
    # Partition.append_as_leader does not take an origin (yet): do its bookkeeping here
    partition._maybe_advance_hw()
    partition._wake_fetchers()
    return result


_PARAMS: set[str] | None = None


def _partition_append_params() -> set[str]:
    global _PARAMS
    if _PARAMS is None:
        from core.replication.partition import Partition
        _PARAMS = set(inspect.signature(Partition.append_as_leader).parameters)
    return _PARAMS


class CoordinatorPartitionStore(BrokerOffsetsStore):
    """A coordinator's internal topic (`topic`), partition by partition, on this broker.

    Implements TxnStateStore (and OffsetsStore's shape): the same store as the group
    coordinator's, except that batches go in as the coordinator's (control batches allowed).
    """

    def __init__(self, broker: Any, topic: str) -> None:
        super().__init__(broker, topic)

    def _append_batch(self, target: Any, batch: bytes) -> Any:
        return append_as_coordinator(target, batch)


# ---------------------------------------------------------------------- markers


async def write_markers_local(broker: Any, producer_id: int, producer_epoch: int,
                              coordinator_epoch: int, commit: bool,
                              partitions: list[TopicPartition],
                              ) -> dict[TopicPartition, ErrorCode]:
    """Write one transaction's marker to each partition this broker leads (WriteTxnMarkers
    on the leader); completes transactional offset commits on __consumer_offsets."""
    results: dict[TopicPartition, ErrorCode] = {}
    waits: list[tuple[TopicPartition, Any, int]] = []
    now_ms = int(time.time() * 1000)
    for tp in partitions:
        try:
            partition = broker.replicas.leader_partition(tp, broker.image)
            marker = build_control_batch(commit=commit, producer_id=producer_id,
                                         producer_epoch=producer_epoch,
                                         coordinator_epoch=coordinator_epoch,
                                         timestamp_ms=now_ms)
            result = append_as_coordinator(partition, marker)
            waits.append((tp, partition, result.last_offset))
        except KafkaError as exc:
            results[tp] = exc.code
        except Exception:
            log.exception("writing a marker to %s failed", tp)
            results[tp] = ErrorCode.unknown_server_error

    async def wait(tp: TopicPartition, partition: Any, offset: int) -> None:
        try:
            await partition.wait_for_hw(offset, _APPEND_TIMEOUT_S)
            results[tp] = ErrorCode.none
        except KafkaError as exc:
            results[tp] = exc.code

    await asyncio.gather(*(wait(*w) for w in waits))
    groups = getattr(broker, "group_coordinator", None)
    complete = getattr(groups, "complete_txn", None)
    if complete is not None:
        done = [tp.partition for tp in partitions
                if tp.topic == OFFSETS_TOPIC and results.get(tp) == ErrorCode.none]
        if done:
            await complete(producer_id, done, commit)
    return results


class BrokerMarkerWriter:
    """MarkerWriter: groups partitions by leader; local writes for our own partitions,
    WriteTxnMarkers (v1) over a cached KafkaConnection for the others."""

    def __init__(self, broker: Any) -> None:
        self._broker = broker
        self._conns: dict[int, Any] = {}
        self._connecting: dict[int, asyncio.Lock] = {}

    async def write_markers(self, producer_id: int, producer_epoch: int,
                            coordinator_epoch: int, commit: bool,
                            partitions: list[TopicPartition],
                            ) -> dict[TopicPartition, ErrorCode]:
        image = self._broker.image
        by_leader: dict[int, list[TopicPartition]] = {}
        results: dict[TopicPartition, ErrorCode] = {}
        for tp in partitions:
            reg = image.partition(tp)
            if reg is None:
                results[tp] = ErrorCode.unknown_topic_or_partition
            elif reg.leader < 0:
                results[tp] = ErrorCode.leader_not_available
            else:
                by_leader.setdefault(reg.leader, []).append(tp)
        args = (producer_id, producer_epoch, coordinator_epoch, commit)

        async def one(leader: int, tps: list[TopicPartition]) -> None:
            try:
                if leader == self._broker.node_id:
                    results.update(await write_markers_local(self._broker, *args, tps))
                else:
                    results.update(await self._remote(leader, *args, tps))
            except Exception as exc:
                log.info("markers to broker %d failed: %r", leader, exc)
                results.update(dict.fromkeys(tps, ErrorCode.network_exception))

        await asyncio.gather(*(one(b, tps) for b, tps in by_leader.items()))
        return results

    async def _connection(self, broker_id: int) -> Any:
        conn = self._conns.get(broker_id)
        if conn is not None and not conn.closed:
            return conn
        lock = self._connecting.setdefault(broker_id, asyncio.Lock())
        async with lock:
            conn = self._conns.get(broker_id)
            if conn is not None and not conn.closed:
                return conn
            from core.network.client import KafkaConnection
            reg = self._broker.image.brokers.get(broker_id)
            if reg is None:
                raise KafkaError(f"broker {broker_id} unknown", ErrorCode.broker_not_available)
            conn = await KafkaConnection.connect(
                reg.host, reg.port, client_id=f"txn-markers-{self._broker.node_id}",
                timeout=5.0)
            self._conns[broker_id] = conn
            return conn

    async def _remote(self, broker_id: int, producer_id: int, producer_epoch: int,
                      coordinator_epoch: int, commit: bool, tps: list[TopicPartition],
                      ) -> dict[TopicPartition, ErrorCode]:
        conn = await self._connection(broker_id)
        topics: dict[str, list[int]] = {}
        for tp in tps:
            topics.setdefault(tp.topic, []).append(tp.partition)
        try:
            response = await conn.request(
                WRITE_TXN_MARKERS, version=1, timeout=_MARKER_REQUEST_TIMEOUT_S,
                markers=[dict(producer_id=producer_id, producer_epoch=producer_epoch,
                              transaction_result=commit, coordinator_epoch=coordinator_epoch,
                              topics=[dict(name=t, partition_indexes=p)
                                      for t, p in topics.items()])])
        except Exception:
            self._conns.pop(broker_id, None)
            conn.close_nowait()
            raise
        results: dict[TopicPartition, ErrorCode] = {}
        for marker in response.markers:
            for topic in marker.topics:
                for p in topic.partitions:
                    results[TopicPartition(topic.name, p.partition_index)] = p.error_code
        return results

    def close(self) -> None:
        for conn in self._conns.values():
            conn.close_nowait()
        self._conns.clear()


# ---------------------------------------------------------------------- wiring


def make_transaction_coordinator(broker: Any) -> Any:
    """The transaction coordinator wired to this broker (and TxnOffsetCommit's store on the
    group coordinator)."""
    from core.coordinator.transaction_coordinator import TransactionCoordinator

    groups = getattr(broker, "group_coordinator", None)
    if groups is not None and hasattr(groups, "txn_store"):
        groups.txn_store = CoordinatorPartitionStore(broker, OFFSETS_TOPIC)

    def partition_exists(tp: TopicPartition) -> bool:
        return broker.image.partition(tp) is not None

    return TransactionCoordinator(
        node_id=broker.node_id, config=broker.config,
        store=CoordinatorPartitionStore(broker, TXN_TOPIC),
        markers=BrokerMarkerWriter(broker),
        allocate_producer_id=broker.producer_ids.next_id,
        partition_exists=partition_exists,
        group_partition=groups.partition_for if groups is not None else None)


def on_partition_role(broker: Any, partition: Any, is_leader: bool) -> None:
    """Role listener: load / unload __transaction_state partitions as leadership changes."""
    coordinator = getattr(broker, "transaction_coordinator", None)
    if partition.tp.topic != TXN_TOPIC or coordinator is None:
        return
    index = partition.tp.partition
    work = (coordinator.on_elected(index, partition.leader_epoch) if is_leader
            else coordinator.on_resigned(index))
    task = asyncio.get_running_loop().create_task(work)
    _ROLE_TASKS.add(task)
    task.add_done_callback(_ROLE_TASKS.discard)


_ROLE_TASKS: set[asyncio.Task[Any]] = set()


async def ensure_transaction_topic(broker: Any) -> None:
    """Create __transaction_state (compacted) on first use, as Kafka does."""
    if TXN_TOPIC in broker.image.topics:
        return
    raw = broker.config.raw
    live = max(1, len(broker.image.live_brokers()))
    rf = max(1, min(int(raw.get("transaction.state.log.replication.factor", 3)), live))
    min_isr = max(1, min(int(raw.get("transaction.state.log.min.isr", 2)), rf))
    try:
        await broker.create_topic(
            TXN_TOPIC, int(broker.config["transaction.state.log.num.partitions"]), rf,
            {"cleanup.policy": "compact", "min.insync.replicas": str(min_isr),
             "segment.bytes": "104857600", "compression.type": "uncompressed"})
    except TopicAlreadyExistsError:
        pass


async def coordinator_for_transaction(broker: Any, transactional_id: str,
                                      ) -> tuple[int, int, str, int]:
    """FindCoordinator key_type 1: (error_code, node_id, host, port)."""
    coordinator = getattr(broker, "transaction_coordinator", None)
    if coordinator is None:
        return int(ErrorCode.coordinator_not_available), -1, "", -1
    try:
        await ensure_transaction_topic(broker)
    except KafkaError as exc:
        log.warning("cannot create %s: %s", TXN_TOPIC, exc)
        return int(ErrorCode.coordinator_not_available), -1, "", -1
    reg = broker.image.partition(TopicPartition(TXN_TOPIC,
                                                coordinator.partition_for(transactional_id)))
    if reg is None or reg.leader < 0 or reg.leader not in broker.image.brokers:
        return int(ErrorCode.coordinator_not_available), -1, "", -1
    node = broker.image.brokers[reg.leader]
    return 0, node.broker_id, node.host, node.port
