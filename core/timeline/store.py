"""TimelineStore: snapshots and events in one SQLite file (stdlib sqlite3), bounded.

    snapshots(ts REAL, data BLOB)  -- zlib(JSON of core.timeline.codec.encode(snapshot))
    events(ts REAL, source TEXT, broker INTEGER, kind TEXT, text TEXT)

A snapshot equal to the previous one (ignoring its time and rates) is stored as a row with an
empty blob meaning "unchanged", so a quiet cluster costs a few bytes a tick. Retention drops
rows older than ``retention_s`` behind the newest. Safe to use from several threads (one
connection, one lock).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

from core.admin.snapshot import ClusterSnapshot
from core.timeline.codec import decode, encode

SCHEMA = """
CREATE TABLE IF NOT EXISTS snapshots (ts REAL NOT NULL, data BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS snapshots_ts ON snapshots(ts);
CREATE TABLE IF NOT EXISTS events (ts REAL NOT NULL, source TEXT NOT NULL,
    broker INTEGER, kind TEXT NOT NULL, text TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_ts ON events(ts);
"""

#: event kinds worth a marker on a time line
FAULT_KINDS = frozenset({"broker-exit", "broker-killed", "fencing", "scenario-fault",
                         "broker-paused", "network-fault", "replication-throttle"})


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    ts: float  # Unix time, seconds
    source: str  # "broker-2", "serve", "scenario", ...
    broker: int | None
    kind: str
    text: str

    @property
    def is_fault(self) -> bool:
        return self.kind in FAULT_KINDS


def _stable(snap: ClusterSnapshot) -> ClusterSnapshot:
    """The snapshot without the fields that change every tick (time, rates, cpu)."""
    brokers = tuple(replace(b, cpu_percent=None, memory_bytes=None, bytes_in_per_sec=None,
                            bytes_out_per_sec=None, messages_in_per_sec=None)
                    for b in snap.brokers)
    topics = tuple(replace(t, bytes_in_per_sec=None, bytes_out_per_sec=None,
                           messages_in_per_sec=None) for t in snap.topics)
    return replace(snap, taken_at=0.0, brokers=brokers, topics=topics, poll_duration_s=0.0)


class TimelineStore:
    """Record snapshots and events; answer "what was the state at time T"."""

    def __init__(self, path: str | Path, retention_s: float = 3600.0) -> None:
        self.path = Path(path)
        self.retention_s = retention_s
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, timeout=10)
        self._db.executescript(SCHEMA)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._lock = threading.Lock()
        self._last_stable: ClusterSnapshot | None = None
        self._writes = 0

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # writing ---------------------------------------------------------------------------
    def add_snapshot(self, snap: ClusterSnapshot) -> None:
        """Record one tick (an "unchanged" marker when only time and rates moved)."""
        stable = _stable(snap)
        if stable == self._last_stable:
            blob = b""
        else:
            blob = zlib.compress(json.dumps(encode(snap), separators=(",", ":")).encode(), 6)
            self._last_stable = stable
        with self._lock:
            self._db.execute("INSERT INTO snapshots VALUES (?, ?)", (snap.taken_at, blob))
            self._db.commit()
        self._tick()

    def add_events(self, events: list[TimelineEvent]) -> None:
        if not events:
            return
        with self._lock:
            self._db.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?)",
                                 [(e.ts, e.source, e.broker, e.kind, e.text) for e in events])
            self._db.commit()

    def add_event(self, kind: str, text: str, *, source: str = "scenario",
                  broker: int | None = None, when: float | None = None) -> None:
        self.add_events([TimelineEvent(time.time() if when is None else when, source, broker,
                                       kind, text)])

    def _tick(self) -> None:
        self._writes += 1
        if self._writes % 50:
            return
        with self._lock:
            row = self._db.execute("SELECT MAX(ts) FROM snapshots").fetchone()
            if row[0] is None:
                return
            cutoff = row[0] - self.retention_s
            # the newest full snapshot older than the cutoff is kept (moved to the cutoff):
            # it is the state in force there, which later "unchanged" rows refer to
            keep = self._db.execute(
                "SELECT rowid FROM snapshots WHERE ts < ? AND length(data) > 0 "
                "ORDER BY ts DESC, rowid DESC LIMIT 1", (cutoff,)).fetchone()
            if keep is not None:
                keep = keep[0]
                self._db.execute("DELETE FROM snapshots WHERE ts < ? AND rowid != ?",
                                 (cutoff, keep))
                self._db.execute("UPDATE snapshots SET ts = ? WHERE rowid = ? AND ts < ?",
                                 (cutoff, keep, cutoff))
            self._db.execute("DELETE FROM events WHERE ts < ?", (cutoff,))
            self._db.commit()

    # reading ---------------------------------------------------------------------------
    def span(self) -> tuple[float, float] | None:
        """(first, last) recorded snapshot time, or None when empty."""
        with self._lock:
            row = self._db.execute("SELECT MIN(ts), MAX(ts) FROM snapshots").fetchone()
        return None if row[0] is None else (row[0], row[1])

    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM snapshots").fetchone()[0]

    def times(self) -> list[float]:
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT ts FROM snapshots ORDER BY ts")]

    def state_at(self, t: float) -> ClusterSnapshot | None:
        """The snapshot in force at Unix time ``t`` (the last one taken at or before it)."""
        with self._lock:
            row = self._db.execute(
                "SELECT ts FROM snapshots WHERE ts <= ? ORDER BY ts DESC, rowid DESC LIMIT 1",
                (t,)).fetchone()
            if row is None:
                return None
            taken = row[0]
            full = self._db.execute(
                "SELECT data FROM snapshots WHERE ts <= ? AND length(data) > 0 "
                "ORDER BY ts DESC, rowid DESC LIMIT 1", (t,)).fetchone()
        if full is None:
            return None
        snap = decode(json.loads(zlib.decompress(full[0])))
        return replace(snap, taken_at=taken)

    def events_between(self, start: float, end: float, limit: int = 1000,
                       ) -> list[TimelineEvent]:
        with self._lock:
            rows = self._db.execute(
                "SELECT ts, source, broker, kind, text FROM events WHERE ts BETWEEN ? AND ? "
                "ORDER BY ts LIMIT ?", (start, end, limit)).fetchall()
        return [TimelineEvent(*r) for r in rows]

    def all_event_marks(self) -> list[tuple[float, str]]:
        """(time, kind) of every event, for drawing markers."""
        with self._lock:
            return list(self._db.execute("SELECT ts, kind FROM events ORDER BY ts"))


def describe(snap: ClusterSnapshot) -> dict[str, object]:
    """A small summary of a snapshot (leaders per broker, offline and under-replicated)."""
    parts = list(snap.partitions())
    return {
        "controller": snap.controller_id,
        "brokers": [b.id for b in snap.brokers if b.state not in ("offline", "stopped",
                                                                  "killed", "crashed")],
        "leaders": {b.id: sum(1 for p in parts if p.leader == b.id) for b in snap.brokers},
        "offline_partitions": sum(1 for p in parts if p.leader < 0),
        "under_replicated": sum(1 for p in parts if p.under_replicated),
    }

