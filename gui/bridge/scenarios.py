"""Scenarios for the console: list the bundled files, run one on the bridge's asyncio loop.

The run happens on the session's AsyncBridge loop (never in the Qt thread); every runner
event is posted back to Qt as ``event(ScenarioEvent)``, then ``finished(ScenarioSummary)``
or ``failed(message)``. Process faults go to the supervisor when the console owns or is
attached to a kaflab serve (Capabilities.supervised); otherwise they are skipped and logged.

One controller per Session (:func:`controller_for`), so the Consumer groups page knows which
groups' members are the running scenario's consumers (:meth:`ScenarioController.owns_group`)
and can reset those groups' offsets through it: the runner stops its consumers, waits for the
group to be Empty, resets and restarts them (:meth:`ScenarioController.reset_offsets`).
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from core.cluster.client import ClusterControl
from core.scenarios.model import Scenario, ScenarioError, bundled, load
from core.scenarios.runner import ScenarioEvent, ScenarioRunner, ScenarioSummary

log = logging.getLogger(__name__)

__all__ = ["ScenarioController", "ScenarioError", "ScenarioEvent", "ScenarioSummary",
           "bundled_files", "controller_for", "read_scenario"]

_CONTROLLERS: weakref.WeakKeyDictionary[Any, ScenarioController] = weakref.WeakKeyDictionary()


def controller_for(session: Any) -> ScenarioController:
    """The session's one ScenarioController (created on first use)."""
    try:
        controller = _CONTROLLERS.get(session)
        if controller is None:
            controller = _CONTROLLERS[session] = ScenarioController(session)
    except TypeError:  # a session object that cannot be weakly referenced
        controller = getattr(session, "_scenario_controller", None)
        if controller is None:
            controller = ScenarioController(session)
            session._scenario_controller = controller
    return controller


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
    #: the groups whose consumers the running scenario owns changed (frozenset of group ids)
    owned_changed = Signal(object)

    def __init__(self, session: Any) -> None:
        super().__init__()
        self.session = session
        self.runner: ScenarioRunner | None = None
        self._future: Any = None
        #: read in the Qt thread; replaced (never mutated) when a run starts or ends
        self.owned_groups: frozenset[str] = frozenset()

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
        self._set_owned(frozenset(c.group for c in scenario.consumers))
        self._future = bridge.call(go(), self._on_done, self._on_failed)
        return True

    def _set_owned(self, groups: frozenset[str]) -> None:
        self.owned_groups = groups
        self.owned_changed.emit(groups)

    def owns_group(self, group_id: str) -> bool:
        """True while the running scenario has consumers in ``group_id`` (Qt thread)."""
        return self.running and group_id in self.owned_groups

    def reset_offsets(self, group_id: str, topic: str, partitions: list[int] | None, to: str,
                      value: int | None, on_progress: Callable[[str], None] | None = None,
                      **kw: Any) -> Any:
        """Reset a group of the running scenario: its consumers are stopped, the group awaited
        Empty, the offsets reset, the consumers restarted; members the console does not own
        make it fail (GroupNotInactiveError naming them), changing nothing. Runs on the
        bridge loop as a Session action (busy indicator, refresh); ``on_progress(text)`` and
        ``on_ok({partition: offset})`` / ``on_err(exc)`` are called in the Qt thread."""
        bridge = self.session.bridge

        def progress(text: str) -> None:
            if on_progress is not None:
                bridge.post(on_progress, text)

        async def go() -> dict[int, int]:
            runner = self.runner
            if runner is None or not runner.owns_group(group_id):
                # the run ended meanwhile: the plain (inactive groups only) reset
                return await self.session.backend.reset_offsets(group_id, topic, partitions,
                                                                to, value)
            result = await runner.reset_offsets(group_id, topic, to, value, partitions,
                                                progress=progress)
            return {p: off for (_t, p), off in result.items()}

        return self.session.run(f"Resetting offsets of {group_id}", go(), **kw)

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
        self._set_owned(frozenset())
        self.running_changed.emit(False)
        self.finished.emit(summary)

    def _on_failed(self, exc: BaseException) -> None:
        self.runner = None
        self._set_owned(frozenset())
        self.running_changed.emit(False)
        self.failed.emit(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
