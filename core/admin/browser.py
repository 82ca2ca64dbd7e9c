"""Read records of a topic for the console and the CLI: from the earliest offset, the latest
N, an offset or a timestamp, from one partition or all; and a live-tail async iterator.

Fetch v4..12 (topic names) straight to each partition's leader, no fetch session, read
uncommitted; control records are skipped. Records are decoded with
core.records.batch.iter_records.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

from core.admin.client import FETCH, AdminClient, OffsetResult
from core.admin.errors import error_for
from core.common.errors import ErrorCode, KafkaError
from core.records.batch import iter_batches, iter_records

__all__ = ["BrowsedRecord", "Browser", "FetchResult", "StartAt"]

#: "earliest" | "latest" | ("offset", n) | ("timestamp", ms) | ("latest_n", n) | int offset
StartAt = str | int | tuple[str, int]


@dataclass(frozen=True, slots=True)
class BrowsedRecord:
    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...] = ()


@dataclass(frozen=True, slots=True)
class FetchResult:
    records: list[BrowsedRecord]
    high_watermark: int
    log_start_offset: int
    next_offset: int


class Browser:
    """Fetch records through an AdminClient's connections and metadata."""

    def __init__(self, admin: AdminClient | str, *, max_bytes: int = 1024 * 1024) -> None:
        self._own_admin = isinstance(admin, str)
        self.admin = AdminClient(admin, client_id="kaflab-browser") \
            if isinstance(admin, str) else admin
        self.max_bytes = max_bytes

    async def __aenter__(self) -> Browser:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._own_admin:
            await self.admin.close()

    async def fetch(self, topic: str, partition: int, offset: int, *,
                    max_wait_ms: int = 0, max_records: int | None = None,
                    max_bytes: int | None = None) -> FetchResult:
        """One Fetch from the partition's leader starting at `offset`."""
        max_bytes = max_bytes or self.max_bytes
        for attempt in range(self.admin.retries + 1):
            leader = await self.admin.leader_for(topic, partition)
            try:
                conn = await self.admin.connection(leader)
                resp = await conn.request(
                    FETCH, max_version=12, min_version=4, replica_id=-1, max_wait=max_wait_ms,
                    min_bytes=1, max_bytes=max_bytes, isolation_level=0, session_id=0,
                    session_epoch=-1, rack_id="", forgotten_topics_data=[],
                    topics=[{"topic": topic, "partitions": [{
                        "partition": partition, "current_leader_epoch": -1,
                        "fetch_offset": offset, "last_fetched_epoch": -1,
                        "log_start_offset": -1, "partition_max_bytes": max_bytes}]}],
                    timeout=self.admin.request_timeout + max_wait_ms / 1000)
                top = error_for(getattr(resp, "error_code", 0), None, "fetch")
                if top is not None:
                    raise top
                p = resp.responses[0].partitions[0]
                err = error_for(p.error_code, None, f"fetch {topic}-{partition}@{offset}")
                if err is not None:
                    raise err
            except KafkaError as exc:
                from core.admin.client import RETRIABLE_ROUTING
                if exc.code in RETRIABLE_ROUTING and attempt < self.admin.retries:
                    await asyncio.sleep(0.1 * (attempt + 1))
                    await self.admin.metadata([topic])
                    continue
                raise
            records: list[BrowsedRecord] = []
            next_offset = offset
            data = p.records or b""
            for pos, header in iter_batches(data):
                if header.last_offset < offset:
                    next_offset = max(next_offset, header.last_offset + 1)
                    continue
                if header.is_control:
                    next_offset = max(next_offset, header.last_offset + 1)
                    continue
                end = pos + header.size
                for r in iter_records(memoryview(data)[pos:end]):
                    if r.offset < offset or r.is_control:
                        continue
                    if max_records is not None and len(records) >= max_records:
                        break
                    records.append(BrowsedRecord(topic, partition, r.offset, r.timestamp,
                                                 r.key, r.value, tuple(r.headers)))
                    next_offset = r.offset + 1
                else:
                    next_offset = max(next_offset, header.last_offset + 1)
                    continue
                break
            return FetchResult(records, int(p.high_watermark), int(p.log_start_offset),
                               next_offset)
        raise AssertionError  # pragma: no cover

    async def start_offsets(self, topic: str, partitions: Iterable[int],
                            start: StartAt) -> dict[int, int]:
        """Resolve a start position to an offset per partition."""
        parts = list(partitions)
        tps = [(topic, p) for p in parts]
        if isinstance(start, int):
            return dict.fromkeys(parts, start)
        if isinstance(start, tuple):
            kind, value = start
            if kind == "offset":
                return dict.fromkeys(parts, int(value))
            if kind == "timestamp":
                found = await self.admin.list_offsets(tps, int(value))
                latest = await self.admin.list_offsets(tps, "latest")
                return {p: (found[(topic, p)].offset if found[(topic, p)].offset >= 0
                            else latest[(topic, p)].offset) for p in parts}
            if kind == "latest_n":
                earliest = await self.admin.list_offsets(tps, "earliest")
                latest = await self.admin.list_offsets(tps, "latest")
                return {p: max(earliest[(topic, p)].offset,
                               latest[(topic, p)].offset - int(value)) for p in parts}
            raise ValueError(f"bad start position {start!r}")
        found: dict[tuple[str, int], OffsetResult] = await self.admin.list_offsets(tps, start)
        return {p: found[(topic, p)].offset for p in parts}

    async def read(self, topic: str, partitions: Iterable[int] | None = None,
                   start: StartAt = "earliest", *, limit: int = 100) -> list[BrowsedRecord]:
        """Up to `limit` records per partition from `start` up to the current high watermark,
        merged by timestamp (then partition, offset)."""
        parts = list(partitions) if partitions is not None else \
            await self.admin.partitions_of(topic)
        starts = await self.start_offsets(topic, parts, start)
        ends = await self.admin.list_offsets([(topic, p) for p in parts], "latest")

        async def one(p: int) -> list[BrowsedRecord]:
            out: list[BrowsedRecord] = []
            offset, end = starts[p], ends[(topic, p)].offset
            while offset < end and len(out) < limit:
                result = await self.fetch(topic, p, offset, max_records=limit - len(out))
                if result.next_offset <= offset:
                    break
                out += [r for r in result.records if r.offset < end]
                offset = result.next_offset
            return out[:limit]

        batches = await asyncio.gather(*(one(p) for p in parts))
        merged = [r for b in batches for r in b]
        merged.sort(key=lambda r: (r.timestamp, r.partition, r.offset))
        return merged

    async def tail(self, topic: str, partitions: Iterable[int] | None = None,
                   start: StartAt = "latest", *, max_wait_ms: int = 500,
                   ) -> AsyncIterator[BrowsedRecord]:
        """Live tail: yield records as they arrive, forever (cancel or break to stop).

        New partitions of the topic are not picked up; an out-of-range position (retention)
        jumps to the log start.
        """
        parts = list(partitions) if partitions is not None else \
            await self.admin.partitions_of(topic)
        positions = await self.start_offsets(topic, parts, start)
        queue: asyncio.Queue[BrowsedRecord | BaseException] = asyncio.Queue(maxsize=10000)

        async def follow(p: int) -> None:
            while True:
                try:
                    result = await self.fetch(topic, p, positions[p], max_wait_ms=max_wait_ms)
                except KafkaError as exc:
                    if exc.code == ErrorCode.offset_out_of_range:
                        positions[p] = (await self.start_offsets(topic, [p], "earliest"))[p]
                        continue
                    if exc.retriable:
                        await asyncio.sleep(0.5)
                        continue
                    await queue.put(exc)
                    return
                for r in result.records:
                    await queue.put(r)
                if result.next_offset > positions[p]:
                    positions[p] = result.next_offset
                elif not result.records:
                    await asyncio.sleep(max_wait_ms / 1000 if max_wait_ms else 0.2)

        tasks = [asyncio.ensure_future(follow(p)) for p in parts]
        try:
            while True:
                item = await queue.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
