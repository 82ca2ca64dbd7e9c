"""The console against real broker processes: it starts a 3-broker cluster itself (LocalCluster
under a temporary data dir, free ports), and every action goes through its widgets.

The cluster is stopped by the console's own shutdown path (Console.close), and as a safety net
by LocalCluster.stop (by PID) in the fixture's teardown.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from core.cluster.local import free_base_port
from tests.fixtures import TEST_DEFAULTS

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def pump_until(qtbot, predicate, timeout: float = 30.0, what: str = "") -> None:
    try:
        qtbot.waitUntil(lambda: bool(predicate()), timeout=int(timeout * 1000))
    except Exception as exc:  # a clearer message than pytest-qt's
        raise AssertionError(f"timed out after {timeout}s waiting for {what}") from exc


@pytest.fixture(scope="module")
def real_console(qapp, tmp_path_factory) -> Iterator:
    from gui.app import Console
    from gui.bridge.kafka import KafkaBackend

    root: Path = tmp_path_factory.mktemp("gui-cluster")
    port = free_base_port(3)
    backend = KafkaBackend(data_dir=root / "cluster", brokers=3, port=port,
                           config=dict(TEST_DEFAULTS, **{"offsets.topic.replication.factor": "3"}))
    settings = QSettings(str(root / "settings.ini"), QSettings.Format.IniFormat)
    console = Console(qapp, backend, settings=settings, interval=0.5)
    console.start()
    try:
        yield console
    finally:
        local = backend.local
        console.close()
        if local is not None:
            local.stop()


def snap(console):
    return console.session.last_snapshot


def test_launch_starts_cluster_with_progress(real_console, qtbot):
    w = real_console.window
    # progress was shown while the cluster booted and the window stayed responsive
    pump_until(qtbot, lambda: w.caps is not None, 120, "the cluster to start")
    assert w.caps.supervised and w.caps.owns_cluster
    pump_until(qtbot, lambda: snap(real_console) is not None
               and len([b for b in snap(real_console).brokers if b.state in ("running", "online")])
               == 3, 60, "3 running brokers")
    assert w.bootstrap_label.text() == w.caps.bootstrap
    assert w.cluster_view.brokers.rowCount() == 3
    assert snap(real_console).controller_id is not None
    # the metadata quorum table: whichever broker the poll reaches answers for the quorum
    pump_until(qtbot, lambda: w.cluster_view.quorum.rowCount() == 3, 30,
               "the 3 quorum voters in the quorum table")
    assert "leader" in w.cluster_view.quorum_title.text()


def test_create_topic_through_dialog(real_console, qtbot):
    view = real_console.window.topics_view
    dialog = view.create_dialog()
    qtbot.addWidget(dialog)
    dialog.name.setText("gui-orders")
    dialog.partitions.setValue(3)
    dialog.rf.setValue(3)
    assert dialog.ok.isEnabled(), dialog.error.text()
    view.submit_create(dialog)
    pump_until(qtbot, lambda: view.model.row_of("gui-orders") is not None, 30,
               "gui-orders in the topics table")
    topic = view.model.item("gui-orders")
    assert len(topic.partitions) == 3 and topic.replication_factor == 3


def test_produce_1000_records_moves_counts_and_chart(real_console, qtbot):
    w = real_console.window
    view = w.produce_view
    pump_until(qtbot, lambda: view.topic.findText("gui-orders") >= 0, 10, "topic in produce")
    view.set_topic("gui-orders")
    view.key.setPlainText("key-{counter}")
    view.value.setPlainText('{"n": {counter}, "at": {timestamp}}')
    view.count.setValue(1000)
    view.rate.setValue(400)  # ~2.5 s, so several polls see the brokers' counters move
    samples_before = w.charts_view.samples
    view.send()
    pump_until(qtbot, lambda: view.running is None, 60, "produce to finish")
    assert "Delivered 1,000 of 1,000" in view.report.text(), view.report.text()
    assert view.progress.value() == 1000
    def records() -> int:
        item = w.topics_view.model.item("gui-orders")  # None if a poll missed the topic
        return (item.records or 0) if item is not None else 0

    try:
        pump_until(qtbot, lambda: records() >= 1000, 30, "1000 records in the topics table")
    except AssertionError:
        last = snap(real_console)
        t = last.topic("gui-orders")
        offsets = t and [(p.log_start_offset, p.high_watermark) for p in t.partitions]
        raise AssertionError(f"records={records()} partitions={offsets} "
                             f"errors={last.errors}") from None
    assert w.charts_view.samples > samples_before
    series = w.charts_view.topic_msgs.series.get("gui-orders")
    assert series is not None, "no records/s series for gui-orders"
    assert max(series.arrays()[1], default=0) > 0, "records/s never moved"
    browse = w.browse_view
    browse.set_topic("gui-orders")
    browse.start.setCurrentIndex(1)  # earliest
    browse.limit.setValue(2000)
    browse.read()
    pump_until(qtbot, lambda: browse.model.rowCount() == 1000, 30, "1000 browsed records")


def test_consumer_group_lag_falls_to_zero(real_console, qtbot):
    from confluent_kafka import Consumer

    w = real_console.window
    consumer = Consumer({"bootstrap.servers": w.caps.bootstrap, "group.id": "gui-lag-group",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    try:
        consumer.subscribe(["gui-orders"])
        got = []
        deadline = time.monotonic() + 60
        while not got and time.monotonic() < deadline:
            got = [m for m in consumer.consume(num_messages=1, timeout=1.0) if not m.error()]
        assert got, "consumer received nothing"
        consumer.commit(message=got[0], asynchronous=False)
        groups = w.groups_view

        def lag():
            g = groups.model.item("gui-lag-group")
            return None if g is None else g.total_lag

        pump_until(qtbot, lambda: (lag() or 0) > 0, 30, "a positive lag")
        consumed = 1
        deadline = time.monotonic() + 60
        while consumed < 1000 and time.monotonic() < deadline:
            batch = [m for m in consumer.consume(num_messages=500, timeout=1.0) if not m.error()]
            consumed += len(batch)
            qtbot.wait(10)
        consumer.commit(asynchronous=False)
        pump_until(qtbot, lambda: lag() == 0, 30, "the lag to fall to 0")
        assert groups.select_group("gui-lag-group")
        assert groups.offsets.rowCount() >= 1
    finally:
        consumer.close()


def test_kill_leader_changes_leader_and_isr(real_console, qtbot):
    w = real_console.window
    part = snap(real_console).topic("gui-orders").partitions[0]
    leader = part.leader
    assert leader >= 0
    cv = w.cluster_view
    cv.do_action("kill", leader)
    pump_until(qtbot, lambda: cv.brokers.item(leader).state in ("killed", "offline", "crashed"),
               30, f"broker {leader} shown as killed")

    def moved():
        p = snap(real_console).topic("gui-orders").partitions[0]
        return p.leader not in (leader, -1) and leader not in p.isr

    pump_until(qtbot, moved, 60, "partition 0's leader and ISR to drop the killed broker")
    w.topics_view.select_topic("gui-orders")
    status = w.topics_view.partitions.index(0, 11).data()
    assert status in ("under-replicated", "not preferred")
    cv.do_action("start", leader)
    pump_until(qtbot, lambda: cv.brokers.item(leader).state in ("running", "online"), 60,
               f"broker {leader} back")


def test_attach_mode(real_console, qtbot, tmp_path):
    from gui.app import Console
    from gui.bridge.kafka import KafkaBackend

    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    bootstrap = real_console.window.caps.bootstrap.split(",")[0]
    console = Console(real_console.app, KafkaBackend(attach=bootstrap), settings=settings,
                      interval=0.5)
    try:
        console.start()
        w = console.window
        pump_until(qtbot, lambda: console.session.last_snapshot is not None, 30,
                   "a snapshot in attach mode")
        assert not w.caps.supervised
        pump_until(qtbot, lambda: w.topics_view.model.row_of("gui-orders") is not None, 20,
                   "topics in attach mode")
        assert not w.cluster_view.add_button.isEnabled()
        assert "supervisor" in w.cluster_view.add_button.toolTip()
        assert w.logs_view.model.rowCount() == 0
    finally:
        console.close()


def test_reattaches_to_running_cluster(qapp, qtbot, tmp_path):
    """A serve already running on the data dir is re-attached, not started twice, and is left
    running when the console closes."""
    from core.cluster.local import LocalCluster
    from gui.app import Console
    from gui.bridge.kafka import KafkaBackend

    port = free_base_port(3)
    cluster = LocalCluster(tmp_path / "c", brokers=3, port=port, config=TEST_DEFAULTS)
    cluster.start()
    try:
        settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
        console = Console(qapp, KafkaBackend(data_dir=tmp_path / "c", port=port),
                          settings=settings, interval=0.5)
        try:
            console.start()
            pump_until(qtbot, lambda: console.window.caps is not None, 30, "re-attach")
            caps = console.window.caps
            assert caps.supervised and not caps.owns_cluster
            assert set(caps.bootstrap.split(",")) == set(cluster.bootstrap.split(","))
            pump_until(qtbot, lambda: console.session.last_snapshot is not None
                       and len(console.session.last_snapshot.brokers) == 3, 30, "3 brokers")
            assert console.window.cluster_view.buttons["kill"].toolTip()
        finally:
            console.close()
        assert cluster.process is not None and cluster.process.poll() is None  # still running
    finally:
        cluster.stop()
