"""Timeline events from log files: D/broker-N/broker.log and D/serve.log, followed live.

Broker lines look like ``[2026-11-25 20:34:01,870] INFO core.broker.raft_io: metadata quorum:
leader in epoch 1, leader 1``; serve.log lines (``kaflab serve: broker 2 (pid 9) exited with
-9: killed``) carry no time, so they are stamped when read. Only lines matching a rule below
become events. :class:`LogEventSource` remembers file offsets; ``poll()`` returns new events;
``watch(callback)`` makes watchdog call ``callback`` when a file changes (callers still poll
now and then: notifications can be missed).
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable
from pathlib import Path

from core.timeline.store import TimelineEvent

log = logging.getLogger(__name__)

BROKER_DIR = re.compile(r"^broker-(\d+)$")
STAMP = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3})\]\s+(\w+)\s+\S+:\s+(.*)$")
MAX_READ = 4 * 1024 * 1024

#: (pattern, kind) for broker log messages, first match wins
BROKER_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"metadata quorum: leader in epoch"), "quorum-leader"),
    (re.compile(r"metadata quorum: resigned in epoch"), "quorum-resigned"),
    (re.compile(r"ISR of \S+ shrunk"), "isr-shrink"),
    (re.compile(r"ISR of \S+ expanded"), "isr-expand"),
    (re.compile(r"fencing broker \d+"), "fencing"),
    (re.compile(r"created topic "), "topic-created"),
    (re.compile(r"registered with epoch"), "broker-registered"),
    (re.compile(r"controlled shutdown"), "controlled-shutdown"),
)
#: (pattern, kind) for serve.log
SERVE_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"exited with -9: killed|exited with .*: killed"), "broker-killed"),
    (re.compile(r"exited with "), "broker-exit"),
    (re.compile(r"started broker \d+"), "broker-started"),
    (re.compile(r"broker \d+ is up"), "broker-up"),
    (re.compile(r"controller is now"), "controller"),
    (re.compile(r"told controller \d+ that broker \d+ died"), "fencing"),
    (re.compile(r"network fault"), "network-fault"),
)
_BROKER_IN_TEXT = re.compile(r"broker (\d+)")


def parse_broker_line(line: str, broker_id: int) -> TimelineEvent | None:
    """An event for one broker.log line, or None when it is not interesting."""
    m = STAMP.match(line)
    if m is None:
        return None
    stamp, millis, level, message = m.groups()
    kind = next((k for pattern, k in BROKER_RULES if pattern.search(message)), None)
    if kind is None:
        if level not in ("ERROR", "CRITICAL"):
            return None
        kind = "error"
    try:
        ts = time.mktime(time.strptime(stamp, "%Y-%m-%d %H:%M:%S")) + int(millis) / 1000
    except ValueError:
        return None
    return TimelineEvent(ts, f"broker-{broker_id}", broker_id, kind, message.strip())


def parse_serve_line(line: str, when: float) -> TimelineEvent | None:
    """An event for one serve.log line (stamped ``when``), or None."""
    message = line.removeprefix("kaflab serve: ").strip()
    for pattern, kind in SERVE_RULES:
        if pattern.search(message):
            m = _BROKER_IN_TEXT.search(message)
            broker = int(m.group(1)) if m and kind != "controller" else None
            return TimelineEvent(when, "serve", broker, kind, message)
    return None


class LogEventSource:
    """Follows every D/broker-*/broker.log and D/serve.log from their current end."""

    def __init__(self, data_dir: str | Path, *, from_start: bool = False) -> None:
        self.data_dir = Path(data_dir)
        self.from_start = from_start
        self._offsets: dict[Path, int] = {}
        self._partial: dict[Path, str] = {}
        self._observer = None

    def files(self) -> list[tuple[Path, int | None]]:
        """(path, broker id or None for serve.log)."""
        out: list[tuple[Path, int | None]] = [(self.data_dir / "serve.log", None)]
        try:
            for d in sorted(self.data_dir.iterdir()):
                m = BROKER_DIR.match(d.name)
                if m and d.is_dir():
                    out.append((d / "broker.log", int(m.group(1))))
        except OSError:
            pass
        return out

    def poll(self) -> list[TimelineEvent]:
        """New events since the last poll (the first poll starts at each file's end unless
        ``from_start``)."""
        events: list[TimelineEvent] = []
        now = time.time()
        for path, broker_id in self.files():
            for line in self._new_lines(path):
                event = (parse_serve_line(line, now) if broker_id is None
                         else parse_broker_line(line, broker_id))
                if event is not None:
                    events.append(event)
        events.sort(key=lambda e: e.ts)
        return events

    def _new_lines(self, path: Path) -> list[str]:
        try:
            size = os.path.getsize(path)
        except OSError:
            return []
        offset = self._offsets.get(path)
        if offset is None:
            offset = 0 if self.from_start else size
        if size < offset:
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
        if lines[-1]:
            self._partial[path] = lines[-1]
        return [line for line in lines[:-1] if line.strip()]

    def watch(self, callback: Callable[[], None]) -> bool:
        """Call ``callback`` (from watchdog's thread) when something under D changes."""
        try:
            from watchdog.events import FileSystemEventHandler
            from watchdog.observers import Observer
        except ImportError:
            return False

        class Handler(FileSystemEventHandler):
            def on_modified(self, event: object) -> None:
                callback()

            on_created = on_modified

        observer = Observer()
        observer.daemon = True
        try:
            handler = Handler()
            observer.schedule(handler, str(self.data_dir), recursive=False)
            for path, broker_id in self.files():
                if broker_id is not None and path.parent.is_dir():
                    observer.schedule(handler, str(path.parent), recursive=False)
            observer.start()
        except OSError:
            log.debug("watchdog unavailable for %s", self.data_dir, exc_info=True)
            return False
        self._observer = observer
        return True

    def close(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(2)
            self._observer = None
