"""The Supervisor with fault proxies, in-process, with fake broker processes.

Each broker listens on an internal port and advertises P+i-1, where the supervisor's proxy
listens; netfault acts on the proxy; the internal port is stable across restarts, moves when
another program takes it, and a broker left by a dead serve is re-attached behind new proxies.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import pytest

from core.cluster.client import ClusterControl, ClusterControlError
from core.cluster.kafka_probe import probe_api_versions
from core.cluster.layout import BrokerPaths
from core.cluster.local import free_base_port
from core.cluster.state import read_cluster_json
from core.cluster.supervisor import Supervisor
from core.common.config import load_properties
from tests.unit.cluster.conftest import fake_command, process_gone

pytestmark = pytest.mark.timeout(60)


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 50))


async def answers(port: int, timeout: float = 1.0) -> bool:
    return await probe_api_versions("127.0.0.1", port, timeout=timeout)


def test_brokers_behind_their_proxies_and_netfault(cluster_dir: Path) -> None:
    port = free_base_port(3)

    async def body() -> None:
        sup = Supervisor(cluster_dir, brokers=2, port=port, broker_command=fake_command,
                         poll_interval=0.2, fault_proxies=True)
        await sup.start()
        try:
            await sup.wait_ready(20)
            doc = read_cluster_json(cluster_dir)
            assert doc is not None and doc["fault_proxies"] is True
            assert sup.bootstrap_servers() == f"127.0.0.1:{port},127.0.0.1:{port + 1}"
            for entry in doc["brokers"]:
                props = load_properties(str(BrokerPaths.of(cluster_dir, entry["id"]).config))
                public = port + entry["id"] - 1
                assert entry["port"] == public and entry["listen_port"] not in (None, public)
                assert props["listeners"] == f"PLAINTEXT://127.0.0.1:{entry['listen_port']}"
                assert props["advertised.listeners"] == f"PLAINTEXT://127.0.0.1:{public}"
                assert props["controller.quorum.voters"] == \
                    f"1@127.0.0.1:{port},2@127.0.0.1:{port + 1}"
                assert entry["netfault"] is None
                assert await answers(public)  # through the proxy

            control = ClusterControl(cluster_dir)
            assert "broker 2: drop" in await control.netfault(2, "drop")
            assert not await answers(port + 1)
            assert await answers(sup.brokers[2].direct_port)  # the broker itself is fine
            assert await answers(port)
            entry = (await control.status())["brokers"][1]
            assert entry["netfault"] == {"mode": "drop", "latency_ms": 0.0, "text": "drop"}
            assert "cleared" in await control.netfault(2, "clear")
            assert await answers(port + 1)
            # the ctl request as the console sends it, in its own spelling too
            reply = await sup.handle({"cmd": "netfault", "broker": 1, "fault": "latency",
                                      "ms": 150})
            assert reply["ok"] and reply["status"]["brokers"][0]["netfault"]["latency_ms"] == 150
            with pytest.raises(ClusterControlError, match="unknown network fault"):
                await control.netfault(1, "unplug")

            # restarts keep the internal port; a taken one moves, and the proxy follows
            internal = sup.brokers[2].listen_port
            await sup.restart_broker(2)
            assert sup.brokers[2].listen_port == internal
            await sup.stop_broker(2)
            squatter = socket.socket()
            try:
                squatter.bind(("127.0.0.1", internal))
                squatter.listen()
                await sup.start_broker(2)
                moved = sup.brokers[2].listen_port
                assert moved != internal
                assert sup.proxies is not None and sup.proxies[2].upstream[1] == moved
            finally:
                squatter.close()
            deadline = asyncio.get_running_loop().time() + 10
            while not await answers(port + 1):
                assert asyncio.get_running_loop().time() < deadline
                await asyncio.sleep(0.1)
        finally:
            await sup.shutdown()
        doc = read_cluster_json(cluster_dir)
        assert doc is not None and [b["state"] for b in doc["brokers"]] == ["stopped"] * 2

    run(body())


def test_reattach_behind_new_proxies(cluster_dir: Path) -> None:
    port = free_base_port(2)

    async def first() -> tuple[dict[int, int], dict[int, int]]:
        sup = Supervisor(cluster_dir, brokers=2, port=port, broker_command=fake_command,
                         fault_proxies=True)
        await sup.start()
        await sup.wait_ready(20)
        pids = {b.id: b.pid for b in sup.brokers.values()}
        internal = {b.id: b.listen_port for b in sup.brokers.values()}
        # simulate a serve that died without stopping its brokers (its proxies die with it)
        sup._closing = True
        for task in list(sup._tasks):
            task.cancel()
        await asyncio.gather(*sup._tasks, return_exceptions=True)
        assert sup.proxies is not None
        await sup.proxies.close()
        sup._server.close()
        sup._lock.release()
        return pids, internal

    async def second(pids: dict[int, int], internal: dict[int, int]) -> None:
        assert not await answers(port)  # nobody on the public port now
        sup = Supervisor(cluster_dir, brokers=2, port=port, broker_command=fake_command,
                         poll_interval=0.2, fault_proxies=True)
        await sup.start()
        try:
            assert {b.id: b.pid for b in sup.brokers.values()} == pids
            assert {b.id: b.listen_port for b in sup.brokers.values()} == internal
            await sup.wait_ready(20)
            assert await answers(port) and await answers(port + 1)
        finally:
            await sup.shutdown()
        for pid in pids.values():
            assert process_gone(pid)

    pids, internal = run(first())
    run(second(pids, internal))
