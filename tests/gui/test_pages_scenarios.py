"""The Scenarios and Timeline pages: discovered by the main window (demo backend), and driven
against a real 3-broker cluster (LocalCluster, ended by PID at teardown) through a Session.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.cluster.local import LocalCluster, free_base_port
from tests.fixtures import TEST_DEFAULTS

pytestmark = pytest.mark.timeout(180)


def wait(qtbot, predicate, timeout: float, what: str) -> None:
    try:
        qtbot.waitUntil(lambda: bool(predicate()), timeout=int(timeout * 1000))
    except Exception as exc:
        raise AssertionError(f"timed out after {timeout}s waiting for {what}") from exc


def test_pages_are_in_the_sidebar(demo_console):
    titles = demo_console.window.page_titles
    assert "Scenarios" in titles and "Timeline" in titles


@pytest.fixture(scope="module")
def session(qapp, tmp_path_factory) -> Iterator:
    from gui.bridge.kafka import KafkaBackend
    from gui.bridge.session import Session

    root: Path = tmp_path_factory.mktemp("pages-cluster")
    cluster = LocalCluster(root / "cluster", brokers=3, port=free_base_port(3),
                           config=dict(TEST_DEFAULTS, **{"offsets.topic.replication.factor": "3"}))
    cluster.start()
    backend = KafkaBackend(data_dir=cluster.data_dir)
    s = Session(backend, interval=0.5)
    try:
        s.open()
        deadline = time.monotonic() + 60
        while s.capabilities is None and time.monotonic() < deadline:
            qapp.processEvents()
            time.sleep(0.02)
        assert s.capabilities is not None, "session did not open"
        yield s
    finally:
        from gui.bridge.timeline import for_session

        for_session(s).close()
        s.close(stop_cluster=False)
        cluster.stop()


def test_scenarios_page_runs_a_scenario(session, qtbot, tmp_path):
    from gui.views.pages.scenarios import ScenariosView

    view = ScenariosView(session)
    qtbot.addWidget(view)
    names = [view.files.item(i).text() for i in range(view.files.count())]
    assert {"quickstart-lagging-consumer", "failover-drill",
            "rolling-restart-under-load"} <= set(names)
    assert view.select("quickstart-lagging-consumer")
    assert "reports" in view.plan.text() and view.seed.value() == 7
    view.duration.setValue(4)
    summaries = []
    view.controller.finished.connect(summaries.append)
    view.run_button.click()
    assert view.stop_button.isEnabled() and not view.run_button.isEnabled()
    wait(qtbot, lambda: summaries, 60, "the scenario to finish")
    summary = summaries[0]
    assert summary.produced == {"orders-producer": 200}
    assert summary.lag["reports"] > summary.lag["billing"]
    text = view.log.toPlainText()
    assert "created topic orders" in text or "already exists" in text
    assert "produced  orders-producer: 200 of 200" in text
    assert view.run_button.isEnabled() and not view.stop_button.isEnabled()

    # a long run stops on the Stop button
    view.duration.setValue(120)
    summaries.clear()
    view.run_button.click()
    wait(qtbot, lambda: "running" in view.log.toPlainText(), 20, "the run to start")
    view.stop_button.click()
    wait(qtbot, lambda: summaries, 30, "the stopped scenario's summary")
    assert summaries[0].stopped


def test_timeline_page_records_and_scrubs(session, qtbot):
    from gui.bridge.timeline import for_session
    from gui.views.pages.timeline import TimelineView

    view = TimelineView(session)
    qtbot.addWidget(view)
    session.snapshot.connect(view.on_snapshot)
    timeline = for_session(session)
    wait(qtbot, lambda: view.count >= 3, 30, "three recorded snapshots")
    assert timeline.path is not None and timeline.path.name == "timeline.sqlite"
    wait(qtbot, lambda: view.brokers.rowCount() == 3, 15, "the brokers table")
    # an event noted now shows in the events table near the cursor
    timeline.note("scenario-fault", "kill broker 9 (test marker)")
    wait(qtbot, lambda: any(m[1] == "scenario-fault" for m in view.marks), 15,
         "the fault marker")
    # scrub to the start: live turns off, the state shown is the first snapshot's
    view.slider.setValue(0)
    assert not view.live.isChecked()
    wait(qtbot, lambda: "before the newest" in view.when.text(), 10, "the past state")
    assert view.brokers.rowCount() == 3
    view.live.setChecked(True)
    wait(qtbot, lambda: "newest of" in view.when.text(), 10, "live again")
    events = [view.events.item(r, 3).text() for r in range(view.events.rowCount())]
    assert any("test marker" in e for e in events)
