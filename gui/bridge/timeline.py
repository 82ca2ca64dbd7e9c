"""The console's timeline: every snapshot the session polls, plus log events, into SQLite.

One TimelineBridge per Session (``for_session``). It listens to ``session.snapshot`` and hands
each snapshot to one worker thread that writes the TimelineStore; broker / serve log events
are read by the same thread (watchdog wakes it; a timer polls as a fallback). Queries
(``query(t)``, ``refresh_span()``) run there too and come back to Qt as signals, so the Qt
thread never touches the disk.

The file is D/timeline.sqlite for a local cluster (shared with `main.py scenario run`); for
an attached cluster the timeline lives in memory for the session.
"""

from __future__ import annotations

import logging
import weakref
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from core.admin.snapshot import ClusterSnapshot
from core.timeline.logs import LogEventSource
from core.timeline.store import FAULT_KINDS as _FAULTS
from core.timeline.store import TimelineEvent, TimelineStore

log = logging.getLogger(__name__)

__all__ = ["TimelineBridge", "TimelineEvent", "for_session", "note"]

MEMORY = ":memory:"
_BY_SESSION: weakref.WeakKeyDictionary[Any, TimelineBridge] = weakref.WeakKeyDictionary()


def default_path(data_dir: Path | None) -> Path:
    """D/timeline.sqlite for a local cluster; in memory (this session only) otherwise."""
    if data_dir is not None:
        return Path(data_dir) / "timeline.sqlite"
    return Path(MEMORY)


def for_session(session: Any, path: Path | None = None) -> TimelineBridge:
    """The session's TimelineBridge (created on first use)."""
    bridge = _BY_SESSION.get(session)
    if bridge is None:
        bridge = TimelineBridge(session, path)
        _BY_SESSION[session] = bridge
    return bridge


def note(session: Any, kind: str, text: str, when: float | None = None) -> None:
    """Record an event in the session's timeline, if it has one."""
    bridge = _BY_SESSION.get(session)
    if bridge is not None:
        bridge.note(kind, text, when)


class TimelineBridge(QObject):
    """Records the session's snapshots; answers time queries asynchronously."""

    #: (first, last, count, marks [(ts, kind, is_fault)]) after refresh_span()
    span_changed = Signal(object)
    #: (t, ClusterSnapshot | None, [TimelineEvent]) after query(t)
    state_ready = Signal(object)

    def __init__(self, session: Any, path: Path | None = None, *,
                 log_poll_ms: int = 1000) -> None:
        super().__init__()
        self.session = session
        self._path = path
        self.store: TimelineStore | None = None
        self.logs: LogEventSource | None = None
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="kaflab-timeline")
        self._closed = False
        self._query_seq = 0
        session.snapshot.connect(self._on_snapshot)
        self._timer = QTimer(self)
        self._timer.setInterval(log_poll_ms)
        self._timer.timeout.connect(self._poll_logs)
        self._timer.start()

    @property
    def path(self) -> Path | None:
        return self.store.path if self.store is not None else self._path

    def _submit(self, fn: Any, *args: Any) -> Any:
        if self._closed:
            return None
        try:
            return self._pool.submit(fn, *args)
        except RuntimeError:
            return None

    def _ensure_store(self) -> TimelineStore | None:
        """Worker thread: open the store once the session knows its cluster."""
        if self.store is None:
            caps = getattr(self.session, "capabilities", None)
            if self._path is None and caps is None:
                return None
            data_dir = getattr(caps, "data_dir", None)
            path = self._path or default_path(data_dir)
            self.store = TimelineStore(path)
            if data_dir is not None:
                self.logs = LogEventSource(data_dir)
                self.logs.poll()  # start at the end of the existing logs
                self.logs.watch(self._poll_logs)
        return self.store

    def _on_snapshot(self, snap: ClusterSnapshot) -> None:
        self._submit(self._record, snap)

    def record(self, snap: ClusterSnapshot) -> None:
        """Record a snapshot (from the Qt thread; the write happens in the worker)."""
        self._on_snapshot(snap)

    def _record(self, snap: ClusterSnapshot) -> None:
        store = self._ensure_store()
        if store is not None:
            store.add_snapshot(snap)

    def _poll_logs(self) -> None:
        self._submit(self._read_logs)

    def _read_logs(self) -> None:
        if self.store is not None and self.logs is not None:
            self.store.add_events(self.logs.poll())

    def note(self, kind: str, text: str, when: float | None = None) -> None:
        def write() -> None:
            store = self._ensure_store()
            if store is not None:
                store.add_event(kind, text, when=when)

        self._submit(write)

    # queries ---------------------------------------------------------------------------
    def refresh_span(self) -> None:
        self._submit(self._span)

    def _span(self) -> None:
        store = self._ensure_store()
        if store is None:
            return
        span = store.span()
        if span is None:
            return
        marks = [(ts, kind, kind in _FAULTS) for ts, kind in store.all_event_marks()]
        self._post(self.span_changed.emit, (span[0], span[1], store.count(), marks))

    def query(self, t: float, window_s: float = 60.0) -> None:
        """State at time ``t`` and events within ``window_s`` of it -> ``state_ready``."""
        self._query_seq += 1
        self._submit(self._query, t, window_s, self._query_seq)

    def _query(self, t: float, window_s: float, seq: int) -> None:
        if seq != self._query_seq:  # a newer query is queued: skip this one
            return
        store = self._ensure_store()
        if store is None:
            return
        snap = store.state_at(t)
        events = store.events_between(t - window_s, t + window_s, limit=500)
        self._post(self.state_ready.emit, (t, snap, events))

    def _post(self, fn: Any, arg: Any) -> None:
        if not self._closed:
            self.session.bridge.post(fn, arg)

    def close(self) -> None:
        self._closed = True
        self._timer.stop()
        self._pool.shutdown(wait=True)
        if self.logs is not None:
            self.logs.close()
        if self.store is not None:
            self.store.close()

