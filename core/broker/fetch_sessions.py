"""Incremental fetch sessions (KIP-227).

A client that opens a session sends its partition list once; later fetches name only what
changed, and responses carry only partitions with new data or changed offsets.
"""

from __future__ import annotations

import itertools
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from kio.schema.errors import ErrorCode

from core.common.errors import KafkaError

INITIAL_EPOCH = 0
FINAL_EPOCH = -1


@dataclass(slots=True)
class CachedPartition:
    fetch_offset: int
    max_bytes: int
    current_leader_epoch: int = -1
    last_fetched_epoch: int = -1
    #: what the client last saw; a partition is resent when any of these change
    high_watermark: int = -2
    last_stable_offset: int = -2
    log_start_offset: int = -2


@dataclass(slots=True)
class FetchSession:
    session_id: int
    epoch: int  # the epoch the next request must carry
    partitions: dict[tuple[str, int], CachedPartition] = field(default_factory=dict)
    last_used: float = field(default_factory=time.monotonic)


class FetchSessionCache:
    """Bounded LRU of fetch sessions (max.incremental.fetch.session.cache.slots = 1000)."""

    def __init__(self, max_sessions: int = 1000) -> None:
        self._sessions: OrderedDict[int, FetchSession] = OrderedDict()
        self._ids = itertools.count(1)
        self._max = max_sessions

    def create(self) -> FetchSession:
        session = FetchSession(next(self._ids) & 0x7FFFFFFF or next(self._ids), 1)
        self._sessions[session.session_id] = session
        while len(self._sessions) > self._max:
            self._sessions.popitem(last=False)
        return session

    def get(self, session_id: int, epoch: int) -> FetchSession:
        session = self._sessions.get(session_id)
        if session is None:
            raise KafkaError("Fetch session not found", ErrorCode.fetch_session_id_not_found)
        if epoch != session.epoch:
            raise KafkaError(f"Expected fetch session epoch {session.epoch}, got {epoch}",
                             ErrorCode.invalid_fetch_session_epoch)
        self._sessions.move_to_end(session_id)
        session.last_used = time.monotonic()
        return session

    def remove(self, session_id: int) -> None:
        self._sessions.pop(session_id, None)

    def __len__(self) -> int:
        return len(self._sessions)
