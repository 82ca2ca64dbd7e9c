"""SQL over topics for the console's Query page (core.admin.sql on the bridge's loop).

The engine (DuckDB plus the topics it has read) lives on the session's asyncio loop and is
reused between runs, so a re-run fetches only new records. Results, progress and errors come
back to Qt as signals; the Qt thread never waits. Cancel cancels the task, which interrupts
DuckDB or the fetches in flight.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from core.admin.browser import Browser
from core.admin.sql import QueryResult, SqlEngine, SqlError, referenced_topics, write_csv

log = logging.getLogger(__name__)

__all__ = ["QueryController", "QueryResult", "SqlError", "referenced_topics"]


class QueryController(QObject):
    """At most one query (or live query) at a time for a Session."""

    #: (records read, records to read, topic) while topics load
    progress = Signal(int, int, str)
    #: a QueryResult (a live query emits one per change)
    result = Signal(object)
    #: a message: the query failed (SQL error, unknown topic, connection...)
    failed = Signal(str)
    #: running or not (live queries run until cancelled)
    running_changed = Signal(bool)
    #: (path, rows) after an export
    exported = Signal(str, int)

    def __init__(self, session: Any, *, max_records_per_partition: int = 100_000,
                 max_rows: int = 10_000) -> None:
        super().__init__()
        self.session = session
        self.max_records_per_partition = max_records_per_partition
        self.max_rows = max_rows
        self._engine: SqlEngine | None = None
        self._browser: Browser | None = None
        self._bootstrap = ""
        self._future: Any = None
        self.last_result: QueryResult | None = None

    @property
    def running(self) -> bool:
        return self._future is not None and not self._future.done()

    def why_not(self) -> str:
        if self.running:
            return "A query is already running."
        caps = getattr(self.session, "capabilities", None)
        if caps is None or not getattr(caps, "bootstrap", ""):
            return "Not connected to a cluster yet."
        return ""

    async def _engine_for(self, bootstrap: str) -> SqlEngine:
        if self._engine is None or self._bootstrap != bootstrap:
            await self._close_engine()
            self._browser = Browser(bootstrap)
            self._engine = SqlEngine(self._browser,
                                     max_records_per_partition=self.max_records_per_partition,
                                     max_rows=self.max_rows)
            self._bootstrap = bootstrap
        return self._engine

    async def _close_engine(self) -> None:
        if self._engine is not None:
            self._engine.close()
        if self._browser is not None:
            await self._browser.close()
        self._engine = self._browser = None

    def run(self, sql: str, *, live: bool = False) -> bool:
        """Start a query (live: re-run whenever new records arrive, until cancel())."""
        reason = self.why_not()
        if reason:
            self.failed.emit(reason)
            return False
        if not sql.strip():
            self.failed.emit("Write a query first.")
            return False
        bridge = self.session.bridge
        bootstrap = self.session.capabilities.bootstrap

        def progress(done: int, total: int, topic: str) -> None:
            bridge.post(lambda a: self.progress.emit(*a), (done, total, topic))

        async def once() -> QueryResult:
            engine = await self._engine_for(bootstrap)
            return await engine.query(sql, progress=progress)

        async def push() -> None:
            engine = await self._engine_for(bootstrap)
            async for result in engine.live(sql, progress=progress):
                bridge.post(self._on_result, result)

        self.running_changed.emit(True)
        self._future = bridge.call(push() if live else once(), self._on_done, self._on_failed)
        return True

    def cancel(self) -> None:
        if self.running:
            self._future.cancel()

    def forget(self) -> None:
        """Drop what was read, so the next run reads every topic again."""
        async def go() -> None:
            if self._engine is not None:
                for topic in list(self._engine.loaded):
                    self._engine.forget(topic)
        if not self.running:
            self.session.bridge.call(go())

    def export_csv(self, path: str | Path, result: QueryResult | None = None) -> None:
        """Write the (last) result to a CSV file, off the Qt thread."""
        result = result or self.last_result
        if result is None:
            self.failed.emit("Nothing to export yet.")
            return
        target = str(path)
        self.session.bridge.call(asyncio.to_thread(write_csv, result, target),
                                 lambda rows: self.exported.emit(target, rows),
                                 self._on_failed)

    def close(self) -> None:
        """Cancel any run and release the engine (on the loop)."""
        self.cancel()
        bridge = getattr(self.session, "bridge", None)
        if bridge is not None and bridge.running:
            bridge.call(self._close_engine())

    def _on_result(self, result: QueryResult) -> None:
        self.last_result = result
        self.result.emit(result)

    def _on_done(self, result: QueryResult | None) -> None:
        self.running_changed.emit(False)
        if result is not None:
            self._on_result(result)

    def _on_failed(self, exc: BaseException) -> None:
        if self.running is False:
            self.running_changed.emit(False)
        if isinstance(exc, asyncio.CancelledError):
            self.failed.emit("Cancelled.")
            return
        log.debug("query failed", exc_info=exc)
        text = str(exc).strip()
        self.failed.emit(text if isinstance(exc, SqlError) and text
                         else f"{type(exc).__name__}: {text}" if text else type(exc).__name__)
