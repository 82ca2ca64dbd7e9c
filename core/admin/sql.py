"""SQL over topics: records fetched with the Browser, loaded into DuckDB, queried.

    async with Browser(bootstrap) as browser:
        engine = SqlEngine(browser)
        result = await engine.query('SELECT key, count(*) FROM "words" GROUP BY key')
        async for result in engine.live('SELECT count(*) FROM "words"'):   # a push query
            ...

Every topic a query names after FROM or JOIN (`"my.topic"` or a plain identifier) becomes a
DuckDB table of the same name with the columns

    key        VARCHAR    the key as UTF-8 text (undecodable bytes replaced), NULL if none
    value      JSON       the value: as is when it is valid JSON, else as a JSON string
                          (so `value->>'field'`, `value->>'$'` for the text, json_type(value))
    headers    JSON       {"name": "value", ...} or NULL
    partition  INTEGER
    offset     BIGINT
    timestamp  TIMESTAMP  the record's timestamp (ms since the epoch)

A topic is read once up to its high watermark (at most `max_records_per_partition` of the
latest records of each partition) and then only the records after what was read, so re-running
a query, or `live()`, fetches only what is new. The columns are built as plain Python lists
and handed to DuckDB as list parameters (no Arrow, no pandas); queries run in a thread so
the caller's event loop keeps turning, and `interrupt()` stops a running query.
"""

from __future__ import annotations

import asyncio
import csv
import json
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.admin.browser import BrowsedRecord, Browser
from core.common.errors import ErrorCode, KafkaError

__all__ = ["QueryResult", "SqlEngine", "SqlError", "TopicLoad", "referenced_topics",
           "write_csv"]

#: progress(done records, total records, topic)
Progress = Callable[[int, int, str], None]

_TOPIC_REF = re.compile(
    r"""\b(?:FROM|JOIN)\s+(?:"((?:[^"]|"")+)"|([A-Za-z_][A-Za-z0-9_.\-]*))""",
    re.IGNORECASE)
_SQL_WORDS = {"select", "lateral", "unnest", "values", "read_json", "read_csv", "range",
              "generate_series", "json_each", "json_tree"}

_COLUMNS = ('key VARCHAR, value JSON, headers JSON, "partition" INTEGER, "offset" BIGINT, '
            '"timestamp" TIMESTAMP')
_INSERT = ('INSERT INTO {table} SELECT k, CASE WHEN json_valid(v) THEN v::JSON '
           'ELSE to_json(v) END, h::JSON, p, o, epoch_ms(ts) FROM (SELECT '
           'unnest($1::VARCHAR[]) AS k, unnest($2::VARCHAR[]) AS v, unnest($3::VARCHAR[]) AS h, '
           'unnest($4::INTEGER[]) AS p, unnest($5::BIGINT[]) AS o, unnest($6::BIGINT[]) AS ts)')


class SqlError(Exception):
    """A query that DuckDB refused (syntax, unknown column, ...) or a topic that is missing."""


@dataclass(frozen=True, slots=True)
class QueryResult:
    """Columns (name, DuckDB type) and rows of one run of a query."""
    sql: str
    columns: tuple[tuple[str, str], ...]
    rows: list[tuple[Any, ...]]
    #: records loaded per referenced topic when the query ran
    records: dict[str, int] = field(default_factory=dict)
    #: True when rows were cut at max_rows, or a topic was only partly loaded
    truncated: bool = False
    elapsed: float = 0.0
    at: float = field(default_factory=time.time)

    @property
    def column_names(self) -> list[str]:
        return [c for c, _ in self.columns]


@dataclass(slots=True)
class TopicLoad:
    """How much of a topic the engine holds: next offset to read per partition."""
    topic: str
    positions: dict[int, int] = field(default_factory=dict)
    records: int = 0
    truncated: bool = False


def referenced_topics(sql: str) -> list[str]:
    """Names after FROM/JOIN (quoted or bare), in order, without duplicates; SQL keywords and
    table functions (`FROM range(3)`) are not topics."""
    names: list[str] = []
    for m in _TOPIC_REF.finditer(_strip_literals(sql)):
        quoted, bare = m.group(1), m.group(2)
        if quoted is not None:
            name = quoted.replace('""', '"')
        else:
            end = m.end()
            if bare.lower() in _SQL_WORDS or sql[end:end + 1] == "(":
                continue
            name = bare
        if name not in names:
            names.append(name)
    return names


def _strip_literals(sql: str) -> str:
    """The SQL with '...' literals and -- comments blanked (same length)."""
    sql = re.sub(r"'(?:[^']|'')*'", lambda m: " " * len(m.group(0)), sql)
    return re.sub(r"--[^\n]*", lambda m: " " * len(m.group(0)), sql)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _text(data: bytes | None) -> str | None:
    return None if data is None else bytes(data).decode("utf-8", "replace")


def _headers(headers: Sequence[tuple[str, bytes | None]]) -> str | None:
    if not headers:
        return None
    return json.dumps({k: _text(v) for k, v in headers})


class SqlEngine:
    """DuckDB over topics read with a Browser (see the module docstring)."""

    def __init__(self, browser: Browser, *, max_records_per_partition: int = 100_000,
                 max_rows: int = 10_000, fetch_bytes: int = 4 * 1024 * 1024) -> None:
        import duckdb

        self.browser = browser
        self.max_records_per_partition = max_records_per_partition
        self.max_rows = max_rows
        self.fetch_bytes = fetch_bytes
        self._db = duckdb.connect(":memory:")
        self._db_lock = threading.Lock()
        self._loads: dict[str, TopicLoad] = {}
        self._load_locks: dict[str, asyncio.Lock] = {}

    def close(self) -> None:
        """Drop every loaded table (the Browser is the caller's)."""
        self._db.close()

    def interrupt(self) -> None:
        """Stop the query running in DuckDB now (it raises SqlError 'interrupted')."""
        self._db.interrupt()

    @property
    def loaded(self) -> dict[str, TopicLoad]:
        return dict(self._loads)

    def forget(self, topic: str) -> None:
        """Drop a topic's table so that the next query reads it again from the start."""
        self._loads.pop(topic, None)
        with self._db_lock:
            self._db.execute(f"DROP TABLE IF EXISTS {_quote(topic)}")

    # loading ------------------------------------------------------------------------------
    async def load(self, topic: str, *, progress: Progress | None = None,
                   max_wait_ms: int = 0) -> int:
        """Read `topic` up to its current high watermark (the first time: its latest
        max_records_per_partition records per partition; then what is new). Returns how many
        records were added. Raises SqlError when the topic does not exist."""
        lock = self._load_locks.setdefault(topic, asyncio.Lock())
        async with lock:
            return await self._load(topic, progress, max_wait_ms)

    async def _load(self, topic: str, progress: Progress | None, max_wait_ms: int) -> int:
        admin = self.browser.admin
        state = self._loads.get(topic)
        try:
            parts = await admin.partitions_of(topic)
        except KafkaError as exc:
            if exc.code == ErrorCode.unknown_topic_or_partition:
                raise SqlError(f"no topic named {topic!r}") from None
            raise
        if not parts:
            raise SqlError(f"no topic named {topic!r}")
        tps = [(topic, p) for p in parts]
        ends = {p: r.offset for (_, p), r in
                (await admin.list_offsets(tps, "latest")).items()}
        if state is None:
            starts = {p: r.offset for (_, p), r in
                      (await admin.list_offsets(tps, "earliest")).items()}
            state = TopicLoad(topic)
            for p in parts:
                first = max(starts[p], ends[p] - self.max_records_per_partition)
                state.truncated |= first > starts[p]
                state.positions[p] = first
            with self._db_lock:
                self._db.execute(f"CREATE OR REPLACE TABLE {_quote(topic)} ({_COLUMNS})")
            self._loads[topic] = state
        for p in parts:  # partitions added since
            state.positions.setdefault(p, 0)
        total = sum(max(0, ends[p] - state.positions[p]) for p in parts)
        done = 0
        if progress:
            progress(0, total, topic)

        async def one(p: int) -> None:
            nonlocal done
            fetched = False
            while True:
                position = state.positions[p]
                waiting = position >= ends[p]  # caught up: only a long poll may find more
                if waiting and (fetched or not max_wait_ms):
                    return
                try:
                    result = await self.browser.fetch(
                        topic, p, position, max_wait_ms=max_wait_ms if waiting else 0,
                        max_bytes=self.fetch_bytes)
                except KafkaError as exc:
                    if exc.code != ErrorCode.offset_out_of_range:
                        raise
                    earliest = await admin.list_offsets([(topic, p)], "earliest")
                    state.positions[p] = max(position, earliest[(topic, p)].offset)
                    if state.positions[p] == position:
                        return
                    continue
                if result.next_offset <= position:
                    return
                await self._insert(topic, result.records)
                fetched = True
                state.positions[p] = result.next_offset
                state.records += len(result.records)
                if not waiting:
                    done += min(result.next_offset, ends[p]) - position
                    if progress:
                        progress(min(done, total), total, topic)

        before = state.records
        await asyncio.gather(*(one(p) for p in parts))
        return state.records - before

    async def _insert(self, topic: str, records: list[BrowsedRecord]) -> None:
        if not records:
            return
        columns = ([_text(r.key) for r in records], [_text(r.value) for r in records],
                   [_headers(r.headers) for r in records], [r.partition for r in records],
                   [r.offset for r in records], [r.timestamp for r in records])
        sql = _INSERT.format(table=_quote(topic))

        def run() -> None:
            with self._db_lock:
                self._db.execute(sql, list(columns))

        await asyncio.to_thread(run)

    # querying -----------------------------------------------------------------------------
    def execute(self, sql: str, *, max_rows: int | None = None) -> QueryResult:
        """Run `sql` over what is loaded (blocking; see query())."""
        import duckdb

        limit = self.max_rows if max_rows is None else max_rows
        started = time.perf_counter()
        with self._db_lock:
            try:
                cursor = self._db.execute(sql)
                if cursor.description is None:
                    return QueryResult(sql, (), [], elapsed=time.perf_counter() - started)
                columns = tuple((d[0], str(d[1])) for d in cursor.description)
                rows = cursor.fetchmany(limit + 1)
            except duckdb.InterruptException:
                raise SqlError("interrupted") from None
            except duckdb.Error as exc:
                raise SqlError(str(exc)) from None
        truncated = len(rows) > limit
        return QueryResult(sql, columns, rows[:limit], truncated=truncated,
                           elapsed=time.perf_counter() - started)

    async def query(self, sql: str, *, progress: Progress | None = None,
                    max_rows: int | None = None) -> QueryResult:
        """Load (or catch up) every topic the query names, then run it in a thread.
        Cancelling the awaiting task interrupts DuckDB."""
        topics = referenced_topics(sql)
        for topic in topics:
            await self.load(topic, progress=progress)
        return await self._run(sql, topics, max_rows)

    async def _run(self, sql: str, topics: Iterable[str], max_rows: int | None) -> QueryResult:
        task = asyncio.ensure_future(asyncio.to_thread(self.execute, sql, max_rows=max_rows))
        try:
            result = await asyncio.shield(task)
        except asyncio.CancelledError:
            self.interrupt()
            try:
                await task
            except (SqlError, asyncio.CancelledError):
                pass
            raise
        loads = [self._loads[t] for t in topics if t in self._loads]
        return QueryResult(result.sql, result.columns, result.rows,
                           {s.topic: s.records for s in loads},
                           result.truncated or any(s.truncated for s in loads),
                           result.elapsed)

    async def live(self, sql: str, *, progress: Progress | None = None,
                   max_wait_ms: int = 500, max_rows: int | None = None,
                   ) -> AsyncIterator[QueryResult]:
        """A push query: yield the result now, then again each time new records arrive in
        a topic the query names (long-polling fetches of max_wait_ms). Runs until the
        consumer stops iterating or the task is cancelled."""
        topics = referenced_topics(sql)
        yield await self.query(sql, progress=progress, max_rows=max_rows)
        if not topics:
            return
        while True:
            added = await asyncio.gather(*(self.load(t, max_wait_ms=max_wait_ms)
                                           for t in topics))
            if sum(added):
                yield await self._run(sql, topics, max_rows)


def write_csv(result: QueryResult, path: str | Path) -> int:
    """Write a result as CSV with a header row (JSON and other values as text); returns the
    number of data rows."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(result.column_names)
        for row in result.rows:
            writer.writerow(["" if v is None else v for v in row])
    return len(result.rows)
