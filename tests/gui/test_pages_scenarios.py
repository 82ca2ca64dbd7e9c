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


# -- reset offsets of a group whose members are the running scenario's consumers ------------

RESET_SCENARIO = {
    "name": "gui-reset", "seed": 2, "duration": 120,
    "topics": [{"name": "gq", "partitions": 2, "replication_factor": 3}],
    "producers": [{"name": "p", "topic": "gq", "rate": 200, "count": 100, "key": "k-{counter}"}],
    "consumers": [{"group": "gq-g", "topic": "gq", "members": 2, "processing_ms": 20}],
}


def _committed(bootstrap: str) -> dict[int, int]:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "gq-g",
                         "enable.auto.commit": False})
    try:
        found = consumer.committed([TopicPartition("gq", p) for p in (0, 1)], timeout=10)
        return {tp.partition: tp.offset for tp in found}
    finally:
        consumer.close()


def test_groups_view_resets_a_running_scenarios_group(session, qtbot):
    """Reset offsets from the Consumer groups page while the scenario's consumers run: they
    are stopped, the offsets rewound (a real client's committed()), and they run again; with
    a foreign (confluent-kafka) member in the group: Kafka's error naming it, nothing changed."""
    from confluent_kafka import Consumer
    from PySide6.QtCore import QTimer

    from core.scenarios.model import parse
    from gui.bridge.scenarios import controller_for
    from gui.views.groups_view import GroupsView

    bootstrap = session.capabilities.bootstrap
    view = GroupsView(session)
    qtbot.addWidget(view)
    session.snapshot.connect(view.on_snapshot)
    controller = controller_for(session)
    summaries: list = []
    controller.finished.connect(summaries.append)
    events: list = []
    controller.event.connect(lambda e: events.append(e.line()))
    assert controller.run(parse(RESET_SCENARIO))
    foreign = None
    try:
        def group():
            return view.model.item("gq-g") if view.model.row_of("gq-g") is not None else None

        def caught_up() -> bool:
            g = group()
            return (g is not None and g.state == "Stable" and len(g.members) == 2
                    and sum(o.committed for o in g.offsets) == 100)

        try:
            wait(qtbot, caught_up, 60, "2 Stable members having committed all 100 records")
        except AssertionError:
            g = group()
            raise AssertionError(f"group: {g}; events: {events[-20:]}") from None
        assert view.select_group("gq-g")
        assert view.reset_button.isEnabled()  # Stable, but every member is the console's
        assert "running scenario's consumers" in view.reset_button.toolTip()
        consumed = controller.runner.consumed_counts()["gq-g"]
        assert consumed >= 100

        # through the button and its dialog (topic gq, earliest, all partitions)
        notes: list[str] = []

        def accept_dialog() -> None:
            from PySide6.QtWidgets import QApplication, QLabel

            dialog = QApplication.activeModalWidget()
            notes.extend(label.text() for label in dialog.findChildren(QLabel, "Muted"))
            chosen.append(dialog.values())
            dialog.accept()

        chosen: list = []
        QTimer.singleShot(300, accept_dialog)
        view.reset_button.click()
        assert chosen == [("gq", None, "earliest", None)], chosen
        assert notes and "running scenario's consumers" in notes[0], notes
        wait(qtbot, lambda: view.last_reset is not None, 60, "the reset")
        assert view.last_reset == {0: 0, 1: 0}, view.last_reset
        assert sum(_committed(bootstrap).values()) < 100  # rewound (re-reading takes ~1 s)
        assert "reset to earliest" in view.reset_status.text()
        # the consumers run again: members back, everything re-read and committed
        reset_at = time.time()
        wait(qtbot, lambda: controller.runner.consumed_counts()["gq-g"] >= consumed + 100
             and view.snapshot.taken_at > reset_at + 0.5 and caught_up(), 60,
             "the restarted members to re-read everything")
        assert controller.running

        # a member the console does not own: refused with Kafka's message, nothing changed
        foreign = Consumer({"bootstrap.servers": bootstrap, "group.id": "gq-g",
                            "client.id": "foreign-consumer", "auto.offset.reset": "earliest",
                            "enable.auto.commit": False})
        foreign.subscribe(["gq"])
        wait(qtbot, lambda: (foreign.poll(0.1), group() is not None
                             and len(group().members) == 3 and group().state == "Stable")[1],
             60, "the foreign member in a Stable group of 3")
        before = _committed(bootstrap)
        assert sum(before.values()) == 100, before
        assert view.reset_button.isEnabled()
        view.reset_group_offsets("gq-g", "gq", None, "earliest", None)
        wait(qtbot, lambda: (foreign.poll(0.05), view.last_reset is not None)[1], 60,
             "the refused reset")
        error = str(view.last_reset)
        assert isinstance(view.last_reset, Exception), error
        assert ("Assignments can only be reset if the group 'gq-g' is inactive, but the "
                "current state is Stable.") in error
        assert "foreign-consumer" in error and "kaflab-scenario" not in error
        assert _committed(bootstrap) == before
        g = group()
        assert g is not None and len(g.members) == 3  # our consumers were not stopped

        # the scenario ends: only the foreign member is left, the button greys out and the
        # plain reset (KafkaBackend) refuses with the same message
        controller.stop()
        wait(qtbot, lambda: (foreign.poll(0.05), bool(summaries))[1], 60, "the run's end")
        ended_at = time.time()
        wait(qtbot, lambda: (foreign.poll(0.05), view.snapshot.taken_at > ended_at
                             and group() is not None and len(group().members) == 1
                             and group().state == "Stable")[1],
             60, "the foreign member alone")
        view._refresh_detail()
        assert not view.reset_button.isEnabled()
        view.reset_group_offsets("gq-g", "gq", None, "latest", None)
        wait(qtbot, lambda: (foreign.poll(0.05), view.last_reset is not None)[1], 30,
             "the plain reset's refusal")
        assert "is inactive, but the current state is Stable" in str(view.last_reset)
        assert _committed(bootstrap) == before
    finally:
        if foreign is not None:
            foreign.close()
        if controller.running:
            controller.stop()
            wait(qtbot, lambda: bool(summaries), 60, "the run's end")
