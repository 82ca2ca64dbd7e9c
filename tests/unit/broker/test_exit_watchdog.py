"""A stopped broker's process exits even if something would keep the interpreter alive."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[3]

# a non-daemon thread that never ends: without the watchdog, the interpreter waits for it
STUCK = """
import threading
from core.broker.cli import exit_if_stuck
threading.Thread(target=threading.Event().wait).start()
exit_if_stuck(0.5)
"""


def test_process_exits_after_the_grace_period_and_says_why() -> None:
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-c", STUCK], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert time.monotonic() - started < 15
    assert "still running" in err and "Thread" in err, err


def test_a_process_that_ends_by_itself_is_not_held_back() -> None:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", "from core.broker.cli import exit_if_stuck\n"
                           "exit_if_stuck(30)"], cwd=ROOT, capture_output=True, text=True,
                          timeout=20)
    assert done.returncode == 0 and "still running" not in done.stderr
    assert time.monotonic() - started < 15  # the watchdog thread is a daemon
