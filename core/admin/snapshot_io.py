"""Whole-cluster data snapshots of a local (supervised) cluster, to keep as test fixtures.

save: pause every broker (SIGSTOP through ClusterControl), copy each broker's data dir,
resume them. Segments are written with os.write and the metadata log is fsynced, so a paused
broker's files hold everything it acknowledged; the copy is what every broker had at one
instant (as after a power cut of the whole cluster, which recovery handles).

restore: stop the brokers (SIGKILL: their data is about to be replaced), replace each data
dir with the snapshot's, start them again and wait until the cluster is healthy. With no
serve running, the data dirs are simply replaced (start `serve` afterwards). The snapshot
must come from a cluster with the same broker ids (and, to restart it as is, the same ports).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.cluster.client import ClusterControl
from core.cluster.layout import BrokerPaths
from core.cluster.lock import lock_holder
from core.cluster.state import read_cluster_json

__all__ = ["SnapshotError", "read_manifest", "restore_snapshot", "save_snapshot"]

MANIFEST = "snapshot.json"
FORMAT = "kaflab-cluster-snapshot/1"
#: (message, fraction 0..1)
StepCallback = Callable[[str, float], None]


class SnapshotError(Exception):
    """The snapshot could not be taken or restored; the message says why."""


def _say(progress: StepCallback | None, message: str, fraction: float) -> None:
    if progress is not None:
        progress(message, fraction)


def read_manifest(snapshot: str | Path) -> dict[str, Any]:
    path = Path(snapshot) / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SnapshotError(f"{snapshot} is not a kaflab cluster snapshot ({exc})") from None
    if manifest.get("format") != FORMAT:
        raise SnapshotError(f"{path}: unknown snapshot format {manifest.get('format')!r}")
    return manifest


def _copy(src: Path, dst: Path) -> None:
    if src.exists():
        shutil.copytree(src, dst, symlinks=True,
                        ignore=shutil.ignore_patterns("*.lock", ".lock"))
    else:
        dst.mkdir(parents=True)


async def save_snapshot(data_dir: str | Path, dest: str | Path, *,
                        control: ClusterControl | None = None,
                        progress: StepCallback | None = None) -> dict[str, Any]:
    """Copy the data of every broker of the serve running on `data_dir` into `dest` (a new
    directory), with every broker paused during the copy. Returns the manifest."""
    data_dir, dest = Path(data_dir).absolute(), Path(dest).absolute()
    control = control or ClusterControl(data_dir)
    if dest.exists() and any(dest.iterdir()):
        raise SnapshotError(f"{dest} already exists and is not empty")
    document = await control.status()
    brokers = document.get("brokers", [])
    if not brokers:
        raise SnapshotError(f"no brokers in the cluster on {data_dir}")
    alive = [int(b["id"]) for b in brokers if b.get("pid")
             and b.get("state") in ("running", "starting")]
    tmp = dest.with_name(dest.name + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    paused: list[int] = []
    started = time.monotonic()
    try:
        _say(progress, f"Pausing {len(alive)} broker(s)…", 0.05)
        for broker_id in alive:
            await control.pause(broker_id)
            paused.append(broker_id)
        for i, b in enumerate(brokers):
            broker_id = int(b["id"])
            _say(progress, f"Copying the data of broker {broker_id}…",
                 0.1 + 0.8 * i / len(brokers))
            await asyncio.to_thread(_copy, BrokerPaths.of(data_dir, broker_id).data,
                                    tmp / f"broker-{broker_id}" / "data")
    finally:
        for broker_id in paused:
            try:
                await control.resume(broker_id)
            except Exception:  # keep resuming the others; report below
                if progress is not None:
                    progress(f"could not resume broker {broker_id}", 0.95)
    paused_s = time.monotonic() - started
    size = sum(f.stat().st_size for f in tmp.rglob("*") if f.is_file())
    manifest = {
        "format": FORMAT, "created_at_ms": int(time.time() * 1000), "source": str(data_dir),
        "brokers": [{"id": int(b["id"]), "host": b.get("host"), "port": b.get("port")}
                    for b in brokers],
        "controller_id": document.get("controller_id"), "bytes": size,
        "paused_seconds": round(paused_s, 3)}
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    if dest.exists():  # an empty directory (checked above)
        dest.rmdir()
    tmp.rename(dest)
    _say(progress, f"Snapshot of {len(brokers)} broker(s) saved to {dest} "
                   f"({size / 1e6:.1f} MB, brokers paused {paused_s:.1f}s)", 1.0)
    return manifest


def _replace(snapshot: Path, data_dir: Path, broker_ids: list[int]) -> None:
    for broker_id in broker_ids:
        target = BrokerPaths.of(data_dir, broker_id).data
        shutil.rmtree(target, ignore_errors=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(snapshot / f"broker-{broker_id}" / "data", target, symlinks=True)


async def restore_snapshot(snapshot: str | Path, data_dir: str | Path, *,
                           control: ClusterControl | None = None, wait: bool = True,
                           timeout: float = 90.0,
                           progress: StepCallback | None = None) -> dict[str, Any]:
    """Replace the cluster's data on `data_dir` with `snapshot` (see the module doc)."""
    snapshot, data_dir = Path(snapshot).absolute(), Path(data_dir).absolute()
    manifest = read_manifest(snapshot)
    ids = sorted(int(b["id"]) for b in manifest["brokers"])
    control = control or ClusterControl(data_dir)
    running = await control.is_running_async()
    if not running and lock_holder(data_dir) is not None:
        raise SnapshotError(f"a serve holds {data_dir} but does not answer; stop it first")
    if not running:
        _say(progress, "No cluster running: replacing the data directories…", 0.3)
        await asyncio.to_thread(_replace, snapshot, data_dir, ids)
        _say(progress, f"Restored {len(ids)} broker(s); start the cluster to use it", 1.0)
        return manifest
    document = await control.status()
    current = sorted(int(b["id"]) for b in document.get("brokers", []))
    if current != ids:
        raise SnapshotError(f"the snapshot has brokers {ids} but the cluster has {current}")
    ports = {int(b["id"]): b.get("port") for b in manifest["brokers"]}
    moved = [i for i in ids for b in document["brokers"]
             if int(b["id"]) == i and ports.get(i) not in (None, b.get("port"))]
    if moved:
        raise SnapshotError(f"broker(s) {moved} listen on other ports than in the snapshot")
    _say(progress, "Stopping every broker…", 0.1)
    for b in document["brokers"]:
        if b.get("pid"):
            await control.kill(int(b["id"]))
    _say(progress, "Replacing the data directories…", 0.3)
    await asyncio.to_thread(_replace, snapshot, data_dir, ids)
    for i, broker_id in enumerate(ids):
        _say(progress, f"Starting broker {broker_id}…", 0.5 + 0.2 * i / len(ids))
        await control.start(broker_id)
    if wait:
        _say(progress, "Waiting for the cluster to be healthy…", 0.8)
        await _wait_healthy(data_dir, timeout)
    _say(progress, f"Cluster restored from {snapshot}", 1.0)
    return manifest


async def _wait_healthy(data_dir: Path, timeout: float) -> None:
    from core.admin.client import AdminClient
    from core.admin.reassign import wait_healthy

    document = read_cluster_json(data_dir) or {}
    bootstrap = ",".join(f"{b.get('host') or '127.0.0.1'}:{b['port']}"
                         for b in document.get("brokers", []) if b.get("port"))
    async with AdminClient(bootstrap, request_timeout=5.0, retries=2) as admin:
        deadline = time.monotonic() + timeout
        expected = len(document.get("brokers", []))
        while time.monotonic() < deadline:
            try:
                md = await admin.metadata()
                if len(md.brokers) >= expected and md.controller_id is not None:
                    break
            except Exception:
                pass
            await asyncio.sleep(0.3)
        await wait_healthy(admin, timeout=max(5.0, deadline - time.monotonic()))
