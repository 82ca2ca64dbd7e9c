"""The Data page's operations: reassignments, decommission, rolling restart, export, replay,
group offsets, snapshots and topology scripts, run on the session's asyncio loop.

Each method returns the session's QtFuture (its outcome reaches Qt by signal); progress
callbacks are posted to the Qt thread. Results and progress are plain types defined here, so
views never see core objects.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.admin import reassign as ra
from core.admin.client import AdminClient
from core.admin.export import ExportSpec, export
from core.admin.offsets_io import restore_offsets, save_offsets
from core.admin.replay import record_window, replay
from core.admin.snapshot_io import restore_snapshot, save_snapshot
from core.admin.topology_script import collect, python_script, shell_script
from core.cluster.client import ClusterControl

__all__ = ["DataToolError", "DataTools", "MoveRow"]


class DataToolError(Exception):
    """An operation that cannot run here (e.g. needs the kaflab supervisor)."""


@dataclass(frozen=True, slots=True)
class MoveRow:
    """One partition being moved, for the progress table."""

    topic: str
    partition: int
    target: tuple[int, ...]
    replicas: tuple[int, ...]
    adding: tuple[int, ...]
    removing: tuple[int, ...]
    isr: tuple[int, ...]
    leader: int
    done: bool
    fraction: float
    #: ((broker, role, in ISR, bytes behind the leader or None), ...)
    replicas_detail: tuple[tuple[int, str, bool, int | None], ...] = ()


def _rows(moves: list[Any]) -> list[MoveRow]:
    return [MoveRow(m.topic, m.partition, m.target, m.replicas, m.adding, m.removing, m.isr,
                    m.leader, m.done, m.fraction,
                    tuple((r.broker, r.role, r.in_isr, r.lag_bytes)
                          for r in m.replica_states)) for m in moves]


def parse_ids(text: str) -> list[int]:
    """'2, 3' -> [2, 3]; raises ValueError with a readable message."""
    try:
        return [int(x) for x in text.replace(" ", ",").split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"Not a list of broker ids / partitions: {text!r} "
                         "(use numbers separated by commas, e.g. 2,3)") from None


class DataTools:
    """Data operations for one console Session."""

    def __init__(self, session: Any) -> None:
        self.session = session

    # plumbing ---------------------------------------------------------------------------
    @property
    def caps(self) -> Any:
        caps = self.session.capabilities
        if caps is None:
            raise DataToolError("Not connected to a cluster yet.")
        return caps

    @property
    def supervised(self) -> bool:
        caps = self.session.capabilities
        return bool(caps is not None and caps.supervised and caps.data_dir is not None)

    def _control(self) -> ClusterControl:
        if not self.supervised:
            raise DataToolError(
                "This needs the kaflab supervisor (a local cluster started by the console or "
                "by `main.py serve`); an attached external cluster only speaks Kafka.")
        return ClusterControl(self.caps.data_dir, timeout=120.0)

    def _post(self, fn: Callable[..., None] | None) -> Callable[..., None]:
        """A callback usable on the loop thread that runs `fn(*args)` in Qt."""
        if fn is None:
            return lambda *args: None
        return lambda *args: self.session.bridge.post(lambda a: fn(*a), args)

    def _run(self, label: str, op: Callable[[AdminClient], Any], **kw: Any) -> Any:
        async def go() -> Any:
            # the console's brokers-not-to-wait-on (paused ones fail at once, with why)
            shared = getattr(getattr(self.session.backend, "admin", None), "unresponsive", None)
            async with AdminClient(self.caps.bootstrap, client_id="kaflab-data",
                                   request_timeout=15.0, unresponsive=shared) as admin:
                return await op(admin)
        return self.session.run(label, go(), **kw)

    # replicas ---------------------------------------------------------------------------
    def reassign(self, topic: str, partitions: list[int] | None, replicas: list[int],
                 on_progress: Callable[[list[MoveRow]], None] | None = None,
                 **kw: Any) -> Any:
        progress = self._post(on_progress)

        async def op(admin: AdminClient) -> list[MoveRow]:
            parts = partitions if partitions else await admin.partitions_of(topic)
            targets = {(topic, p): replicas for p in parts}
            moves = await ra.reassign(admin, targets, on_progress=lambda m: progress(_rows(m)))
            return _rows(moves)
        return self._run(f"Reassigning {topic}", op, **kw)

    def change_replication_factor(self, topic: str, rf: int,
                                  on_progress: Callable[[list[MoveRow]], None] | None = None,
                                  **kw: Any) -> Any:
        progress = self._post(on_progress)

        async def op(admin: AdminClient) -> list[MoveRow]:
            moves = await ra.change_replication_factor(
                admin, topic, rf, on_progress=lambda m: progress(_rows(m)))
            return _rows(moves)
        return self._run(f"Changing the replication factor of {topic} to {rf}", op, **kw)

    def cancel(self, topic: str, partitions: list[int] | None, **kw: Any) -> Any:
        async def op(admin: AdminClient) -> int:
            ongoing = await admin.list_partition_reassignments()
            tps = [tp for tp in ongoing if tp[0] == topic
                   and (not partitions or tp[1] in partitions)]
            if not tps:
                raise DataToolError(f"No reassignment of {topic} is in progress.")
            await ra.cancel(admin, tps)
            return len(tps)
        return self._run(f"Cancelling the reassignment of {topic}", op, **kw)

    def ongoing(self, **kw: Any) -> Any:
        async def op(admin: AdminClient) -> dict[tuple[str, int], tuple]:
            return await admin.list_partition_reassignments()
        return self._run("Listing reassignments", op, refresh=False, **kw)

    def decommission(self, broker_id: int, stop: bool,
                     on_progress: Callable[[list[MoveRow]], None] | None = None,
                     **kw: Any) -> Any:
        progress = self._post(on_progress)
        control = self._control() if stop else None

        async def op(admin: AdminClient) -> list[MoveRow]:
            moves = await ra.decommission(admin, broker_id, control=control, stop=stop,
                                          on_progress=lambda m: progress(_rows(m)))
            return _rows(moves)
        return self._run(f"Decommissioning broker {broker_id}", op, **kw)

    def rolling_restart(self, on_progress: Callable[[int, int, str], None] | None = None,
                        **kw: Any) -> Any:
        control = self._control()
        progress = self._post(on_progress)

        async def op(admin: AdminClient) -> list[int]:
            return await ra.rolling_restart(admin, control, on_progress=progress)
        return self._run("Rolling restart", op, **kw)

    # messages ---------------------------------------------------------------------------
    def export(self, topic: str, path: str, fmt: str, *, partitions: list[int] | None = None,
               start_offset: int | None = None, end_offset: int | None = None,
               start_ms: int | None = None, end_ms: int | None = None,
               contains: str | None = None,
               on_progress: Callable[[int, int], None] | None = None, **kw: Any) -> Any:
        progress = self._post(on_progress)
        spec = ExportSpec(topic, partitions or None, start_offset, end_offset, start_ms,
                          end_ms, contains or None)

        async def op(admin: AdminClient) -> int:
            return await export(admin, spec, path, fmt, progress=progress)
        return self._run(f"Exporting {topic}", op, refresh=False, **kw)

    def replay(self, topic: str, start_ms: int, end_ms: int, dest: str, speed: float,
               save_to: str | None = None,
               on_progress: Callable[[int, int], None] | None = None, **kw: Any) -> Any:
        progress = self._post(on_progress)

        async def op(admin: AdminClient) -> tuple[int, int, float]:
            window = await record_window(admin, topic, start_ms, end_ms, path=save_to)
            if not window:
                raise DataToolError(f"No record of {topic} in that time window.")
            report = await replay(admin, window, dest, speed=speed, progress=progress)
            return report.sent, report.failed, report.elapsed_s
        return self._run(f"Replaying {topic} into {dest}", op, **kw)

    # offsets, snapshots, scripts --------------------------------------------------------
    def save_offsets(self, group: str, path: str, **kw: Any) -> Any:
        async def op(admin: AdminClient) -> int:
            return len((await save_offsets(admin, group, path))["offsets"])
        return self._run(f"Saving the offsets of {group}", op, refresh=False, **kw)

    def restore_offsets(self, path: str, group: str | None, **kw: Any) -> Any:
        async def op(admin: AdminClient) -> int:
            return len(await restore_offsets(admin, path, group or None))
        return self._run("Restoring group offsets", op, **kw)

    def snapshot_save(self, path: str,
                      on_progress: Callable[[str, float], None] | None = None,
                      **kw: Any) -> Any:
        control = self._control()
        progress = self._post(on_progress)
        return self.session.run("Saving a cluster snapshot", save_snapshot(
            self.caps.data_dir, path, control=control, progress=progress), **kw)

    def snapshot_restore(self, path: str,
                         on_progress: Callable[[str, float], None] | None = None,
                         **kw: Any) -> Any:
        control = self._control()
        progress = self._post(on_progress)
        return self.session.run("Restoring a cluster snapshot", restore_snapshot(
            path, self.caps.data_dir, control=control, progress=progress), **kw)

    def export_scripts(self, directory: str, **kw: Any) -> Any:
        async def op(admin: AdminClient) -> tuple[str, str, int]:
            topics = await collect(admin)
            base = Path(directory)
            base.mkdir(parents=True, exist_ok=True)
            stamp = time.strftime("%Y%m%d-%H%M%S")
            shell = base / f"topics-{stamp}.sh"
            python = base / f"topics-{stamp}.py"
            shell.write_text(shell_script(topics, source=admin.bootstrap))
            python.write_text(python_script(topics, source=admin.bootstrap))
            return str(shell), str(python), len(topics)
        return self._run("Exporting the topology scripts", op, refresh=False, **kw)
