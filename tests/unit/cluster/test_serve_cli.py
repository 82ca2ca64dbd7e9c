"""`main.py serve` / `main.py ctl` as processes (through LocalCluster), with fake brokers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from core.cluster import ClusterControl, LocalCluster, LocalClusterError, free_base_port
from core.cluster.state import read_cluster_json
from core.cluster.supervisor import MAIN_PY
from tests.unit.cluster.conftest import FAKE_PREFIX, kill_recorded_pids, process_gone

pytestmark = pytest.mark.timeout(90)

ENV = {**os.environ, "KAFLAB_BROKER_COMMAND": FAKE_PREFIX}


def ctl(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(MAIN_PY), "ctl", "--data-dir", str(data_dir),
                           *args], capture_output=True, text=True, timeout=60)


def wait_state(data_dir: Path, broker_id: int, state: str, within: float = 2.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        doc = read_cluster_json(data_dir) or {}
        if any(b["id"] == broker_id and b["state"] == state for b in doc.get("brokers", [])):
            return
        time.sleep(0.02)
    raise AssertionError(f"broker {broker_id} not {state} within {within}s: {doc}")


def test_serve_ready_ctl_and_sigterm(cluster_dir):
    port = free_base_port(3)
    cluster = LocalCluster(cluster_dir, brokers=3, port=port, env=ENV, ready_timeout=30)
    with cluster:
        assert cluster.bootstrap == ",".join(f"127.0.0.1:{port + i}" for i in range(3))
        assert cluster.stdout_lines == [f"ready bootstrap={cluster.bootstrap}"]
        doc = read_cluster_json(cluster_dir)
        assert doc["serve_pid"] == cluster.pid and doc["controller_id"] == 1

        status = ctl(cluster_dir, "status")
        assert status.returncode == 0, status.stderr
        lines = status.stdout.splitlines()
        assert lines[0].split() == ["ID", "ADDRESS", "STATE", "PID", "CONTROLLER"]
        assert lines[1].split()[:3] == ["1", f"127.0.0.1:{port}", "running"]
        assert lines[1].split()[-1] == "*"

        result = ctl(cluster_dir, "kill", "2")
        assert result.returncode == 0 and "killed" in result.stdout
        wait_state(cluster_dir, 2, "killed")
        assert ctl(cluster_dir, "restart", "2").returncode == 0
        wait_state(cluster_dir, 2, "running")
        assert ctl(cluster_dir, "pause", "3").returncode == 0
        wait_state(cluster_dir, 3, "paused")
        assert ctl(cluster_dir, "resume", "3").returncode == 0
        wait_state(cluster_dir, 3, "running")

        bad = ctl(cluster_dir, "kill", "7")
        assert bad.returncode == 1 and bad.stderr.startswith("error: no broker 7")
        assert len(bad.stderr.strip().splitlines()) == 1
        missing = ctl(cluster_dir, "stop")
        assert missing.returncode == 1 and "needs a broker id" in missing.stderr

        second = subprocess.run(
            [sys.executable, str(MAIN_PY), "serve", "--brokers", "3", "--port", str(port),
             "--data-dir", str(cluster_dir)], capture_output=True, text=True, timeout=30, env=ENV)
        assert second.returncode == 1
        assert f"(pid {cluster.pid}) is already running" in second.stderr
        assert ClusterControl(cluster_dir).is_running()
        pids = [b["pid"] for b in read_cluster_json(cluster_dir)["brokers"]]
    assert cluster.returncode == 0
    doc = read_cluster_json(cluster_dir)
    assert [b["state"] for b in doc["brokers"]] == ["stopped"] * 3
    assert all(process_gone(pid) for pid in pids)
    assert "stopping brokers" in cluster.serve_log.read_text()


def test_ctl_without_serve(tmp_path):
    result = ctl(tmp_path, "status")
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: no kaflab serve running on {tmp_path}")
    assert len(result.stderr.strip().splitlines()) == 1


def test_sigint_stops_cleanly(cluster_dir):
    cluster = LocalCluster(cluster_dir, brokers=2, port=free_base_port(2), env=ENV).start()
    try:
        os.kill(cluster.pid, signal.SIGINT)
        assert cluster.process.wait(30) == 0
    finally:
        cluster.stop()
    assert [b["state"] for b in read_cluster_json(cluster_dir)["brokers"]] == ["stopped"] * 2


def test_startup_failure_reported(cluster_dir):
    cluster = LocalCluster(cluster_dir, brokers=2, port=free_base_port(2), env=ENV,
                           config={"fake.crash": "5"}, ready_timeout=30)
    with pytest.raises(LocalClusterError, match="serve exited with code 1") as info:
        cluster.start()
    assert "crashing on purpose" in str(info.value)
    assert cluster.returncode == 1


def test_serve_sigkilled_then_new_serve_reattaches(cluster_dir):
    port = free_base_port(3)
    first = LocalCluster(cluster_dir, brokers=3, port=port, env=ENV).start()
    try:
        pids = first.broker_pids()
        os.kill(first.pid, signal.SIGKILL)
        first.process.wait(10)
        assert all(psutil.pid_exists(pid) for pid in pids.values())
        with LocalCluster(cluster_dir, brokers=3, port=port, env=ENV) as second:
            assert second.broker_pids() == pids  # re-attached, no duplicates
            assert ctl(cluster_dir, "kill", "1").returncode == 0
            wait_state(cluster_dir, 1, "killed")
        assert second.returncode == 0
        assert all(process_gone(pid) for pid in pids.values())
    finally:
        first.stop()
        kill_recorded_pids(cluster_dir)
