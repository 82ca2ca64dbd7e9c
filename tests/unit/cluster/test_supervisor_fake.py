"""The Supervisor in-process, with fake broker processes (tests/unit/cluster/fake_broker.py)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from core.cluster.client import ClusterControl, ClusterControlError, NotRunningError
from core.cluster.layout import BrokerPaths
from core.cluster.local import free_base_port
from core.cluster.lock import AlreadyRunningError, lock_holder
from core.cluster.state import read_cluster_json
from core.cluster.supervisor import StartupError, Supervisor
from core.common.config import load_properties
from tests.unit.cluster.conftest import fake_command, process_gone

pytestmark = pytest.mark.timeout(60)


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 50))


async def eventually(check: Callable[[], bool], within: float = 2.0, what: str = "") -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within}s: {what}")
        await asyncio.sleep(0.02)


def states(data_dir: Path) -> dict[int, str]:
    document = read_cluster_json(data_dir) or {}
    return {b["id"]: b["state"] for b in document.get("brokers", [])}


def heartbeats(data_dir: Path, broker_id: int) -> list[dict[str, Any]]:
    path = BrokerPaths.of(data_dir, broker_id).data / "heartbeats.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


async def with_cluster(data_dir: Path, body: Callable[[Supervisor, int], Awaitable[None]],
                       brokers: int = 3, **kwargs: Any) -> None:
    port = free_base_port(brokers + 1)
    sup = Supervisor(data_dir, brokers=brokers, port=port, broker_command=fake_command,
                     poll_interval=0.2, **kwargs)
    await sup.start()
    try:
        await sup.wait_ready(20)
        await body(sup, port)
    finally:
        await sup.shutdown()


def test_start_layout_and_cluster_json(cluster_dir):
    async def body(sup: Supervisor, port: int) -> None:
        doc = read_cluster_json(cluster_dir)
        assert doc is not None and doc["ready"] is True
        assert doc["controller_id"] == 1
        assert sup.bootstrap_servers() == ",".join(f"127.0.0.1:{port + i}" for i in range(3))
        metrics = set()
        for i, entry in enumerate(doc["brokers"], start=1):
            assert entry["id"] == i and entry["host"] == "127.0.0.1"
            assert entry["port"] == port + i - 1 and entry["state"] == "running"
            assert psutil.Process(entry["pid"]).is_running()
            assert os.getpgid(entry["pid"]) == entry["pid"]  # its own process group
            metrics.add(entry["metrics_port"])
            paths = BrokerPaths.of(cluster_dir, i)
            props = load_properties(str(paths.config))
            assert props["node.id"] == str(i)
            assert props["listeners"] == f"PLAINTEXT://127.0.0.1:{port + i - 1}"
            assert props["log.dirs"] == str(paths.data) and paths.data.is_dir()
            assert props["metrics.port"] == str(entry["metrics_port"])
            assert props["num.partitions"] == "4"
            assert "listening" in paths.log_file.read_text()
        assert len(metrics) == 3
        assert (cluster_dir / "ctl.sock").exists()
        assert lock_holder(cluster_dir) == os.getpid()

    run(with_cluster(cluster_dir, body, overrides={"num.partitions": "4"}))
    doc = read_cluster_json(cluster_dir)
    assert [b["state"] for b in doc["brokers"]] == ["stopped"] * 3
    assert all(b["pid"] is None and b["exit_code"] == 0 for b in doc["brokers"])
    assert doc["serve_pid"] is None
    assert not (cluster_dir / "ctl.sock").exists()
    assert lock_holder(cluster_dir) is None


def test_kill_marks_killed_and_fences_at_controller(cluster_dir):
    async def body(sup: Supervisor, port: int) -> None:
        ctl = ClusterControl(cluster_dir)
        message = await ctl.kill(3)
        assert "killed" in message
        assert states(cluster_dir)[3] == "killed"
        await eventually(lambda: any(h["broker_id"] == 3 and h["want_fence"]
                                     and h["broker_epoch"] == -1
                                     for h in heartbeats(cluster_dir, 1)),
                         what="fence of broker 3 at controller 1")
        # the controller itself dies: the next one is told
        await ctl.kill(1)
        await eventually(lambda: sup.controller_id == 2, what="controller moves to 2")
        await eventually(lambda: any(h["broker_id"] == 1 for h in heartbeats(cluster_dir, 2)),
                         what="fence of broker 1 at controller 2")
        assert read_cluster_json(cluster_dir)["controller_id"] == 2
        with pytest.raises(ClusterControlError, match="not running"):
            await ctl.kill(1)

    run(with_cluster(cluster_dir, body))


def test_unexpected_death_noticed_at_once(cluster_dir):
    async def body(sup: Supervisor, port: int) -> None:
        pid = sup.brokers[2].pid
        os.kill(pid, signal.SIGKILL)
        await eventually(lambda: states(cluster_dir)[2] == "killed", within=1.0)
        pid = sup.brokers[3].pid
        os.kill(pid, signal.SIGTERM)  # exits 0, but nobody asked: crashed
        await eventually(lambda: states(cluster_dir)[3] == "crashed", within=1.0)
        await eventually(lambda: {h["broker_id"] for h in heartbeats(cluster_dir, 1)} >= {2, 3})

    run(with_cluster(cluster_dir, body))


def test_pause_resume_stop_start_restart(cluster_dir):
    async def body(sup: Supervisor, port: int) -> None:
        ctl = ClusterControl(cluster_dir)
        pid = sup.brokers[2].pid
        metrics = sup.brokers[2].metrics_port
        await ctl.pause(2)
        assert states(cluster_dir)[2] == "paused"
        assert psutil.Process(pid).status() == psutil.STATUS_STOPPED
        assert "already paused" in await ctl.pause(2)
        await ctl.resume(2)
        assert states(cluster_dir)[2] == "running"
        assert psutil.Process(pid).status() != psutil.STATUS_STOPPED

        message = await ctl.stop(2)
        assert "stopped" in message
        doc = read_cluster_json(cluster_dir)
        assert doc["brokers"][1]["state"] == "stopped" and doc["brokers"][1]["exit_code"] == 0
        assert process_gone(pid)
        with pytest.raises(ClusterControlError, match="not running"):
            await ctl.stop(2)

        await ctl.start(2)
        await eventually(lambda: states(cluster_dir)[2] == "running")
        with pytest.raises(ClusterControlError, match="already running"):
            await ctl.start(2)
        started = sup.brokers[2].pid

        await ctl.pause(2)
        await ctl.restart(2)  # a paused broker restarts too
        await eventually(lambda: states(cluster_dir)[2] == "running")
        assert sup.brokers[2].pid not in (pid, started)
        assert sup.brokers[2].metrics_port == metrics

        status = await ctl.status()
        assert [b["state"] for b in status["brokers"]] == ["running"] * 3
        with pytest.raises(ClusterControlError, match="no broker 9"):
            await ctl.kill(9)

    run(with_cluster(cluster_dir, body))


def test_add_broker(cluster_dir):
    async def body(sup: Supervisor, port: int) -> None:
        ctl = ClusterControl(cluster_dir)
        message = await ctl.add()
        assert f"127.0.0.1:{port + 3}" in message
        await eventually(lambda: states(cluster_dir).get(4) == "running")
        props = load_properties(str(BrokerPaths.of(cluster_dir, 4).config))
        assert props["listeners"] == f"PLAINTEXT://127.0.0.1:{port + 3}"
        assert props["process.roles"] == "broker"
        assert "4@" not in props["controller.quorum.voters"]
        assert read_cluster_json(cluster_dir)["bootstrap"].endswith(f":{port + 3}")

    run(with_cluster(cluster_dir, body))
    assert states(cluster_dir) == {i: "stopped" for i in range(1, 5)}


def test_sync_control_from_another_thread(cluster_dir):
    async def body(sup: Supervisor, port: int) -> None:
        ctl = ClusterControl(cluster_dir)
        assert await asyncio.to_thread(ctl.is_running)
        status = await asyncio.to_thread(ctl.status_sync)
        assert status["controller_id"] == 1
        assert "paused" in await asyncio.to_thread(ctl.pause_sync, 3)
        assert "resumed" in await asyncio.to_thread(ctl.resume_sync, 3)
        assert await ctl.is_running_async()

    run(with_cluster(cluster_dir, body))
    ctl = ClusterControl(cluster_dir)
    assert not ctl.is_running()
    with pytest.raises(NotRunningError, match="no kaflab serve running"):
        ctl.status_sync()


def test_second_supervisor_refused(cluster_dir):
    async def body(sup: Supervisor, port: int) -> None:
        before = (cluster_dir / "cluster.json").read_text()
        lock_before = (cluster_dir / "serve.lock").read_text()
        other = Supervisor(cluster_dir, brokers=3, port=port, broker_command=fake_command)
        with pytest.raises(AlreadyRunningError, match="already running"):
            await other.start()
        assert (cluster_dir / "serve.lock").read_text() == lock_before
        assert json.loads((cluster_dir / "cluster.json").read_text())["brokers"] == \
            json.loads(before)["brokers"]
        assert await ClusterControl(cluster_dir).is_running_async()

    run(with_cluster(cluster_dir, body))


def test_broker_crash_during_startup_fails_fast(cluster_dir):
    async def main() -> None:
        sup = Supervisor(cluster_dir, brokers=2, port=free_base_port(2),
                         broker_command=fake_command, overrides={"fake.crash": "3"})
        await sup.start()
        try:
            with pytest.raises(StartupError, match="exited with code 3") as info:
                await sup.wait_ready(20)
            assert "crashing on purpose" in str(info.value)
        finally:
            await sup.shutdown()

    run(main())
    assert "crashed" in states(cluster_dir).values()
    assert all(b["pid"] is None for b in read_cluster_json(cluster_dir)["brokers"])


def test_port_in_use_refused(cluster_dir):
    import socket

    port = free_base_port(2)
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", port + 1))
    squatter.listen()
    try:
        sup = Supervisor(cluster_dir, brokers=2, port=port, broker_command=fake_command)
        with pytest.raises(StartupError, match=f"port\\(s\\) {port + 1} already in use"):
            run(sup.start())
    finally:
        squatter.close()
    assert lock_holder(cluster_dir) is None
    assert all(b["pid"] is None for b in read_cluster_json(cluster_dir)["brokers"])


def test_stop_escalates_to_sigkill(cluster_dir):
    async def body(sup: Supervisor, port: int) -> None:
        started = time.monotonic()
        await ClusterControl(cluster_dir).stop(1)
        assert time.monotonic() - started < 5
        entry = read_cluster_json(cluster_dir)["brokers"][0]
        assert entry["state"] == "stopped" and entry["exit_code"] == -signal.SIGKILL

    run(with_cluster(cluster_dir, body, brokers=1, stop_timeout=0.5,
                     overrides={"fake.ignore.sigterm": "true"}))


def test_long_data_dir_path(tmp_path):
    data_dir = tmp_path / ("x" * 60) / ("y" * 60) / "cluster"
    try:
        async def body(sup: Supervisor, port: int) -> None:
            ctl = ClusterControl(data_dir)
            assert (await ctl.status())["controller_id"] == 1
            assert await asyncio.to_thread(ctl.is_running)

        run(with_cluster(data_dir, body, brokers=1))
    finally:
        from tests.unit.cluster.conftest import kill_recorded_pids
        kill_recorded_pids(data_dir)


def test_reattach_to_brokers_of_a_dead_serve(cluster_dir):
    port = free_base_port(2)

    async def first() -> dict[int, int]:
        sup = Supervisor(cluster_dir, brokers=2, port=port, broker_command=fake_command)
        await sup.start()
        await sup.wait_ready(20)
        await sup.pause_broker(2)
        pids = {b.id: b.pid for b in sup.brokers.values()}
        # simulate a serve that died without stopping its brokers
        sup._closing = True
        for task in list(sup._tasks):
            task.cancel()
        await asyncio.gather(*sup._tasks, return_exceptions=True)
        sup._server.close()
        sup._lock.release()
        return pids

    async def second(pids: dict[int, int]) -> None:
        sup = Supervisor(cluster_dir, brokers=2, port=port, broker_command=fake_command,
                         poll_interval=0.2)
        await sup.start()
        try:
            assert {b.id: b.pid for b in sup.brokers.values()} == pids
            assert sup.brokers[2].state == "paused"
            await sup.resume_broker(2)
            await sup.wait_ready(20)
            assert states(cluster_dir) == {1: "running", 2: "running"}
            os.kill(pids[1], signal.SIGKILL)  # not our child: noticed through a pidfd
            await eventually(lambda: states(cluster_dir)[1] == "crashed", within=1.0)
            await sup.start_broker(1)
            assert sup.brokers[1].pid != pids[1]
        finally:
            await sup.shutdown()
        for pid in pids.values():
            assert process_gone(pid)

    pids = run(first())
    run(second(pids))
    assert states(cluster_dir) == {1: "stopped", 2: "stopped"}
