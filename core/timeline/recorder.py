"""TimelineRecorder: poll snapshots and follow logs into a TimelineStore, headless.

    recorder = TimelineRecorder("D/timeline.sqlite", bootstrap, data_dir=D)
    task = asyncio.ensure_future(recorder.run())
    ...
    recorder.note("scenario-fault", "kill broker 2")
    recorder.stop(); await task; recorder.close()

SQLite work runs in one worker thread so the event loop never waits on the disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from core.admin.poller import SnapshotPoller
from core.admin.snapshot import ClusterSnapshot
from core.timeline.logs import LogEventSource
from core.timeline.store import TimelineStore

log = logging.getLogger(__name__)


class TimelineRecorder:
    """Records one snapshot per ``interval_s`` and every log event until stop()."""

    def __init__(self, path: str | Path, bootstrap: str, *, data_dir: str | Path | None = None,
                 interval_s: float = 1.0, retention_s: float = 3600.0,
                 poller: SnapshotPoller | None = None) -> None:
        self.store = TimelineStore(path, retention_s=retention_s)
        self.bootstrap = bootstrap
        self.interval_s = interval_s
        self.logs = LogEventSource(data_dir) if data_dir is not None else None
        self._own_poller = poller is None
        self.poller = poller or SnapshotPoller(bootstrap, interval_s=interval_s,
                                               configs_every=5, request_timeout=3.0)
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="kaflab-timeline")
        self._stop = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self.snapshots = 0

    async def _db(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def note(self, kind: str, text: str, when: float | None = None,
             broker: int | None = None) -> None:
        """Record an event now (from the loop thread or any other)."""
        when = time.time() if when is None else when
        self._pool.submit(self.store.add_event, kind, text, source="scenario", broker=broker,
                          when=when)

    def stop(self) -> None:
        self._stop.set()

    async def record(self, snap: ClusterSnapshot) -> None:
        await self._db(self.store.add_snapshot, snap)
        self.snapshots += 1

    async def run(self) -> None:
        """Until stop(): snapshots every interval, log events as they appear."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        tasks = [asyncio.ensure_future(self._snapshots())]
        if self.logs is not None:
            await self._db(self.logs.poll)  # skip what is already there
            loop, wake = self._loop, self._wake
            self.logs.watch(lambda: loop.call_soon_threadsafe(wake.set))
            tasks.append(asyncio.ensure_future(self._follow()))
        try:
            await self._stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self.logs is not None:
                with contextlib.suppress(Exception):
                    await self._db(self._flush_logs)

    def _flush_logs(self) -> None:
        assert self.logs is not None
        self.store.add_events(self.logs.poll())

    async def _snapshots(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                await self.record(await self.poller.poll_once())
            except asyncio.CancelledError:
                raise
            except Exception:
                log.debug("timeline snapshot failed", exc_info=True)
            delay = self.interval_s - (time.monotonic() - started)
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)

    async def _follow(self) -> None:
        assert self._wake is not None
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 1.0)
            self._wake.clear()
            await asyncio.sleep(0.05)  # coalesce bursts of writes
            await self._db(self._flush_logs)

    def close(self) -> None:
        """Close the poller's connections (best effort, no loop needed) and the store."""
        if self.logs is not None:
            self.logs.close()
        self._pool.shutdown(wait=True)
        self.store.close()

    async def aclose(self) -> None:
        if self._own_poller:
            await self.poller.close()
        self.close()
