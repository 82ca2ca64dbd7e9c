"""The console's session: one AsyncBridge, one Backend, and the snapshot poller feeding Qt.

Views talk only to :class:`Session`. Each action returns a :class:`QtFuture` whose
``finished``/``failed`` signals fire in the Qt thread. Snapshots arrive via ``snapshot`` (an
immutable ClusterSnapshot); the poll loop runs on the asyncio thread and never overlaps itself.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from PySide6.QtCore import QObject, Signal

from gui.bridge.backend import Backend, BrowseSpec, Capabilities, ProduceSpec
from gui.bridge.loop import AsyncBridge, QtFuture

log = logging.getLogger(__name__)


class Session(QObject):
    """Connects a Backend to Qt: lifecycle, periodic snapshots, and actions as QtFutures."""

    #: (message, fraction 0..1) while opening (starting or attaching to the cluster)
    progress = Signal(str, float)
    #: Capabilities once the backend is open
    opened = Signal(object)
    #: opening failed: the exception
    open_failed = Signal(object)
    #: a new ClusterSnapshot
    snapshot = Signal(object)
    #: a poll failed (message); polling continues
    poll_error = Signal(str)
    #: an action started / ended (for busy indicators): (label, running)
    busy = Signal(str, bool)

    def __init__(self, backend: Backend, interval: float = 1.0,
                 bridge: AsyncBridge | None = None) -> None:
        super().__init__()
        self.backend = backend
        self.interval = interval
        self.bridge = bridge or AsyncBridge()
        self._own_bridge = bridge is None
        self.capabilities: Capabilities | None = None
        self.last_snapshot: Any = None
        self._wake: asyncio.Event | None = None
        self._poll_future: QtFuture | None = None
        self._closing = False

    # -- lifecycle ------------------------------------------------------------------------

    def open(self) -> QtFuture:
        """Start (or attach to) the cluster without blocking; then poll every ``interval``."""
        def report(message: str, fraction: float) -> None:
            self.bridge.post(lambda a: self.progress.emit(*a), (message, fraction))

        return self.bridge.call(self.backend.open(report), self._on_opened,
                                self.open_failed.emit)

    def _on_opened(self, caps: Capabilities) -> None:
        self.capabilities = caps
        self.opened.emit(caps)
        self.start_polling()

    def start_polling(self) -> None:
        if self._poll_future is None or self._poll_future.done():
            self._poll_future = self.bridge.call(self._poll_loop())

    async def _poll_loop(self) -> None:
        self._wake = asyncio.Event()
        while not self._closing:
            started = time.monotonic()
            try:
                snap = await self.backend.snapshot()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep polling; the status bar shows the error
                log.debug("poll failed", exc_info=True)
                self.bridge.post(self.poll_error.emit, f"{type(exc).__name__}: {exc}")
            else:
                self.bridge.post(self._deliver, snap)
            delay = max(0.05, self.interval - (time.monotonic() - started))
            try:
                await asyncio.wait_for(self._wake.wait(), delay)
            except TimeoutError:
                pass
            self._wake.clear()

    def _deliver(self, snap: Any) -> None:
        self.last_snapshot = snap
        self.snapshot.emit(snap)

    def refresh(self) -> None:
        """Poll now (F5)."""
        if self._wake is not None:
            self.bridge.call_soon(self._wake.set)

    def close(self, stop_cluster: bool = True, timeout: float = 45.0) -> None:
        """Stop polling, close the backend (stopping a cluster we own if asked), stop the loop.

        Called at exit; this is the one place that waits, bounded by ``timeout``.
        """
        if self._closing:
            return
        self._closing = True
        if self._poll_future is not None:
            self._poll_future.cancel()
        if self.bridge.running:
            future = self.bridge.submit(self.backend.close(stop_cluster))
            try:
                future.result(timeout)
            except Exception:
                log.warning("closing the backend failed", exc_info=True)
        if self._own_bridge:
            self.bridge.stop()

    # -- actions --------------------------------------------------------------------------

    def run(self, label: str, coro: Any, on_ok: Any = None, on_err: Any = None,
            refresh: bool = True) -> QtFuture:
        """Run an action coroutine; emit ``busy`` around it and refresh the snapshot after."""
        self.busy.emit(label, True)

        def done(result: Any) -> None:
            self.busy.emit(label, False)
            if refresh:
                self.refresh()
            if on_ok is not None:
                on_ok(result)

        def failed(exc: Any) -> None:
            self.busy.emit(label, False)
            if refresh:
                self.refresh()
            if on_err is not None:
                on_err(exc)

        return self.bridge.call(coro, done, failed)

    def create_topic(self, name: str, partitions: int, rf: int, configs: dict[str, str],
                     **kw: Any) -> QtFuture:
        return self.run(f"Creating topic {name}",
                        self.backend.create_topic(name, partitions, rf, configs), **kw)

    def delete_topic(self, name: str, **kw: Any) -> QtFuture:
        return self.run(f"Deleting topic {name}", self.backend.delete_topic(name), **kw)

    def create_partitions(self, name: str, total: int, **kw: Any) -> QtFuture:
        return self.run(f"Adding partitions to {name}",
                        self.backend.create_partitions(name, total), **kw)

    def describe_topic_configs(self, name: str, **kw: Any) -> QtFuture:
        return self.run(f"Reading configs of {name}", self.backend.describe_topic_configs(name),
                        refresh=False, **kw)

    def alter_topic_configs(self, name: str, set_: dict[str, str], delete: list[str],
                            **kw: Any) -> QtFuture:
        return self.run(f"Updating configs of {name}",
                        self.backend.alter_topic_configs(name, set_, delete), **kw)

    def elect_preferred_leaders(self, topic: str, partitions: list[int] | None = None,
                                **kw: Any) -> QtFuture:
        return self.run(f"Electing preferred leaders of {topic}",
                        self.backend.elect_preferred_leaders(topic, partitions), **kw)

    def delete_group(self, group_id: str, **kw: Any) -> QtFuture:
        return self.run(f"Deleting group {group_id}", self.backend.delete_group(group_id), **kw)

    def reset_offsets(self, group_id: str, topic: str, partitions: list[int] | None, to: str,
                      value: int | None, **kw: Any) -> QtFuture:
        return self.run(f"Resetting offsets of {group_id}",
                        self.backend.reset_offsets(group_id, topic, partitions, to, value), **kw)

    def broker_action(self, action: str, broker_id: int | None, **kw: Any) -> QtFuture:
        label = f"{action} broker {broker_id}" if broker_id is not None else f"{action} broker"
        return self.run(label.capitalize(), self.backend.broker_action(action, broker_id), **kw)

    def produce(self, spec: ProduceSpec, on_progress: Any, **kw: Any) -> QtFuture:
        def progress(done: int, total: int) -> None:
            self.bridge.post(lambda a: on_progress(*a), (done, total))

        return self.run(f"Producing to {spec.topic}", self.backend.produce(spec, progress), **kw)

    def browse(self, spec: BrowseSpec, **kw: Any) -> QtFuture:
        return self.run(f"Reading {spec.topic}", self.backend.browse(spec), refresh=False, **kw)

    def tail(self, topic: str, partition: int | None, positions: dict[int, int] | None,
             **kw: Any) -> QtFuture:
        return self.bridge.call(self.backend.tail(topic, partition, positions),
                                kw.get("on_ok"), kw.get("on_err"))
