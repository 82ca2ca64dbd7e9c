"""core.admin.sql without a broker: a fake Browser serves records from memory."""

from __future__ import annotations

import asyncio
import csv
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("duckdb")

from core.admin.browser import BrowsedRecord, FetchResult
from core.admin.client import OffsetResult
from core.admin.sql import SqlEngine, SqlError, referenced_topics, write_csv
from core.common.errors import ErrorCode, KafkaError

pytestmark = pytest.mark.timeout(30)


class FakeAdmin:
    def __init__(self, logs: dict[str, dict[int, list[BrowsedRecord]]]) -> None:
        self.logs = logs
        self.log_start: dict[tuple[str, int], int] = {}

    async def partitions_of(self, topic: str) -> list[int]:
        if topic not in self.logs:
            raise KafkaError(topic, ErrorCode.unknown_topic_or_partition)
        return sorted(self.logs[topic])

    async def list_offsets(self, tps: list[tuple[str, int]], spec: str) -> dict[Any, Any]:
        out = {}
        for t, p in tps:
            start = self.log_start.get((t, p), 0)
            out[(t, p)] = OffsetResult(start if spec == "earliest" else len(self.logs[t][p]))
        return out


class FakeBrowser:
    """Serves at most 7 records per fetch; long polls wait for `arrived`."""

    def __init__(self, logs: dict[str, dict[int, list[BrowsedRecord]]]) -> None:
        self.admin = FakeAdmin(logs)
        self.logs = logs
        self.fetches = 0
        self.arrived = asyncio.Event()

    async def fetch(self, topic: str, partition: int, offset: int, *, max_wait_ms: int = 0,
                    max_bytes: int | None = None) -> FetchResult:
        self.fetches += 1
        log = self.logs[topic][partition]
        if offset >= len(log) and max_wait_ms:
            try:
                await asyncio.wait_for(self.arrived.wait(), max_wait_ms / 1000)
            except TimeoutError:
                pass
        records = log[offset:offset + 7]
        return FetchResult(records, len(log), 0, offset + len(records))


def _record(topic: str, p: int, o: int, value: bytes | None, key: bytes | None = None,
            headers: tuple[tuple[str, bytes | None], ...] = ()) -> BrowsedRecord:
    return BrowsedRecord(topic, p, o, 1_700_000_000_000 + o * 1000, key, value, headers)


def _words_topic(n: int = 40) -> dict[int, list[BrowsedRecord]]:
    words = ["kafka", "duck", "table", "stream"]
    logs: dict[int, list[BrowsedRecord]] = {0: [], 1: []}
    for i in range(n):
        p = i % 2
        value = json.dumps({"word": words[i % 4], "n": i}).encode()
        logs[p].append(_record("words", p, len(logs[p]), value, f"k{i % 5}".encode()))
    return logs


def test_referenced_topics() -> None:
    assert referenced_topics('SELECT * FROM "a.b-c" JOIN other USING (key)') == ["a.b-c", "other"]
    assert referenced_topics('select 1 from "we""ird" f, range(3)') == ['we"ird']
    assert referenced_topics("SELECT 'FROM x' AS s -- from y\nFROM \"t\"") == ["t"]
    assert referenced_topics("SELECT 42") == []
    assert referenced_topics('SELECT * FROM (SELECT * FROM "t") sub') == ["t"]


def test_query_json_values_and_columns(tmp_path: Path) -> None:
    logs = {"words": _words_topic(), "mixed": {0: [
        _record("mixed", 0, 0, b"not json", None, (("h", b"v"), ("n", None))),
        _record("mixed", 0, 1, b'{"a": [1, 2]}', b"k"),
        _record("mixed", 0, 2, None, b"tombstone"),
        _record("mixed", 0, 3, b"\xff\xfe", b"\x00bin"),
    ]}}

    async def run() -> None:
        engine = SqlEngine(FakeBrowser(logs))  # type: ignore[arg-type]
        seen: list[tuple[int, int, str]] = []
        result = await engine.query(
            "SELECT value->>'word' AS w, count(*) AS c, sum((value->>'n')::INT) AS s "
            'FROM "words" GROUP BY w ORDER BY w', progress=lambda d, t, n: seen.append((d, t, n)))
        expected = Counter(["kafka", "duck", "table", "stream"] * 10)
        assert [(w, c) for w, c, _ in result.rows] == sorted(expected.items())
        assert sum(s for *_, s in result.rows) == sum(range(40))
        assert result.column_names == ["w", "c", "s"]
        assert result.records == {"words": 40} and not result.truncated
        assert seen[-1] == (40, 40, "words")

        r = await engine.query('SELECT * FROM "mixed" ORDER BY "offset"')
        assert r.column_names == ["key", "value", "headers", "partition", "offset", "timestamp"]
        assert dict(r.columns)["value"] == "JSON"
        rows = r.rows
        assert json.loads(rows[0][1]) == "not json"
        assert json.loads(rows[0][2]) == {"h": "v", "n": None}
        assert json.loads(rows[1][1]) == {"a": [1, 2]} and rows[1][2] is None
        assert rows[2][0] == "tombstone" and rows[2][1] is None
        assert rows[3][0] == "\x00bin" and json.loads(rows[3][1]) == "\ufffd\ufffd"
        assert rows[1][5].year == 2023
        r = await engine.query(
            "SELECT json_type(value) AS t, count(*) FROM \"mixed\" GROUP BY t ORDER BY t")
        assert r.rows == [("OBJECT", 1), ("VARCHAR", 2), (None, 1)]
        # a join across topics
        r = await engine.query('SELECT count(*) FROM "words" w JOIN "mixed" m USING (key)')
        assert r.rows == [(0,)]

        out = tmp_path / "r.csv"
        assert write_csv(result, out) == 4
        with open(out, newline="") as f:
            table = list(csv.reader(f))
        assert table[0] == ["w", "c", "s"] and table[1][:2] == ["duck", "10"]
        engine.close()

    asyncio.run(run())


def test_reruns_fetch_only_new_records_and_limits() -> None:
    logs = {"words": _words_topic(40)}
    browser = FakeBrowser(logs)

    async def run() -> None:
        engine = SqlEngine(browser, max_records_per_partition=15, max_rows=3)  # type: ignore[arg-type]
        r = await engine.query('SELECT "partition", min("offset"), count(*) FROM "words" '
                               'GROUP BY 1 ORDER BY 1')
        assert r.rows == [(0, 5, 15), (1, 5, 15)] and r.truncated  # the latest 15 each
        fetches = browser.fetches
        r = await engine.query('SELECT count(*) FROM "words"')
        assert r.rows == [(30,)] and browser.fetches == fetches  # nothing new: no fetch
        logs["words"][1].append(_record("words", 1, 20, b'{"word": "new"}'))
        r = await engine.query('SELECT count(*) FROM "words"')
        assert r.rows == [(31,)]
        r = await engine.query('SELECT "offset" FROM "words"')
        assert len(r.rows) == 3 and r.truncated  # max_rows
        with pytest.raises(SqlError, match="no topic"):
            await engine.query('SELECT * FROM "nope"')
        with pytest.raises(SqlError):
            await engine.query('SELECT nonsense FROM "words"')
        engine.forget("words")
        r = await engine.query('SELECT count(*) FROM "words"')
        assert r.rows == [(30,)]

    asyncio.run(run())


def test_live_query_pushes_new_results() -> None:
    logs = {"words": _words_topic(10)}
    browser = FakeBrowser(logs)

    async def run() -> None:
        engine = SqlEngine(browser)  # type: ignore[arg-type]
        results = []
        gen = engine.live('SELECT count(*) FROM "words"', max_wait_ms=200)
        results.append((await gen.__anext__()).rows[0][0])

        async def later() -> None:
            await asyncio.sleep(0.3)
            logs["words"][0].append(_record("words", 0, 5, b"1"))
            logs["words"][0].append(_record("words", 0, 6, b"2"))
            browser.arrived.set()

        task = asyncio.ensure_future(later())
        results.append((await asyncio.wait_for(gen.__anext__(), 5)).rows[0][0])
        await task
        await gen.aclose()
        assert results == [10, 12]

    asyncio.run(run())


def test_cancel_interrupts_a_long_query() -> None:
    async def run() -> None:
        engine = SqlEngine(FakeBrowser({}))  # type: ignore[arg-type]
        task = asyncio.ensure_future(engine.query(
            "SELECT count(*) FROM range(1000000000) a, range(1000000) b "
            "WHERE a.range % 7 = b.range"))
        await asyncio.sleep(0.5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)
        r = await engine.query("SELECT 1 AS one")  # the connection still works
        assert r.rows == [(1,)]

    asyncio.run(run())
