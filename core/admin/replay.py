"""Record a time window of a topic and replay it into another topic, at 1x or faster, keeping
the records' relative timing (the gap between two records' timestamps, divided by the speed).

    window = await record_window(admin, "orders", start_ms, end_ms, path="orders.jsonl")
    report = await replay(admin, window, "orders-replay", speed=10)

Replayed records keep their key, value, headers and (with `keep_partitions`) partition; they
get new timestamps (when they are sent), and a `kaflab.replay.timestamp` header with the
original one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from core.admin.client import AdminClient
from core.admin.export import ExportedRecord, ExportSpec, read_export, select, to_json
from core.admin.producer import Producer, ProducerRecord

__all__ = ["ReplayReport", "record_window", "replay", "schedule"]

ORIGINAL_TIMESTAMP_HEADER = "kaflab.replay.timestamp"
#: (records sent, records in total)
ProgressCallback = Callable[[int, int], None]


@dataclass(slots=True)
class ReplayReport:
    sent: int = 0
    failed: int = 0
    elapsed_s: float = 0.0
    errors: list[str] = field(default_factory=list)


async def record_window(admin: AdminClient, topic: str, start_ms: int, end_ms: int, *,
                        partitions: Sequence[int] | None = None,
                        path: str | Path | None = None) -> list[ExportedRecord]:
    """The records of `topic` with start_ms <= timestamp <= end_ms, in timestamp order
    (saved as JSON Lines to `path` if given)."""
    import json

    spec = ExportSpec(topic, partitions, start_ms=start_ms, end_ms=end_ms)
    records = [r async for r in select(admin, spec)]
    records.sort(key=lambda r: (r.timestamp, r.partition, r.offset))
    if path is not None:
        with open(path, "w", encoding="utf-8") as out:
            for r in records:
                out.write(json.dumps(to_json(r), ensure_ascii=False) + "\n")
    return records


def schedule(records: Sequence[ExportedRecord], speed: float) -> list[tuple[float, list[int]]]:
    """[(seconds after the start, indexes of the records to send then), ...]: records with
    the same due time go together. speed <= 0 means as fast as possible (one group)."""
    if not records:
        return []
    if speed <= 0:
        return [(0.0, list(range(len(records))))]
    first = records[0].timestamp
    groups: list[tuple[float, list[int]]] = []
    for i, r in enumerate(records):
        due = max(0.0, (r.timestamp - first) / 1000.0 / speed)
        if groups and abs(groups[-1][0] - due) < 0.002:
            groups[-1][1].append(i)
        else:
            groups.append((due, [i]))
    return groups


async def replay(admin: AdminClient, records: Sequence[ExportedRecord] | str | Path,
                 topic: str, *, speed: float = 1.0, keep_partitions: bool = False,
                 progress: ProgressCallback | None = None) -> ReplayReport:
    """Produce `records` (or a file written by export / record_window) into `topic` with
    their original spacing divided by `speed` (0 = as fast as possible)."""
    if isinstance(records, str | Path):
        records = read_export(records)
    records = sorted(records, key=lambda r: (r.timestamp, r.partition, r.offset))
    report = ReplayReport()
    plan = schedule(records, speed)
    started = time.monotonic()
    async with Producer(admin) as producer:
        for due, indexes in plan:
            delay = started + due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            batch = [ProducerRecord(
                records[i].value, records[i].key,
                (*records[i].headers,
                 (ORIGINAL_TIMESTAMP_HEADER, str(records[i].timestamp).encode())),
                records[i].partition if keep_partitions else None) for i in indexes]
            for r in await producer.send_many(topic, batch):
                if r.ok:
                    report.sent += 1
                else:
                    report.failed += 1
                    if len(report.errors) < 20:
                        report.errors.append(str(r.error))
            if progress is not None:
                progress(report.sent + report.failed, len(records))
    report.elapsed_s = time.monotonic() - started
    return report
