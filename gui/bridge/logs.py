"""Follows each broker's log file (D/broker-<id>/broker.log) with watchdog.

Watchdog's observer thread only marks files dirty; reading happens in a worker thread pool of
one (never the Qt thread), and new lines reach Qt through the bridge's relay. A slow timer also
checks for growth in case the platform's notifications are unavailable.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

log = logging.getLogger(__name__)

LEVEL_RE = re.compile(r"\b(TRACE|DEBUG|INFO|WARN|WARNING|ERROR|CRITICAL|FATAL)\b")
BROKER_DIR_RE = re.compile(r"^broker-(\d+)$")
INITIAL_TAIL_BYTES = 128 * 1024
MAX_READ = 4 * 1024 * 1024

LogLine = tuple[int, str, str]  # (broker id, level, text)


def parse_level(line: str) -> str:
    m = LEVEL_RE.search(line[:120])
    if not m:
        return "INFO"
    level = m.group(1)
    return {"WARN": "WARNING", "FATAL": "CRITICAL", "TRACE": "DEBUG"}.get(level, level)


class LogFollower:
    """Tails every D/broker-*/broker.log; ``deliver(lines)`` is called in the Qt thread."""

    def __init__(self, data_dir: Path, post: Callable[[Callable[[object], None], object], None],
                 deliver: Callable[[list[LogLine]], None]) -> None:
        self.data_dir = Path(data_dir)
        self._post = post
        self._deliver = deliver
        self._offsets: dict[Path, int] = {}
        self._partial: dict[Path, str] = {}
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="kaflab-logs")
        self._lock = threading.Lock()
        self._scheduled = False
        self._observer = None
        self._watched: set[Path] = set()
        self._closed = False

    def start(self) -> None:
        self._start_observer()
        self.poke()

    def _start_observer(self) -> None:
        try:
            from watchdog.events import FileSystemEventHandler
            from watchdog.observers import Observer
        except ImportError:  # the timer still polls
            return
        follower = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: object) -> None:
                follower.poke()

        self._handler = Handler()
        observer = Observer()
        observer.daemon = True
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            observer.schedule(self._handler, str(self.data_dir), recursive=False)
            observer.start()
        except OSError:
            log.debug("watchdog unavailable", exc_info=True)
            return
        self._observer = observer

    def _watch_broker_dirs(self, dirs: list[Path]) -> None:
        if self._observer is None:
            return
        for d in dirs:
            if d not in self._watched:
                try:
                    self._observer.schedule(self._handler, str(d), recursive=False)
                    self._watched.add(d)
                except OSError:
                    pass

    def poke(self) -> None:
        """Something may have changed: schedule one read pass (coalesced)."""
        with self._lock:
            if self._scheduled or self._closed:
                return
            self._scheduled = True
        try:
            self._pool.submit(self._read_all)
        except RuntimeError:  # pool shut down
            pass

    def _read_all(self) -> None:
        with self._lock:
            self._scheduled = False
        out: list[LogLine] = []
        try:
            dirs = sorted(p for p in self.data_dir.iterdir()
                          if p.is_dir() and BROKER_DIR_RE.match(p.name))
        except OSError:
            return
        self._watch_broker_dirs(dirs)
        for d in dirs:
            broker_id = int(BROKER_DIR_RE.match(d.name).group(1))  # type: ignore[union-attr]
            out.extend(self._read_file(broker_id, d / "broker.log"))
        if out and not self._closed:
            self._post(self._deliver, out)  # type: ignore[arg-type]

    def _read_file(self, broker_id: int, path: Path) -> list[LogLine]:
        try:
            size = os.path.getsize(path)
        except OSError:
            return []
        offset = self._offsets.get(path)
        if offset is None:
            offset = max(0, size - INITIAL_TAIL_BYTES)
        if size < offset:  # truncated or replaced
            offset = 0
        if size == offset:
            self._offsets[path] = offset
            return []
        try:
            with open(path, "rb") as fh:
                fh.seek(offset)
                data = fh.read(min(MAX_READ, size - offset))
        except OSError:
            return []
        self._offsets[path] = offset + len(data)
        text = self._partial.pop(path, "") + data.decode("utf-8", "replace")
        lines = text.split("\n")
        if lines and lines[-1]:
            self._partial[path] = lines[-1]
        lines = lines[:-1]
        return [(broker_id, parse_level(line), line) for line in lines if line.strip()]

    def stop(self) -> None:
        self._closed = True
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(2)
        self._pool.shutdown(wait=False, cancel_futures=True)
