"""The Data page in the real console against real broker processes: a reassignment with
progress (RF 1 -> 3 through the widgets), an export to a file, a clear error dialog for a bad
restore, and a screenshot (KAFLAB_SCREENSHOTS=docs/screenshots saves data-light.png there;
otherwise it goes to the test's tmp dir, so a test run leaves docs/ alone). The console starts
its own 3-broker cluster (LocalCluster, free ports) and stops it; LocalCluster.stop (by PID) is
the safety net."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from core.cluster.local import free_base_port
from tests.fixtures import TEST_DEFAULTS

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]
SHOTS = os.environ.get("KAFLAB_SCREENSHOTS", "")


def pump_until(qtbot, predicate, timeout: float = 30.0, what: str = "") -> None:
    try:
        qtbot.waitUntil(lambda: bool(predicate()), timeout=int(timeout * 1000))
    except Exception as exc:
        raise AssertionError(f"timed out after {timeout}s waiting for {what}") from exc


@pytest.fixture(scope="module")
def console(qapp, tmp_path_factory) -> Iterator:
    from gui.app import Console
    from gui.bridge.kafka import KafkaBackend

    root: Path = tmp_path_factory.mktemp("gui-data")
    backend = KafkaBackend(data_dir=root / "cluster", brokers=3, port=free_base_port(3),
                           config=dict(TEST_DEFAULTS))
    settings = QSettings(str(root / "settings.ini"), QSettings.Format.IniFormat)
    c = Console(qapp, backend, settings=settings, interval=0.5)
    c.window.resize(1440, 900)
    c.window.show()  # the tables fit their columns to what is on screen
    c.start()
    try:
        yield c
    finally:
        local = backend.local
        c.close()
        if local is not None:
            local.stop()


def data_page(console):
    from gui.views.pages.data import DataPage
    window = console.window
    index, page = next((i, p) for i, p in enumerate(window.pages) if isinstance(p, DataPage))
    window.show_page(index)
    return page


def test_data_page_reassign_export_errors_and_screenshot(console, qtbot, tmp_path):
    session = console.session
    pump_until(qtbot, lambda: session.last_snapshot is not None
               and len(session.last_snapshot.brokers) == 3, 120, "the cluster")
    page = data_page(console)
    from gui.bridge.backend import ProduceSpec
    done = []
    session.create_topic("payments", 2, 1, {}, on_ok=done.append)
    pump_until(qtbot, lambda: done, 30, "topic creation")
    pump_until(qtbot, lambda: page.re_topic.findText("payments") >= 0, 30, "topic in combo")
    produced = []
    session.produce(ProduceSpec(topic="payments", value='{"amount": {counter}}', count=500),
                    lambda *_: None, on_ok=produced.append)
    pump_until(qtbot, lambda: produced, 30, "produce")

    # replication factor 1 -> 3 through the widgets, with progress rows
    page.re_topic.setCurrentText("payments")
    page.rf_spin.setValue(3)
    page.rf_button.click()
    pump_until(qtbot, lambda: page._running == 0 and page.last_result is not None, 60,
               "the move")
    assert page.move_table.rowCount() == 2
    assert all(page.move_table.item(r, 6).text() == "done" for r in range(2))
    assert page.progress.value() == 1000
    assert "done" in page.status.text()
    pump_until(qtbot, lambda: all(len(p.replicas) == 3 and len(p.isr) == 3 for p in
                                  session.last_snapshot.topic("payments").partitions), 20,
               "RF 3 in the snapshot")

    # export through the widgets
    out = tmp_path / "payments.jsonl"
    page.tabs.setCurrentIndex(2)
    page.ex_topic.setCurrentText("payments")
    page.ex_path.setText(str(out))
    page.last_result = None
    page.ex_button.click()
    pump_until(qtbot, lambda: page.last_result is not None, 30, "the export")
    assert page.last_result == 500
    first = json.loads(out.read_text().splitlines()[0])
    assert first["topic"] == "payments" and first["value"].startswith('{"amount"')

    # a clear error dialog, the window keeps working
    page.tabs.setCurrentIndex(3)
    page.of_path.setText(str(tmp_path / "missing.json"))
    page.of_restore.click()
    pump_until(qtbot, lambda: page.last_error is not None, 20, "the error dialog")
    assert "Restoring offsets failed" in page.last_error.text()
    assert "missing.json" in page.last_error.informativeText()
    page.last_error.close()

    page.re_replicas.setText("two,three")  # bad input: a dialog, nothing sent
    page.tabs.setCurrentIndex(0)
    page.last_error = None
    page.re_button.click()
    assert page.last_error is not None and "Not a list" in page.last_error.informativeText()
    page.last_error.close()

    # screenshot of the page with the finished move
    page.re_replicas.setText("1,2,3")
    page.status.setText("Replication factor change done")
    page.progress.setValue(1000)
    console.theme.apply("light")
    qtbot.wait(600)
    shots = Path(SHOTS) if SHOTS else tmp_path
    shots.mkdir(parents=True, exist_ok=True)
    assert console.window.grab().save(str(shots / "data-light.png"))
