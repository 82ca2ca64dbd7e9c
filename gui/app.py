"""Entry point of the console: ``run_gui(args)`` (called by main.py)."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication

from gui.bridge.session import Session
from gui.theme import ThemeManager

log = logging.getLogger(__name__)


def make_backend(args: Any) -> Any:
    """The Backend for these arguments: demo (KAFLAB_DEMO=1), attach, or the local cluster."""
    if os.environ.get("KAFLAB_DEMO"):
        from gui.bridge.demo import DemoBackend

        return DemoBackend(supervised=not getattr(args, "attach", None), delay=0.2)
    from gui.bridge.kafka import KafkaBackend

    return KafkaBackend(attach=getattr(args, "attach", None),
                        data_dir=getattr(args, "data_dir", None),
                        brokers=getattr(args, "brokers", 3) or 3,
                        port=getattr(args, "port", 9092) or 9092)


class Console:
    """Wires a Session, the MainWindow, the theme and the log follower together."""

    def __init__(self, app: QApplication, backend: Any, settings: QSettings | None = None,
                 interval: float = 1.0) -> None:
        from gui.views.main_window import MainWindow

        self.app = app
        self.settings = settings or QSettings("kaflab", "console")
        self.theme = ThemeManager(app, str(self.settings.value("theme", "light")))
        self.theme.apply()
        self.session = Session(backend, interval=interval)
        self.window = MainWindow(self.session, self.theme, self.settings)
        self.follower: Any = None
        self._log_timer = QTimer()
        self._log_timer.setInterval(2000)
        self.session.opened.connect(self._on_opened)
        self._closed = False

    def _on_opened(self, caps: Any) -> None:
        if caps.data_dir is None:
            return
        from gui.bridge.logs import LogFollower

        self.follower = LogFollower(caps.data_dir, self.session.bridge.post,
                                    self.window.logs_view.append)
        self.follower.start()
        self._log_timer.timeout.connect(self.follower.poke)
        self._log_timer.start()

    def start(self) -> None:
        self.window.show()
        self.session.open()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._log_timer.stop()
        if self.follower is not None:
            self.follower.stop()
        self.session.close(stop_cluster=not self.window.leave_running)


def _quit_on_signals(app: QApplication) -> None:
    """Ctrl-C / SIGTERM close the window cleanly (stopping a cluster we started)."""
    import signal

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: app.quit())
    timer = QTimer(app)  # lets the interpreter run the Python signal handlers
    timer.timeout.connect(lambda: None)
    timer.start(250)


def run_gui(args: Any) -> int:
    """Open the console; returns the process exit code."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: "
                        "%(message)s")
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("kaflab console")
    app.setOrganizationName("kaflab")
    console = Console(app, make_backend(args))
    app.aboutToQuit.connect(console.close)
    _quit_on_signals(app)
    console.start()
    code = app.exec()
    console.close()
    return code
