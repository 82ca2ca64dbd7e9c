"""Persistent quorum state (epoch, voted-for, leader), Kafka's `quorum-state` file.

A node writes it before it acts on a new epoch or grants a vote, so a restarted node never
votes twice in one epoch and never goes back to an older epoch.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True, slots=True)
class ElectionState:
    """What survives a restart: the epoch, whom we voted for in it, and its leader if known."""

    epoch: int = 0
    voted_for: int | None = None
    leader_id: int | None = None


class QuorumStore(Protocol):
    """Durable storage for ElectionState."""

    def read(self) -> ElectionState:
        """The last written state (ElectionState() when nothing was written)."""
        ...

    def write(self, state: ElectionState) -> None:
        """Durably replace the state before returning."""
        ...


class MemoryQuorumStore:
    """An in-memory QuorumStore (simulation, tests)."""

    def __init__(self, state: ElectionState | None = None) -> None:
        self._state = state or ElectionState()
        self.writes = 0

    def read(self) -> ElectionState:
        return self._state

    def write(self, state: ElectionState) -> None:
        self._state = state
        self.writes += 1


class FileQuorumStore:
    """`quorum-state` as JSON, replaced atomically: write a temp file, fsync, rename, fsync dir."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def read(self) -> ElectionState:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return ElectionState()
        return ElectionState(
            epoch=int(raw.get("leaderEpoch", 0)),
            voted_for=_optional_id(raw.get("votedId", -1)),
            leader_id=_optional_id(raw.get("leaderId", -1)),
        )

    def write(self, state: ElectionState) -> None:
        body = {
            "leaderEpoch": state.epoch,
            "votedId": -1 if state.voted_for is None else state.voted_for,
            "leaderId": -1 if state.leader_id is None else state.leader_id,
            "data_version": 0,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(body, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _optional_id(value: object) -> int | None:
    number = int(value)  # type: ignore[call-overload]
    return None if number < 0 else number
