"""Scenarios for the console: list the bundled files, run one on the bridge's asyncio loop.

The run happens on the session's AsyncBridge loop (never in the Qt thread); every runner
event is posted back to Qt as ``event(ScenarioEvent)``, then ``finished(ScenarioSummary)``
or ``failed(message)``. Process faults go to the supervisor when the console owns or is
attached to a kaflab serve (Capabilities.supervised); otherwise they are skipped and logged.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from core.cluster.client import ClusterControl
from core.scenarios.model import Scenario, ScenarioError, bundled, load
from core.scenarios.runner import ScenarioEvent, ScenarioRunner, ScenarioSummary

log = logging.getLogger(__name__)

__all__ = ["ScenarioController", "ScenarioError", "ScenarioEvent", "ScenarioSummary",
           "bundled_files", "read_scenario"]


def bundled_files() -> list[Path]:
    """resources/scenarios/*.yaml (a directory listing; cheap)."""
    return bundled()


def read_scenario(path: Path) -> Scenario:
    """Parse one scenario file (small local file)."""
    return load(path)


class ScenarioController(QObject):
    """Runs at most one scenario at a time for a Session."""

    event = Signal(object)  # ScenarioEvent
    finished = Signal(object)  # ScenarioSummary
    failed = Signal(str)
    running_changed = Signal(bool)

    def __init__(self, session: Any) -> None:
        super().__init__()
        self.session = session
        self.runner: ScenarioRunner | None = None
        self._future: Any = None

    @property
    def running(self) -> bool:
        return self._future is not None and not self._future.done()

    def why_not(self) -> str:
        """Why a run cannot start now ("" when it can)."""
        if self.running:
            return "A scenario is already running."
        caps = getattr(self.session, "capabilities", None)
        if caps is None or not getattr(caps, "bootstrap", ""):
            return "Not connected to a cluster yet."
        return ""

    def run(self, scenario: Scenario) -> bool:
        """Start ``scenario``; False (and ``failed``) when it cannot start."""
        reason = self.why_not()
        if reason:
            self.failed.emit(reason)
            return False
        caps = self.session.capabilities
        control = ClusterControl(caps.data_dir) if caps.supervised and caps.data_dir else None
        bridge = self.session.bridge

        def sink(event: ScenarioEvent) -> None:
            bridge.post(self._on_event, event)

        async def go() -> ScenarioSummary:
            self.runner = ScenarioRunner(scenario, caps.bootstrap, control=control,
                                         on_event=sink)
            return await self.runner.run()

        self.running_changed.emit(True)
        self._future = bridge.call(go(), self._on_done, self._on_failed)
        return True

    def stop(self) -> None:
        """Ask the running scenario to stop (it cleans up and still reports a summary)."""
        if self.runner is not None and self.running:
            self.session.bridge.call_soon(self.runner.stop)

    def _on_event(self, event: ScenarioEvent) -> None:
        try:
            from gui.bridge.timeline import note

            if event.kind in ("fault", "action", "warning", "setup", "done"):
                note(self.session, f"scenario-{event.kind}", event.text, event.wall)
        except Exception:  # the timeline is optional
            log.debug("timeline note failed", exc_info=True)
        self.event.emit(event)

    def _on_done(self, summary: ScenarioSummary) -> None:
        self.runner = None
        self.running_changed.emit(False)
        self.finished.emit(summary)

    def _on_failed(self, exc: BaseException) -> None:
        self.runner = None
        self.running_changed.emit(False)
        self.failed.emit(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
