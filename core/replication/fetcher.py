"""Follower replication: one fetcher per leader broker, pulling with Kafka's Fetch API.

A follower fetches from its log end offset with the epoch of its last batch. When the leader
answers with a diverging epoch (KIP-320, Fetch v12), the follower truncates its log to the
leader's end offset for that epoch before fetching again, so a restarted ex-leader drops the
tail that never committed. Records are appended as bytes, offsets as the leader assigned them.

Follower replication throttle (KIP-73): a partition in the follower quota's throttled set is
left out of the next fetch while this replica is out of sync (it had not reached the leader's
high watermark at its last fetch) and the quota is exceeded (Kafka's shouldFollowerThrottle);
bytes fetched for throttled partitions are recorded in the quota. With nothing left to fetch
the fetcher backs off until the quota allows a fetch again (at most replica.fetch.backoff.ms).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from kio.schema.errors import ErrorCode

from core.common.errors import KafkaError
from core.common.types import TopicPartition
from core.network.client import KafkaConnection
from core.replication.quota import ReplicationQuota

log = logging.getLogger(__name__)

FETCH_VERSION = 12
Connector = Callable[[int], Awaitable[KafkaConnection]]


class ReplicaFetcher:
    """Fetches every partition this broker follows from one leader."""

    def __init__(self, node_id: int, leader_id: int, connect: Connector, *,
                 max_bytes: int, max_wait_ms: int, quota: ReplicationQuota | None = None,
                 backoff_ms: int = 1000) -> None:
        self.node_id = node_id
        self.leader_id = leader_id
        self._connect = connect
        self._max_bytes = max_bytes
        self._max_wait_ms = max_wait_ms
        self._quota = quota
        self._backoff_s = backoff_ms / 1000.0
        self.partitions: dict[TopicPartition, Any] = {}
        #: records behind the leader's HW at the last fetch (absent: not known yet)
        self._lag: dict[TopicPartition, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._conn: KafkaConnection | None = None
        self._wakeup = asyncio.Event()

    def add(self, partition: Any) -> None:
        self.partitions[partition.tp] = partition
        self._lag.pop(partition.tp, None)
        self._wakeup.set()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    def remove(self, tp: TopicPartition) -> None:
        self.partitions.pop(tp, None)
        self._lag.pop(tp, None)

    def _throttled_now(self, tp: TopicPartition) -> bool:
        """Kafka's shouldFollowerThrottle: out of sync, throttled, quota exceeded."""
        quota = self._quota
        if quota is None or not quota.is_throttled(tp):
            return False
        in_sync = self._lag.get(tp, 1) <= 0
        return not in_sync and quota.is_quota_exceeded()

    async def _back_off(self) -> None:
        """Nothing to fetch now: wait until the follower quota allows a fetch again, at most
        replica.fetch.backoff.ms (Kafka waits the full back-off, which undershoots the
        bound), or until a partition is added."""
        self._wakeup.clear()
        delay = self._backoff_s
        if self._quota is not None:
            delay = max(0.01, self._quota.delay_s(self._backoff_s))
        try:
            await asyncio.wait_for(self._wakeup.wait(), delay)
        except TimeoutError:
            pass

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        if self._conn is not None:
            await self._conn.close()

    async def _run(self) -> None:
        backoff = 0.05
        while self.partitions:
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = await self._connect(self.leader_id)
                await self._fetch_once(self._conn)
                backoff = 0.05
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # leader down or restarting: retry with backoff
                log.debug("fetch from broker %d failed: %r", self.leader_id, exc)
                if self._conn is not None:
                    self._conn.close_nowait()
                    self._conn = None
                await asyncio.sleep(backoff)
                backoff = min(1.0, backoff * 2)

    async def _fetch_once(self, conn: KafkaConnection) -> None:
        wanted = [p for p in self.partitions.values() if not self._throttled_now(p.tp)]
        if not wanted:
            await self._back_off()
            return
        topics: dict[str, list[dict[str, Any]]] = {}
        for p in wanted:
            lg = p.log
            topics.setdefault(p.tp.topic, []).append(dict(
                partition=p.tp.partition, current_leader_epoch=p.leader_epoch,
                fetch_offset=lg.log_end_offset, last_fetched_epoch=lg.latest_epoch,
                log_start_offset=lg.log_start_offset, partition_max_bytes=self._max_bytes))
        response = await conn.request(
            1, version=FETCH_VERSION, timeout=self._max_wait_ms / 1000 + 30,
            replica_id=self.node_id, max_wait=self._max_wait_ms, min_bytes=1,
            max_bytes=self._max_bytes * 4, isolation_level=0, session_id=0,
            session_epoch=-1,
            topics=[dict(topic=t, partitions=ps) for t, ps in topics.items()],
            forgotten_topics_data=[], rack_id="")
        if response.error_code:
            raise KafkaError(f"fetch error {response.error_code!r}", response.error_code)
        for t in response.responses:
            for pr in t.partitions:
                tp = TopicPartition(t.topic, pr.partition_index)
                partition = self.partitions.get(tp)
                if partition is not None:
                    self._apply(partition, pr)

    def _apply(self, partition: Any, pr: Any) -> None:
        lg = partition.log
        if pr.error_code == ErrorCode.offset_out_of_range:
            if lg.log_end_offset < pr.log_start_offset:
                log.info("%s: behind the leader's log start %d, restarting there",
                         partition.tp, pr.log_start_offset)
                lg.truncate_fully_and_start_at(pr.log_start_offset)
            else:
                target = max(pr.high_watermark, 0)
                log.info("%s: offset out of range, truncating to leader HW %d", partition.tp,
                         target)
                lg.truncate_to(min(target, lg.log_end_offset))
            return
        if pr.error_code != ErrorCode.none:
            # not leader / fenced epoch: wait for metadata to move this partition
            return
        diverging = pr.diverging_epoch
        if diverging is not None and diverging.epoch >= -1 and diverging.end_offset >= 0:
            target = min(diverging.end_offset, lg.log_end_offset)
            log.info("%s: log diverged at epoch %d, truncating to %d", partition.tp,
                     diverging.epoch, target)
            lg.truncate_to(target)
            return
        if pr.records:
            lg.append_as_follower(pr.records)
            if self._quota is not None and self._quota.is_throttled(partition.tp):
                self._quota.record(len(pr.records))
        self._lag[partition.tp] = max(0, pr.high_watermark - lg.log_end_offset)
        lg.high_watermark = min(pr.high_watermark, lg.log_end_offset)
        if lg.log_start_offset < pr.log_start_offset <= lg.high_watermark:
            lg.delete_records_before(pr.log_start_offset)  # DeleteRecords on the leader


class ReplicaFetcherManager:
    """Keeps one ReplicaFetcher per leader for the partitions this broker follows."""

    def __init__(self, node_id: int, connect: Connector, *, max_bytes: int,
                 max_wait_ms: int, quota: ReplicationQuota | None = None,
                 backoff_ms: int = 1000) -> None:
        self.node_id = node_id
        self._connect = connect
        self._max_bytes = max_bytes
        self._max_wait_ms = max_wait_ms
        self._quota = quota
        self._backoff_ms = backoff_ms
        self._fetchers: dict[int, ReplicaFetcher] = {}
        self._leader_of: dict[TopicPartition, int] = {}

    def follow(self, partition: Any, leader_id: int) -> None:
        """Fetch `partition` from `leader_id` (moving it from another fetcher if needed)."""
        self.unfollow(partition.tp)
        if leader_id < 0:
            return
        fetcher = self._fetchers.get(leader_id)
        if fetcher is None:
            fetcher = ReplicaFetcher(self.node_id, leader_id, self._connect,
                                     max_bytes=self._max_bytes, max_wait_ms=self._max_wait_ms,
                                     quota=self._quota, backoff_ms=self._backoff_ms)
            self._fetchers[leader_id] = fetcher
        fetcher.add(partition)
        self._leader_of[partition.tp] = leader_id

    def unfollow(self, tp: TopicPartition) -> None:
        leader = self._leader_of.pop(tp, None)
        if leader is not None and leader in self._fetchers:
            self._fetchers[leader].remove(tp)

    async def close(self) -> None:
        for fetcher in self._fetchers.values():
            await fetcher.close()
        self._fetchers.clear()
