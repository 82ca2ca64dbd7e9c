"""Quorum state stores."""

from __future__ import annotations

import json
from pathlib import Path

from core.raft.store import ElectionState, FileQuorumStore, MemoryQuorumStore


def test_memory_store_round_trip() -> None:
    store = MemoryQuorumStore()
    assert store.read() == ElectionState()
    store.write(ElectionState(3, 2, None))
    assert store.read() == ElectionState(3, 2, None)


def test_file_store_round_trip_and_atomic_replace(tmp_path: Path) -> None:
    path = tmp_path / "meta" / "quorum-state"
    store = FileQuorumStore(path)
    assert store.read() == ElectionState()
    store.write(ElectionState(5, 1, 1))
    store.write(ElectionState(6, None, 3))
    assert FileQuorumStore(path).read() == ElectionState(6, None, 3)
    raw = json.loads(path.read_text())
    assert raw["leaderEpoch"] == 6 and raw["votedId"] == -1 and raw["leaderId"] == 3
    assert sorted(p.name for p in path.parent.iterdir()) == ["quorum-state"]  # no temp left


def test_file_store_ignores_leftover_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "quorum-state"
    store = FileQuorumStore(path)
    store.write(ElectionState(2, 2, None))
    (tmp_path / "quorum-state.tmp").write_text("{torn")  # crash before rename
    assert FileQuorumStore(path).read() == ElectionState(2, 2, None)
