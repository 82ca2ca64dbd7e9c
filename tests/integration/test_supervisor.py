"""`python main.py serve` with real broker processes: readiness, cluster.json, ctl, lock, stop.

Every serve is started through LocalCluster and ended by PID in its context manager (SIGTERM,
then SIGKILL), which also kills any broker pid cluster.json still lists.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import pytest

from core.cluster import ClusterControl, LocalCluster, free_base_port, read_cluster_json
from core.cluster.supervisor import MAIN_PY

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.skipif(not (MAIN_PY.parent / "core/broker/cli.py").exists(),
                       reason="the broker process (core/broker/cli.py) does not exist yet"),
]

FAST = {"group.initial.rebalance.delay.ms": "0", "offsets.topic.num.partitions": "4"}


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def broker(doc: dict[str, Any], broker_id: int) -> dict[str, Any]:
    return next(b for b in doc["brokers"] if b["id"] == broker_id)


def wait_for(check, within: float, what: str) -> Any:
    deadline = time.monotonic() + within
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within}s: {what}")
        time.sleep(0.05)


def state_is(data_dir: Path, broker_id: int, *states: str):
    def check() -> dict[str, Any] | None:
        doc = read_cluster_json(data_dir)
        return doc if doc and broker(doc, broker_id)["state"] in states else None
    return check


def ctl(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(MAIN_PY), "ctl", "--data-dir", str(data_dir),
                           *args], capture_output=True, text=True, timeout=90)


def metrics_answer(port: int) -> bool:
    url = f"http://127.0.0.1:{port}/metrics"
    with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=5) as resp:
        return resp.status == 200
    return False


def status_row(data_dir: Path, broker_id: int) -> list[str]:
    result = ctl(data_dir, "status")
    assert result.returncode == 0, result.stderr
    return next(line.split() for line in result.stdout.splitlines()
                if line.split() and line.split()[0] == str(broker_id))


@pytest.fixture
def three(tmp_path: Path):
    port = free_base_port(3)
    with LocalCluster(tmp_path / "cluster", brokers=3, port=port, config=FAST,
                      ready_timeout=90) as cluster:
        yield cluster


def test_serve_three_brokers(three: LocalCluster):
    data_dir, port = three.data_dir, three.port
    assert three.bootstrap == ",".join(f"127.0.0.1:{port + i}" for i in range(3))
    doc = read_cluster_json(data_dir)
    assert doc["controller_id"] in (1, 2, 3)
    assert [b["state"] for b in doc["brokers"]] == ["running"] * 3
    for b in doc["brokers"]:
        assert b["port"] == port + b["id"] - 1 and b["host"] == "127.0.0.1"
        assert psutil.Process(b["pid"]).is_running()
        assert wait_for(lambda b=b: metrics_answer(b["metrics_port"]), 10, "metrics endpoint")

    # kill -9: reflected in status and cluster.json at once
    victim = 3 if doc["controller_id"] != 3 else 2
    old_pid = broker(doc, victim)["pid"]
    assert ctl(data_dir, "kill", str(victim)).returncode == 0
    wait_for(state_is(data_dir, victim, "killed"), 2, "killed in cluster.json")
    assert status_row(data_dir, victim)[2] == "killed"
    assert gone(old_pid)

    # restart brings it back with a new pid and the same metrics port
    metrics_port = broker(doc, victim)["metrics_port"]
    assert ctl(data_dir, "restart", str(victim)).returncode == 0
    doc = wait_for(state_is(data_dir, victim, "starting", "running"), 2, "restarted")
    assert broker(doc, victim)["pid"] not in (None, old_pid)
    doc = wait_for(state_is(data_dir, victim, "running"), 60, "restarted broker answers")
    assert broker(doc, victim)["metrics_port"] == metrics_port

    # pause / resume (SIGSTOP / SIGCONT)
    pid = broker(doc, victim)["pid"]
    assert ctl(data_dir, "pause", str(victim)).returncode == 0
    wait_for(state_is(data_dir, victim, "paused"), 2, "paused")
    assert psutil.Process(pid).status() == psutil.STATUS_STOPPED
    assert status_row(data_dir, victim)[2] == "paused"
    assert ctl(data_dir, "resume", str(victim)).returncode == 0
    wait_for(state_is(data_dir, victim, "running"), 2, "resumed")
    assert psutil.Process(pid).status() != psutil.STATUS_STOPPED

    # a second serve on the same data dir is refused and changes nothing
    before = (data_dir / "serve.lock").read_text()
    second = subprocess.run(
        [sys.executable, str(MAIN_PY), "serve", "--brokers", "3", "--port", str(port),
         "--data-dir", str(data_dir)], capture_output=True, text=True, timeout=60)
    assert second.returncode == 1
    assert "already running" in second.stderr
    assert (data_dir / "serve.lock").read_text() == before
    assert ClusterControl(data_dir).is_running()

    # SIGTERM: every broker stops cleanly, serve exits 0
    pids = [b["pid"] for b in read_cluster_json(data_dir)["brokers"]]
    os.kill(three.pid, signal.SIGTERM)
    assert three.process.wait(60) == 0
    assert all(gone(p) for p in pids)
    assert [b["state"] for b in read_cluster_json(data_dir)["brokers"]] == ["stopped"] * 3


def test_killing_the_controller_moves_it(three: LocalCluster):
    data_dir = three.data_dir
    controller = read_cluster_json(data_dir)["controller_id"]
    assert ctl(data_dir, "kill", str(controller)).returncode == 0
    wait_for(state_is(data_dir, controller, "killed"), 2, "controller killed")
    doc = wait_for(lambda: (d := read_cluster_json(data_dir))
                   and d["controller_id"] not in (-1, controller) and d, 30,
                   "a new controller in cluster.json")
    assert doc["controller_id"] in {1, 2, 3} - {controller}


def test_single_broker_stop_start(tmp_path: Path):
    with LocalCluster(tmp_path / "one", brokers=1, port=free_base_port(1), config=FAST,
                      ready_timeout=60) as cluster:
        control = cluster.control
        status = control.status_sync()
        assert status["controller_id"] == 1
        assert "stopped" in control.stop_sync(1)
        entry = broker(read_cluster_json(cluster.data_dir), 1)
        assert entry["state"] == "stopped" and entry["pid"] is None
        control.start_sync(1)
        wait_for(state_is(cluster.data_dir, 1, "running"), 60, "broker back")
        wait_for(lambda: read_cluster_json(cluster.data_dir)["controller_id"] == 1, 10,
                 "controller known again")
    assert cluster.returncode == 0
