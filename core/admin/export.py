"""Messages out and back in: export a selection of a topic to JSON Lines or CSV, read such a
file back, re-publish one message (edited or not), and count records exactly.

A selection is a topic, optionally some partitions, an offset range and/or a time range and a
substring that the key, the value or a header value must contain. Keys, values and header
values are written as UTF-8 text when they are valid UTF-8, else base64 (the record's
`encoding` field says which), so any record survives the round trip byte for byte.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import json
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.admin.browser import BrowsedRecord, Browser
from core.admin.client import AdminClient
from core.admin.producer import DeliveryReport, Producer, ProducerRecord

__all__ = [
    "CSV_COLUMNS", "ExportSpec", "ExportedRecord", "IncompleteReadError", "count_records",
    "export", "fetch_range", "from_browsed", "read_export", "republish", "select",
]

#: called with (records written so far, records to scan in total)
ProgressCallback = Callable[[int, int], None]
CSV_COLUMNS = ("topic", "partition", "offset", "timestamp", "key", "value", "headers",
               "encoding")
#: how long a partition may answer with nothing below the end offset a read started with
#: before the read fails (a new leader's high watermark can trail for a moment after a
#: leadership change; a read that just stopped there would end short without a word)
STALL_TIMEOUT_S = 10.0


class IncompleteReadError(RuntimeError):
    """A partition stopped returning records before the end offset the read started with."""


@dataclass(frozen=True, slots=True)
class ExportSpec:
    """What to export. Offsets: [start_offset, end_offset); times: [start_ms, end_ms]."""

    topic: str
    partitions: Sequence[int] | None = None
    start_offset: int | None = None
    end_offset: int | None = None
    start_ms: int | None = None
    end_ms: int | None = None
    contains: str | None = None
    limit: int | None = None


@dataclass(frozen=True, slots=True)
class ExportedRecord:
    """One record as exported (bytes restored)."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...] = ()


def from_browsed(r: BrowsedRecord) -> ExportedRecord:
    return ExportedRecord(r.topic, r.partition, r.offset, r.timestamp, r.key, r.value,
                          tuple(r.headers))


# encoding ----------------------------------------------------------------------------------
def _is_text(*values: bytes | None) -> bool:
    try:
        for v in values:
            if v is not None:
                v.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _enc(value: bytes | None, encoding: str) -> str | None:
    if value is None:
        return None
    return value.decode("utf-8") if encoding == "utf-8" else base64.b64encode(value).decode()


def _dec(value: str | None, encoding: str) -> bytes | None:
    if value is None:
        return None
    return value.encode("utf-8") if encoding == "utf-8" else base64.b64decode(value)


def to_json(r: ExportedRecord) -> dict[str, Any]:
    """The JSON Lines object of one record."""
    encoding = "utf-8" if _is_text(r.key, r.value, *(v for _, v in r.headers)) else "base64"
    return {"topic": r.topic, "partition": r.partition, "offset": r.offset,
            "timestamp": r.timestamp, "key": _enc(r.key, encoding),
            "value": _enc(r.value, encoding),
            "headers": [[k, _enc(v, encoding)] for k, v in r.headers], "encoding": encoding}


def from_json(obj: dict[str, Any]) -> ExportedRecord:
    encoding = obj.get("encoding", "utf-8")
    headers = obj.get("headers") or []
    if isinstance(headers, str):  # CSV column
        headers = json.loads(headers) if headers else []
    return ExportedRecord(
        str(obj.get("topic", "")), int(obj.get("partition", -1) or 0),
        int(obj.get("offset", -1) if obj.get("offset") not in (None, "") else -1),
        int(obj.get("timestamp", -1) if obj.get("timestamp") not in (None, "") else -1),
        _dec(obj.get("key"), encoding), _dec(obj.get("value"), encoding),
        tuple((str(k), _dec(v, encoding)) for k, v in headers))


# selection ---------------------------------------------------------------------------------
def _matches(r: BrowsedRecord, spec: ExportSpec, needle: bytes | None) -> bool:
    if spec.start_ms is not None and r.timestamp < spec.start_ms:
        return False
    if spec.end_ms is not None and r.timestamp > spec.end_ms:
        return False
    if needle is not None:
        fields = [r.key or b"", r.value or b""] + [v or b"" for _, v in r.headers]
        if not any(needle in f for f in fields):
            return False
    return True


async def _bounds(browser: Browser, spec: ExportSpec,
                  parts: list[int]) -> tuple[dict[int, int], dict[int, int]]:
    admin = browser.admin
    tps = [(spec.topic, p) for p in parts]
    earliest = await admin.list_offsets(tps, "earliest")
    latest = await admin.list_offsets(tps, "latest")
    starts = {p: earliest[(spec.topic, p)].offset for p in parts}
    ends = {p: latest[(spec.topic, p)].offset for p in parts}
    if spec.start_ms is not None:
        by_time = await browser.start_offsets(spec.topic, parts, ("timestamp", spec.start_ms))
        starts = {p: max(starts[p], by_time[p]) for p in parts}
    if spec.start_offset is not None:
        starts = {p: max(starts[p], spec.start_offset) for p in parts}
    if spec.end_offset is not None:
        ends = {p: min(ends[p], spec.end_offset) for p in parts}
    return starts, ends


async def select(admin: AdminClient, spec: ExportSpec, *,
                 progress: ProgressCallback | None = None) -> AsyncIterator[ExportedRecord]:
    """The selected records, partition by partition, in offset order (up to the high
    watermark when the selection started)."""
    browser = Browser(admin)
    parts = list(spec.partitions) if spec.partitions is not None else \
        await admin.partitions_of(spec.topic)
    starts, ends = await _bounds(browser, spec, parts)
    total = sum(max(0, ends[p] - starts[p]) for p in parts)
    needle = spec.contains.encode("utf-8") if spec.contains else None
    scanned = emitted = 0
    for p in parts:
        async with aclosing(fetch_range(browser, spec.topic, p, starts[p], ends[p])) as chunks:
            async for records, advanced in chunks:
                for r in records:
                    if _matches(r, spec, needle):
                        yield from_browsed(r)
                        emitted += 1
                        if spec.limit is not None and emitted >= spec.limit:
                            return
                scanned += advanced
                if progress is not None:
                    progress(scanned, total)
                if spec.end_ms is not None and records and \
                        min(r.timestamp for r in records) > spec.end_ms + 3_600_000:
                    break  # an hour past the window: timestamps only grow roughly, stop here


async def fetch_range(browser: Browser, topic: str, partition: int, start: int, end: int, *,
                      stall_timeout: float = STALL_TIMEOUT_S,
                      ) -> AsyncIterator[tuple[list[BrowsedRecord], int]]:
    """The records of [start, end) of one partition, fetch by fetch from its leader: yields
    (the fetch's records below `end`, how many offsets it advanced). A fetch that returns
    nothing below `end` is retried for up to `stall_timeout` seconds, then
    IncompleteReadError: the read never ends short without saying so."""
    offset = start
    stalled_since: float | None = None
    while offset < end:
        result = await browser.fetch(topic, partition, offset)
        if result.next_offset <= offset:
            now = time.monotonic()
            if stalled_since is None:
                stalled_since = now
            elif now - stalled_since >= stall_timeout:
                raise IncompleteReadError(
                    f"{topic}-{partition} returned no records at offset {offset} for "
                    f"{stall_timeout:g} s, though its end offset was {end} when the read began "
                    f"(high watermark now {result.high_watermark}); the read stopped short")
            await asyncio.sleep(0.1)
            continue
        stalled_since = None
        yield [r for r in result.records if r.offset < end], min(result.next_offset, end) - offset
        offset = result.next_offset


async def export(admin: AdminClient, spec: ExportSpec, path: str | Path, fmt: str = "jsonl",
                 *, progress: ProgressCallback | None = None) -> int:
    """Write the selection to `path` as JSON Lines ("jsonl") or CSV ("csv"); returns the
    number of records written."""
    path = Path(path)
    if fmt not in ("jsonl", "csv"):
        raise ValueError(f"unknown export format {fmt!r} (jsonl or csv)")
    count = 0
    tmp = path.with_name(path.name + ".part")
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as out:
            writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS) if fmt == "csv" else None
            if writer is not None:
                writer.writeheader()
            async for r in select(admin, spec, progress=progress):
                obj = to_json(r)
                if writer is not None:
                    obj["headers"] = json.dumps(obj["headers"]) if obj["headers"] else ""
                    writer.writerow(obj)
                else:
                    out.write(json.dumps(obj, ensure_ascii=False) + "\n")
                count += 1
    except BaseException:
        tmp.unlink(missing_ok=True)  # no half file left behind
        raise
    tmp.replace(path)
    return count


def read_export(path: str | Path) -> list[ExportedRecord]:
    """Read a file written by `export` (format from the extension: .csv, else JSON Lines)."""
    path = Path(path)
    with open(path, encoding="utf-8", newline="") as f:
        if path.suffix.lower() == ".csv":
            return [from_json(row) for row in csv.DictReader(f)]
        return [from_json(json.loads(line)) for line in f if line.strip()]


async def republish(admin: AdminClient, record: ExportedRecord, topic: str | None = None, *,
                    key: Any = None, value: Any = None,
                    headers: Iterable[tuple[str, bytes | None]] | None = None,
                    keep_partition: bool = False) -> DeliveryReport:
    """Produce `record` again (to `topic`, default its own), optionally with a new key, value
    or headers (str is encoded as UTF-8; None keeps the record's own). Raises the delivery
    error if it fails."""
    def as_bytes(v: Any, default: bytes | None) -> bytes | None:
        if v is None:
            return default
        return v.encode("utf-8") if isinstance(v, str) else v

    rec = ProducerRecord(as_bytes(value, record.value), as_bytes(key, record.key),
                         tuple(headers) if headers is not None else record.headers,
                         record.partition if keep_partition else None)
    async with Producer(admin) as producer:
        [report] = await producer.send_many(topic or record.topic, [rec])
    if report.error is not None:
        raise report.error
    return report


async def count_records(admin: AdminClient, topic: str,
                        partitions: Sequence[int] | None = None) -> dict[int, int]:
    """Exact number of records per partition, by reading them (compacted topics and
    transactions leave gaps, so end minus start offset overcounts)."""
    browser = Browser(admin)
    parts = list(partitions) if partitions is not None else await admin.partitions_of(topic)
    starts, ends = await _bounds(browser, ExportSpec(topic), parts)
    counts = {}
    for p in parts:
        counts[p] = 0
        async for records, _ in fetch_range(browser, topic, p, starts[p], ends[p]):
            counts[p] += len(records)
    return counts
