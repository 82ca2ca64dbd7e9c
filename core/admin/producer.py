"""A small async producer for the console and the CLI (no librdkafka at runtime).

Records go to an explicit partition, or to ``murmur2(key) % partitions`` like the Java client's
default partitioner, or (no key) to one random partition per `send_many` call (sticky). One
RecordBatch per partition (core.records.batch.build_batch), one Produce request per leader,
all leaders in parallel. Every record gets a `DeliveryReport` (offset or error; per-record
errors from Produce v8+ record_errors are honoured).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.admin.client import PRODUCE, RETRIABLE_ROUTING, AdminClient
from core.admin.errors import error_for
from core.common.errors import ErrorCode, KafkaError
from core.network.client import KafkaConnection
from core.records.batch import build_batch

__all__ = ["DeliveryReport", "Producer", "ProducerRecord", "default_partition", "murmur2"]

Headers = Sequence[tuple[str, bytes | None]]
#: (base offset, partition error, per-record errors by batch index, log append time ms)
_PartitionResult = tuple[int, "KafkaError | None", dict[int, "KafkaError"], int]


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2), as a signed int32."""
    length = len(data)
    m = 0x5BD1E995
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    end = length & ~3
    for i in range(0, end, 4):
        k = data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24)
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> 24
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    rest = length & 3
    if rest == 3:
        h ^= data[end + 2] << 16
    if rest >= 2:
        h ^= data[end + 1] << 8
    if rest >= 1:
        h ^= data[end]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def default_partition(key: bytes, num_partitions: int) -> int:
    """The Java client's partition for a keyed record: toPositive(murmur2(key)) % n."""
    return (murmur2(key) & 0x7FFFFFFF) % num_partitions


@dataclass(frozen=True, slots=True)
class ProducerRecord:
    value: bytes | None
    key: bytes | None = None
    headers: Headers = ()
    partition: int | None = None


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    topic: str
    partition: int
    offset: int  # -1 when unknown (acks=0) or failed
    error: KafkaError | None = None
    timestamp: int = -1
    key: bytes | None = None
    value: bytes | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class Producer:
    """Send records to a topic; `async with Producer(bootstrap_or_admin) as p:`."""

    def __init__(self, admin: AdminClient | str, *, acks: int | str = -1,
                 timeout_ms: int = 30000, compression: int = 0, retries: int = 3) -> None:
        self._own_admin = isinstance(admin, str)
        self.admin = AdminClient(admin, client_id="kaflab-producer") \
            if isinstance(admin, str) else admin
        self.acks = -1 if acks == "all" else int(acks)
        self.timeout_ms = timeout_ms
        self.compression = compression
        self.retries = retries

    async def __aenter__(self) -> Producer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._own_admin:
            await self.admin.close()

    async def send(self, topic: str, value: bytes | None, key: bytes | None = None,
                   headers: Headers = (), partition: int | None = None) -> DeliveryReport:
        """Send one record; returns its delivery report (raise on error with report.error)."""
        [report] = await self.send_many(topic, [ProducerRecord(value, key, headers, partition)])
        return report

    async def send_many(self, topic: str, records: Iterable[ProducerRecord | tuple],
                        ) -> list[DeliveryReport]:
        """Send records (ProducerRecord or (key, value[, headers[, partition]]) tuples).

        Returns one report per record, in input order.
        """
        recs = [r if isinstance(r, ProducerRecord) else _from_tuple(r) for r in records]
        if not recs:
            return []
        num = await self._num_partitions(topic)
        sticky = random.randrange(num)
        by_partition: dict[int, list[int]] = defaultdict(list)
        reports: list[DeliveryReport | None] = [None] * len(recs)
        for i, r in enumerate(recs):
            if r.partition is not None:
                p = r.partition
            elif r.key is not None:
                p = default_partition(r.key, num)
            else:
                p = sticky
            by_partition[p].append(i)
        timestamp = int(time.time() * 1000)
        todo = dict(by_partition)
        for attempt in range(self.retries + 1):
            results = await self._produce_once(topic, todo, recs, timestamp)
            retry: dict[int, list[int]] = {}
            for p, (base, error, record_errors, log_append) in results.items():
                ts = log_append if log_append >= 0 else timestamp
                if error is not None and error.code in RETRIABLE_ROUTING \
                        and attempt < self.retries:
                    retry[p] = todo[p]
                    continue
                for j, i in enumerate(todo[p]):
                    err = record_errors.get(j, error)
                    offset = base + j if (err is None and base >= 0) else -1
                    reports[i] = DeliveryReport(topic, p, offset, err, ts, recs[i].key,
                                                recs[i].value)
            if not retry:
                break
            todo = retry
            await asyncio.sleep(0.1 * (attempt + 1))
            await self.admin.metadata([topic])
        return [r for r in reports if r is not None]

    async def _num_partitions(self, topic: str) -> int:
        md = self.admin._metadata
        if md is None or topic not in md.topics:
            md = await self.admin.metadata([topic], allow_auto_topic_creation=True)
        if topic not in md.topics:
            err = md.topic_errors.get(topic) or error_for(
                ErrorCode.unknown_topic_or_partition, None, f"topic {topic}")
            raise err  # type: ignore[misc]
        return len(md.topics[topic].partitions)

    async def _produce_once(self, topic: str, todo: Mapping[int, list[int]],
                            recs: list[ProducerRecord], timestamp: int,
                            ) -> dict[int, _PartitionResult]:
        """One Produce per leader. Returns {partition: (base offset, error, per-record errors,
        log append time)}."""
        batches = {p: build_batch([(recs[i].key, recs[i].value, list(recs[i].headers))
                                   for i in idx], timestamp_ms=timestamp,
                                  compression=self.compression)
                   for p, idx in todo.items()}
        by_leader: dict[int, list[int]] = defaultdict(list)
        out: dict[int, _PartitionResult] = {}
        for p in batches:
            try:
                by_leader[await self.admin.leader_for(topic, p)].append(p)
            except KafkaError as exc:
                out[p] = (-1, exc, {}, -1)

        async def one(leader: int, parts: list[int]) -> None:
            try:
                conn = await self.admin.connection(leader)
                resp = await self._produce(conn, topic, {p: batches[p] for p in parts})
            except KafkaError as exc:
                for p in parts:
                    out[p] = (-1, exc, {}, -1)
                return
            if resp is None:  # acks=0
                for p in parts:
                    out[p] = (-1, None, {}, -1)
                return
            for t in resp.responses:
                for pr in t.partition_responses:
                    p = int(pr.index)
                    ctx = f"produce to {topic}-{p}"
                    err = error_for(pr.error_code, getattr(pr, "error_message", None), ctx)
                    rec_errs: dict[int, KafkaError] = {}
                    for re_ in getattr(pr, "record_errors", ()) or ():
                        e = error_for(pr.error_code or ErrorCode.invalid_record,
                                      re_.batch_index_error_message, ctx)
                        if e is not None:
                            rec_errs[int(re_.batch_index)] = e
                    append = getattr(pr, "log_append_time", None)
                    append_ms = int(append.timestamp() * 1000) if append is not None else -1
                    out[p] = (int(pr.base_offset), err, rec_errs, append_ms)

        await asyncio.gather(*(one(b, ps) for b, ps in by_leader.items()))
        for p in batches:
            out.setdefault(p, (-1, error_for(ErrorCode.unknown_server_error, "no response",
                                             f"produce to {topic}-{p}"), {}, -1))
        return out

    async def _produce(self, conn: KafkaConnection, topic: str,
                       batches: Mapping[int, bytes]) -> Any:
        return await conn.request(PRODUCE, max_version=9, fields={
            "transactional_id": None, "acks": self.acks, "timeout": self.timeout_ms,
            "topic_data": [{"name": topic, "partition_data": [
                {"index": p, "records": b} for p, b in batches.items()]}]},
            timeout=self.timeout_ms / 1000 + self.admin.request_timeout)


def _from_tuple(t: tuple) -> ProducerRecord:
    key, value, *rest = t
    headers = rest[0] if rest else ()
    partition = rest[1] if len(rest) > 1 else None
    return ProducerRecord(value, key, headers or (), partition)
