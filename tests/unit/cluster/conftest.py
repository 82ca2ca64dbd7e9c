"""Fixtures for the supervisor's unit tests: the fake broker command and PID-based cleanup."""

from __future__ import annotations

import contextlib
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from core.cluster.state import read_cluster_json

FAKE_BROKER = Path(__file__).with_name("fake_broker.py")


def fake_command(broker_id: int, config: Path) -> list[str]:
    """broker_command factory for Supervisor: the fake broker instead of main.py broker."""
    return [sys.executable, str(FAKE_BROKER), "--config", str(config)]


FAKE_PREFIX = shlex.join([sys.executable, str(FAKE_BROKER)])


def kill_recorded_pids(data_dir: Path) -> None:
    """SIGKILL (by pid) every process cluster.json still lists, if it is one of ours."""
    document = read_cluster_json(data_dir) or {}
    pids = [b.get("pid") for b in document.get("brokers", [])]
    pids.append(document.get("serve_pid"))
    for pid in pids:
        if not isinstance(pid, int) or pid <= 0:
            continue
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(pid)
            if str(data_dir) in " ".join(proc.cmdline()):
                proc.kill()
                proc.wait(5)


@pytest.fixture
def cluster_dir(tmp_path: Path) -> Iterator[Path]:
    """A data dir whose leftover processes (per cluster.json) are killed at teardown."""
    data_dir = tmp_path / "cluster"
    yield data_dir
    kill_recorded_pids(data_dir)


def process_gone(pid: int) -> bool:
    """True when pid no longer runs (gone, or a zombie nobody reaped yet)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
