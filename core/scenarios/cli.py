"""`python main.py scenario run FILE [--bootstrap B | --data-dir D] [--seed N] [--duration S]`.

Where the cluster comes from:
- ``--bootstrap B``: any Kafka cluster; network faults hit only the scenario's own clients
  (``isolate`` is refused), process faults are skipped (logged) unless ``--data-dir`` also
  names the kaflab serve running it (then network faults go through its fault proxies).
- ``--data-dir D``: the serve running on D (its ctl socket answers), else a new local cluster
  started there with LocalCluster (and stopped at the end).
- neither: a throw-away local cluster in a temporary directory, on free ports.

One line per event on stdout, then the summary; exit 0 when the run completes, 2 on a bad
file, 1 when the cluster cannot be started or reached (setup aborted). A timeline of the run
(snapshots and broker log events) is recorded in D/timeline.sqlite whenever a data dir is
known.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

from core.cluster.client import ClusterControl
from core.cluster.local import LocalCluster, LocalClusterError, free_base_port
from core.scenarios.model import Scenario, ScenarioError, bundled_dir, load
from core.scenarios.runner import ScenarioEvent, ScenarioRunner, ScenarioSummary


def resolve_file(name: str) -> Path:
    """A path, or the name of a bundled scenario (with or without .yaml)."""
    path = Path(name)
    if path.exists():
        return path
    for candidate in (bundled_dir() / name, bundled_dir() / f"{name}.yaml"):
        if candidate.exists():
            return candidate
    return path


def _bootstrap_of(document: dict[str, Any] | None) -> str:
    return ",".join(f"{b.get('host', '127.0.0.1')}:{b['port']}"
                    for b in (document or {}).get("brokers", []) if "port" in b)


def _print(event: ScenarioEvent) -> None:
    print(event.line(), flush=True)


async def run_scenario(scenario: Scenario, bootstrap: str, control: ClusterControl | None,
                       data_dir: Path | None, on_event: Any = _print) -> ScenarioSummary:
    """Run with a timeline recorder alongside when a data dir is known; SIGINT stops early."""
    runner = ScenarioRunner(scenario, bootstrap, control=control, on_event=on_event)
    recorder = None
    if data_dir is not None:
        from core.timeline.recorder import TimelineRecorder

        recorder = TimelineRecorder(data_dir / "timeline.sqlite", bootstrap, data_dir=data_dir)
        previous = runner.on_event

        def both(event: ScenarioEvent) -> None:
            previous(event)
            if event.kind in ("fault", "action", "warning", "setup", "done"):
                recorder.note(f"scenario-{event.kind}", event.text, when=event.wall)

        runner.on_event = both
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGINT, runner.stop)
    task = asyncio.ensure_future(recorder.run()) if recorder is not None else None
    try:
        return await runner.run()
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGINT)
        if recorder is not None and task is not None:
            recorder.stop()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 10)
            await recorder.aclose()


def run(args: argparse.Namespace) -> int:
    """Entry point of `main.py scenario`."""
    if getattr(args, "action", "run") != "run":
        print(f"error: unknown scenario action {args.action!r}", file=sys.stderr)
        return 2
    try:
        scenario = load(resolve_file(args.file)).with_overrides(args.seed, args.duration)
    except ScenarioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    data_dir = Path(args.data_dir).expanduser().absolute() if args.data_dir else None
    cluster: LocalCluster | None = None
    tmp: tempfile.TemporaryDirectory[str] | None = None
    control: ClusterControl | None = None
    bootstrap = args.bootstrap
    try:
        if data_dir is not None:
            control = ClusterControl(data_dir)
            if control.is_running():
                bootstrap = bootstrap or _bootstrap_of(control.read_cluster_json())
                print(f"attached to the serve on {data_dir} ({bootstrap})", flush=True)
            elif bootstrap is None:
                cluster = LocalCluster(data_dir, brokers=scenario.brokers,
                                       port=free_base_port(scenario.brokers))
            else:
                control = None
        elif bootstrap is None:
            tmp = tempfile.TemporaryDirectory(prefix="kaflab-scenario-")
            data_dir = Path(tmp.name)
            control = ClusterControl(data_dir)
            cluster = LocalCluster(data_dir, brokers=scenario.brokers,
                                   port=free_base_port(scenario.brokers))
        if cluster is not None:
            print(f"starting a {scenario.brokers}-broker cluster in {data_dir}", flush=True)
            try:
                cluster.start()
            except LocalClusterError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 1
            bootstrap = cluster.bootstrap
            print(f"cluster ready: {bootstrap}", flush=True)
        assert bootstrap
        summary = asyncio.run(run_scenario(scenario, bootstrap, control, data_dir))
        for line in summary.lines():
            print(line, flush=True)
        if data_dir is not None and tmp is None:
            print(f"timeline: {data_dir / 'timeline.sqlite'}", flush=True)
        return 1 if summary.aborted else 0
    except KeyboardInterrupt:
        return 130
    finally:
        if cluster is not None:
            cluster.stop()
        if tmp is not None:
            tmp.cleanup()
