"""Scenario network faults through the serve's own fault proxies (a real 3-broker `serve`,
LocalCluster, ended by PID in the fixture's teardown).

The runner sees ``fault_proxies: true`` in the serve's status and sends its ``latency`` and
``isolate`` faults through ClusterControl.netfault: they show in the serve's status (so in
cluster.json and the console) while the run goes, an acks=all producer and a consumer group
ride out a partitioned leader, and at the end every fault the run applied is cleared, even the
one the scenario itself never cleared. Every acknowledged record is read back.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.admin.browser import Browser
from core.admin.client import AdminClient
from core.cluster.local import LocalCluster, free_base_port
from core.scenarios.model import parse
from core.scenarios.runner import CLIENT_PROXIES, CLUSTER_FAULTS, ScenarioRunner
from tests.fixtures import ROOT, TEST_DEFAULTS

pytestmark = pytest.mark.timeout(240)

CONFIG = dict(TEST_DEFAULTS, **{
    "offsets.topic.replication.factor": "3",
    "replica.lag.time.max.ms": "3000",
    "broker.session.timeout.ms": "6000",
    "broker.heartbeat.interval.ms": "1000",
})

PARTITIONED = """
name: partitioned
seed: 4
duration: 22
topics:
  - {name: sc-part, partitions: 3, replication_factor: 3, configs: {min.insync.replicas: "2"}}
producers:
  - {name: p, topic: sc-part, rate: 30, count: 450, key: "k-{counter}", value: "{orders}",
     acks: all}                 # done at ~15 s: the group has the rest of the run to catch up
consumers:
  - {group: part-g, topic: sc-part, members: 2}
faults:
  - {at: 2, fault: latency, leader: sc-part/1, ms: 80}
  - {at: 4, fault: isolate, leader: sc-part/0}
  - {at: 13, fault: clear, broker: last}
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    root: Path = tmp_path_factory.mktemp("scenario-netfaults")
    local = LocalCluster(root / "c", brokers=3, port=free_base_port(3), config=CONFIG,
                         ready_timeout=120)
    local.start()
    try:
        yield local
    finally:
        local.stop()


def _faults(status: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {int(b["id"]): b["netfault"] for b in status.get("brokers", []) if b.get("netfault")}


async def _read_keys(bootstrap: str, topic: str, partitions: int) -> list[bytes]:
    async with AdminClient(bootstrap) as admin:
        browser = Browser(admin)
        keys: list[bytes] = []
        for p in range(partitions):
            offset = 0
            while True:
                r = await browser.fetch(topic, p, offset, max_records=1000)
                keys.extend(rec.key for rec in r.records)
                if r.next_offset >= r.high_watermark or not r.records:
                    break
                offset = r.next_offset
        return keys


def test_latency_and_isolate_go_through_the_serve(cluster: LocalCluster) -> None:
    control = cluster.control
    assert control.status_sync().get("fault_proxies") is True
    scenario = parse(yaml.safe_load(PARTITIONED))
    events: list[str] = []
    seen: list[dict[int, dict[str, Any]]] = []

    async def go() -> tuple[ScenarioRunner, Any, dict[int, dict[str, Any]]]:
        runner = ScenarioRunner(scenario, cluster.bootstrap, control=control,
                                on_event=lambda e: events.append(e.line()))
        task = asyncio.ensure_future(runner.run())
        while not task.done():  # what the console / cluster.json see during the run
            seen.append(_faults(await control.status()))
            await asyncio.sleep(0.25)
        summary = await task
        return runner, summary, _faults(await control.status())

    runner, summary, after = asyncio.run(go())
    log = "\n".join(events)
    assert runner.fault_mode == CLUSTER_FAULTS
    assert "network faults: through the serve's fault proxies" in log, log
    assert not summary.aborted and not summary.errors, log
    assert len(summary.faults) == 3, log
    modes = {f["mode"] for snapshot in seen for f in snapshot.values()}
    latencies = {f["latency_ms"] for snapshot in seen for f in snapshot.values()}
    assert "isolate" in modes and 80 in latencies, seen
    # the scenario cleared the isolated broker itself; the latency was cleared by the run's end
    assert after == {}, after
    assert "end of run: network fault on broker" in log, log
    # every record acknowledged, every acknowledged record read back (retries may duplicate)
    assert summary.produced["p"] == summary.requested["p"] == 450, log
    assert summary.failed["p"] == 0, log
    keys = asyncio.run(_read_keys(cluster.bootstrap, "sc-part", 3))
    assert set(keys) == {f"k-{i}".encode() for i in range(450)}
    # produced == consumed: the group read everything (re-reads after a rebalance count again)
    assert summary.consumed["part-g"] >= 450 and summary.lag["part-g"] == 0, summary.lines()


def test_faults_are_cleared_when_the_run_is_stopped(cluster: LocalCluster) -> None:
    """Stopped early (Ctrl+C / the console's Stop): the run's faults are still cleared."""
    control = cluster.control
    scenario = parse(yaml.safe_load("""
        name: stopped
        duration: 30
        topics: [{name: sc-stop, partitions: 1, replication_factor: 3}]
        producers: [{name: p, topic: sc-stop, rate: 10}]
        faults:
          - {at: 1, fault: latency, broker: 1, ms: 50}
          - {at: 1.5, fault: isolate, broker: 2}
    """))

    async def go() -> tuple[Any, dict[int, dict[str, Any]], dict[int, dict[str, Any]]]:
        runner = ScenarioRunner(scenario, cluster.bootstrap, control=control, grace_s=5)
        task = asyncio.ensure_future(runner.run())
        during: dict[int, dict[str, Any]] = {}
        for _ in range(60):
            await asyncio.sleep(0.25)
            during = _faults(await control.status())
            if len(during) == 2:
                break
        runner.stop()
        summary = await task
        return summary, during, _faults(await control.status())

    summary, during, after = asyncio.run(go())
    assert summary.stopped
    assert during[1]["latency_ms"] == 50 and during[2]["mode"] == "isolate", during
    assert after == {}


def test_faults_are_cleared_when_the_run_is_cancelled(cluster: LocalCluster) -> None:
    """The task running the scenario is cancelled (the console's loop shutting down)."""
    control = cluster.control
    scenario = parse(yaml.safe_load("""
        name: cancelled
        duration: 30
        faults: [{at: 0.5, fault: blackhole, broker: 3}]
    """))

    async def go() -> tuple[dict[int, dict[str, Any]], dict[int, dict[str, Any]]]:
        runner = ScenarioRunner(scenario, cluster.bootstrap, control=control)
        task = asyncio.ensure_future(runner.run())
        during: dict[int, dict[str, Any]] = {}
        for _ in range(40):
            await asyncio.sleep(0.25)
            during = _faults(await control.status())
            if during:
                break
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return during, _faults(await control.status())

    during, after = asyncio.run(go())
    assert during.get(3, {}).get("mode") == "blackhole", during
    assert after == {}


def test_isolate_is_refused_without_cluster_fault_proxies(cluster: LocalCluster,
                                                          tmp_path: Path) -> None:
    """Attached with --bootstrap only: the scenario's own proxies cannot cut broker-to-broker
    traffic, so the run stops before it starts, saying why; nothing is created."""
    path = tmp_path / "iso.yaml"
    path.write_text(textwrap.dedent("""
        name: iso
        duration: 5
        topics: [{name: sc-iso-refused, partitions: 1}]
        producers: [{topic: sc-iso-refused, rate: 5}]
        faults: [{at: 1, fault: isolate, broker: 1}]
    """))
    result = subprocess.run([sys.executable, str(ROOT / "main.py"), "scenario", "run",
                             str(path), "--bootstrap", cluster.bootstrap],
                            capture_output=True, text=True, timeout=60, cwd=str(ROOT))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "isolate broker 1 needs a kaflab serve with fault proxies" in result.stdout
    assert "created topic" not in result.stdout


def test_client_proxies_mode_without_a_serve(cluster: LocalCluster) -> None:
    """No ClusterControl (any Kafka cluster): latency goes through the run's own proxies and
    the serve never hears of it; the log says which mode is in use."""
    scenario = parse(yaml.safe_load("""
        name: client-side
        duration: 4
        topics: [{name: sc-client-side, partitions: 1, replication_factor: 3}]
        producers: [{name: p, topic: sc-client-side, rate: 20}]
        faults: [{at: 1, fault: latency, broker: 1, ms: 100}]
    """))
    events: list[str] = []

    async def go() -> tuple[ScenarioRunner, Any, list[dict[int, dict[str, Any]]]]:
        runner = ScenarioRunner(scenario, cluster.bootstrap,
                                on_event=lambda e: events.append(e.line()))
        task = asyncio.ensure_future(runner.run())
        seen = []
        while not task.done():
            seen.append(_faults(await cluster.control.status()))
            await asyncio.sleep(0.25)
        return runner, await task, seen

    runner, summary, seen = asyncio.run(go())
    log = "\n".join(events)
    assert runner.fault_mode == CLIENT_PROXIES
    assert "scenario's own client proxies" in log and "(scenario clients only)" in log, log
    assert summary.produced["p"] == 80 and not summary.errors, log
    assert all(s == {} for s in seen), seen
