"""GUI test helpers: a Console over the synthetic DemoBackend, closed at teardown."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication


@pytest.fixture
def settings(tmp_path: Path) -> QSettings:
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


def _console(qtbot, settings, supervised: bool) -> Iterator:
    from gui.app import Console
    from gui.bridge.demo import DemoBackend, DemoCluster

    backend = DemoBackend(DemoCluster(), supervised=supervised)
    console = Console(QApplication.instance(), backend, settings=settings, interval=0.05)
    qtbot.addWidget(console.window)
    console.start()
    qtbot.waitUntil(lambda: console.session.last_snapshot is not None, timeout=5000)
    try:
        yield console
    finally:
        console.close()


@pytest.fixture
def demo_console(qtbot, settings) -> Iterator:
    yield from _console(qtbot, settings, supervised=True)


@pytest.fixture
def attached_demo_console(qtbot, settings) -> Iterator:
    yield from _console(qtbot, settings, supervised=False)
