"""Issue #8 in the console, over the synthetic DemoBackend: network faults and replication
throttles from the broker's row, the row's fault columns, and the chart markers."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QMessageBox

from gui.bridge.backend import ThrottleSpec
from gui.bridge.types import BrokerInfo, fault_label, throttle_label, with_faults
from gui.charts.markers import FAULT, RECOVERY, THROTTLE, broker_changes
from gui.models.cluster import BrokersModel
from gui.views.common import select_key

pytestmark = pytest.mark.timeout(60)


def _broker(demo_console, broker_id: int):
    return demo_console.window.cluster_view.brokers.item(broker_id)


def _cell(view, broker_id: int, column: int) -> str:
    model = view.brokers
    return model.index(model.row_of(broker_id), column).data()


def test_labels_and_with_faults():
    b = BrokerInfo(id=2, host="127.0.0.1", port=9093)
    assert fault_label(b) == "" and throttle_label(b) == ""
    f = with_faults(b, network_mode="isolate", network_latency_ms=200.0,
                    leader_throttle_bps=10_000_000, follower_throttle_bps=2_500_000)
    assert isinstance(f, BrokerInfo) and f.id == 2 and f.port == 9093
    assert fault_label(f) == "isolated, +200 ms"
    assert throttle_label(f) == "leader 10 \u00b7 follower 2.5 MB/s"
    assert fault_label(with_faults(b, network_mode="ok")) == ""
    assert not with_faults(b, network_mode="ok").has_network_fault


def test_broker_changes_names_each_fault():
    b = with_faults(BrokerInfo(id=1, host="h", port=1, state="running"))
    t = 100.0
    assert broker_changes([b], [b], t) == []
    killed = broker_changes([b], [with_faults(BrokerInfo(id=1, host="h", port=1,
                                                         state="killed"))], t)
    assert [(m.label, m.kind) for m in killed] == [("kill b1", FAULT)]
    paused = with_faults(BrokerInfo(id=1, host="h", port=1, state="paused"))
    assert [m.label for m in broker_changes([paused], [b], t)] == ["resume b1"]
    slow = with_faults(BrokerInfo(id=1, host="h", port=1, state="running"),
                       network_latency_ms=250.0)
    assert [(m.label, m.kind) for m in broker_changes([b], [slow], t)] == [("+250ms b1", FAULT)]
    iso = with_faults(BrokerInfo(id=1, host="h", port=1, state="running"),
                      network_mode="isolate")
    assert [m.label for m in broker_changes([b], [iso], t)] == ["isolate b1"]
    assert [(m.label, m.kind) for m in broker_changes([iso], [b], t)] == [("net ok b1",
                                                                          RECOVERY)]
    thr = with_faults(BrokerInfo(id=1, host="h", port=1, state="running"),
                      leader_throttle_bps=5_000_000)
    assert [(m.label, m.kind) for m in broker_changes([b], [thr], t)] == [
        ("throttle b1 5MB/s", THROTTLE)]
    assert [m.label for m in broker_changes([thr], [b], t)] == ["unthrottle b1"]


def test_network_fault_from_row_shows_in_row_and_chart(demo_console, qtbot):
    w = demo_console.window
    cv = w.cluster_view
    w.show_page(0)
    assert select_key(cv.table, "2")
    assert cv.network_button.isEnabled()
    assert not cv.network_actions["clear"].isEnabled()  # nothing to clear yet
    cv.network_fault(2, "latency", 300)
    qtbot.waitUntil(lambda: _broker(demo_console, 2).network_latency_ms == 300, timeout=5000)
    assert _cell(cv, 2, BrokersModel.NETWORK_COLUMN) == "+300 ms"
    # the Network column is shown right after State
    header = cv.table.horizontalHeader()
    assert header.visualIndex(BrokersModel.NETWORK_COLUMN) == 3
    cv.network_fault(2, "isolate")
    qtbot.waitUntil(lambda: _broker(demo_console, 2).network_mode == "isolate", timeout=5000)
    assert _cell(cv, 2, BrokersModel.NETWORK_COLUMN) == "isolated, +300 ms"
    qtbot.waitUntil(lambda: cv.network_actions["clear"].isEnabled(), timeout=5000)
    # an isolated broker's follower replicas leave the ISR (demo model of the fault)
    qtbot.waitUntil(lambda: any(2 in p.replicas and 2 not in p.isr and p.leader != 2
                                for t in demo_console.session.last_snapshot.topics
                                for p in t.partitions), timeout=5000)
    cv.network_fault(2, "clear")
    qtbot.waitUntil(lambda: not _broker(demo_console, 2).has_network_fault, timeout=5000)
    assert _cell(cv, 2, BrokersModel.NETWORK_COLUMN) == ""
    labels = w.charts_view.markers.labels()
    assert "+300ms b2" in labels and "isolate +300ms b2" in labels and "net ok b2" in labels


def test_latency_menu_opens_dialog_and_applies(demo_console, qtbot, monkeypatch):
    from gui.views import cluster_view as module

    cv = demo_console.window.cluster_view
    demo_console.window.show_page(0)
    assert select_key(cv.table, "3")
    seen = {}

    def exec_(dialog):
        seen["title"] = dialog.windowTitle()
        dialog.ms.setValue(750)
        return module.QDialog.DialogCode.Accepted

    monkeypatch.setattr(module.LatencyDialog, "exec", exec_)
    cv.network_actions["latency"].trigger()
    assert seen["title"] == "Add latency — broker 3"
    qtbot.waitUntil(lambda: _broker(demo_console, 3).network_latency_ms == 750, timeout=5000)


def test_shortcuts_are_on_the_actions(demo_console):
    cv = demo_console.window.cluster_view
    shortcuts = {f: a.shortcut().toString() for f, a in cv.network_actions.items()}
    assert shortcuts == {"latency": "Ctrl+Shift+L", "drop": "Ctrl+Shift+D",
                         "isolate": "Ctrl+Shift+I", "blackhole": "Ctrl+Shift+H",
                         "clear": "Ctrl+Shift+C"}
    assert cv.throttle_action.shortcut().toString() == "Ctrl+Shift+R"
    # none of them collides with the window's own shortcuts
    window = {a.shortcut().toString() for a in demo_console.window.actions()}
    assert not window & (set(shortcuts.values()) | {"Ctrl+Shift+R"})


def test_throttle_dialog_apply_and_clear(demo_console, qtbot):
    cv = demo_console.window.cluster_view
    demo_console.window.show_page(0)
    assert select_key(cv.table, "1")
    dialog = cv.throttle_dialog(_broker(demo_console, 1))
    qtbot.addWidget(dialog)
    assert not dialog.ok.isEnabled()  # no rate yet
    assert not dialog.clear_button.isEnabled()  # nothing to clear
    dialog.leader.setValue(10)
    dialog.follower.setValue(2.5)
    assert dialog.ok.isEnabled()
    assert dialog.spec() == ThrottleSpec(10_000_000, 2_500_000, "all")
    dialog.replicas.setCurrentIndex(1)
    assert dialog.spec().replicas == "reassigning"
    cv.set_throttle(1, ThrottleSpec(10_000_000, 2_500_000, "all"))
    qtbot.waitUntil(lambda: _broker(demo_console, 1).leader_throttle_bps == 10_000_000,
                    timeout=5000)
    assert _cell(cv, 1, BrokersModel.THROTTLE_COLUMN) == "leader 10 \u00b7 follower 2.5 MB/s"
    again = cv.throttle_dialog(_broker(demo_console, 1))
    qtbot.addWidget(again)
    assert again.leader.value() == 10 and again.clear_button.isEnabled()
    cv.clear_throttle(1)
    qtbot.waitUntil(lambda: _broker(demo_console, 1).leader_throttle_bps is None, timeout=5000)
    labels = demo_console.window.charts_view.markers.labels()
    assert "throttle b1 10MB/s" in labels and "unthrottle b1" in labels


def test_kill_and_pause_leave_chart_markers(demo_console, qtbot):
    cv = demo_console.window.cluster_view
    charts = demo_console.window.charts_view
    cv.do_action("pause", 3)
    qtbot.waitUntil(lambda: "pause b3" in charts.markers.labels(), timeout=5000)
    cv.do_action("resume", 3)
    qtbot.waitUntil(lambda: "resume b3" in charts.markers.labels(), timeout=5000)
    cv.do_action("kill", 2)
    qtbot.waitUntil(lambda: "kill b2" in charts.markers.labels(), timeout=5000)
    marker, lines = charts.markers.markers[-1]
    assert marker.label == "kill b2"
    assert len(lines) == len(charts.plots)  # one line on every plot
    assert [hasattr(line, "label") for line in lines] == [True, True, False, False]  # top row
    assert all(line in p.item.items for line, p in zip(lines, charts.plots, strict=True))


def test_marker_layer_is_bounded_and_prunes(demo_console):
    from gui.charts.markers import Marker, MarkerLayer

    plots = [p.item for p in demo_console.window.charts_view.plots]
    layer = MarkerLayer(plots, limit=3)
    added = []
    for i in range(5):
        layer.add(Marker(float(i), f"m{i}", FAULT))
        added.append(layer.markers[-1][1])
    assert layer.labels() == ["m2", "m3", "m4"]
    assert not any(line in plots[0].items for line in added[0] + added[1])  # evicted
    layer.prune(3.5)
    assert layer.labels() == ["m4"]
    layer.prune(10)
    assert layer.labels() == []
    assert not any(line in p.items for lines in added for line, p in zip(lines, plots,
                                                                         strict=True))


def test_attached_cluster_greys_out_network_but_not_throttle(attached_demo_console, qtbot):
    cv = attached_demo_console.window.cluster_view
    assert select_key(cv.table, "1")
    assert not cv.network_button.isEnabled()
    assert "supervisor" in cv.network_button.toolTip()
    assert not cv.network_actions["isolate"].isEnabled()
    # throttles are plain Kafka configs: they work on any cluster
    assert cv.throttle_button.isEnabled()


def test_network_error_uses_error_dialog(demo_console, qtbot):
    cv = demo_console.window.cluster_view
    cv.network_fault(99, "drop")  # no such broker

    def box():
        return next((w for w in QApplication.topLevelWidgets()
                     if isinstance(w, QMessageBox) and w.isVisible()), None)

    qtbot.waitUntil(lambda: box() is not None, timeout=5000)
    found = box()
    assert "broker 99" in found.text() and "Unknown broker 99" in found.informativeText()
    found.close()


def test_row_selection_survives_fault_updates(demo_console, qtbot):
    cv = demo_console.window.cluster_view
    assert select_key(cv.table, "2")
    cv.network_fault(2, "blackhole")
    qtbot.waitUntil(lambda: _broker(demo_console, 2).network_mode == "blackhole", timeout=5000)
    assert cv.selected_broker().id == 2
    assert cv.table.model().index(0, 0).data(Qt.ItemDataRole.DisplayRole) is not None


def test_keyboard_shortcut_applies_a_fault(demo_console, qtbot):
    from PySide6.QtTest import QTest

    w = demo_console.window
    cv = w.cluster_view
    w.show_page(0)
    w.activateWindow()
    assert select_key(cv.table, "3")
    cv.table.setFocus()
    qtbot.waitUntil(lambda: cv.table.hasFocus(), timeout=2000)
    QTest.keyClick(cv.table, Qt.Key.Key_D,
                   Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    qtbot.waitUntil(lambda: _broker(demo_console, 3).network_mode == "drop", timeout=5000)
    QTest.keyClick(cv.table, Qt.Key.Key_C,
                   Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    qtbot.waitUntil(lambda: not _broker(demo_console, 3).has_network_fault, timeout=5000)


def test_throttle_button_runs_the_dialog(demo_console, qtbot, monkeypatch):
    from gui.views import cluster_view as module

    cv = demo_console.window.cluster_view
    demo_console.window.show_page(0)
    assert select_key(cv.table, "2")
    choice = {"action": "apply"}

    def exec_(dialog):
        if choice["action"] == "apply":
            dialog.follower.setValue(0.5)
            dialog.ok.click()
        else:
            dialog.clear_button.click()
        return dialog.result()

    monkeypatch.setattr(module.ThrottleDialog, "exec", exec_)
    cv.throttle_button.click()
    qtbot.waitUntil(lambda: _broker(demo_console, 2).follower_throttle_bps == 500_000,
                    timeout=5000)
    assert _broker(demo_console, 2).leader_throttle_bps is None
    assert _cell(cv, 2, BrokersModel.THROTTLE_COLUMN) == "follower 0.5 MB/s"
    choice["action"] = "clear"
    cv.throttle_button.click()
    qtbot.waitUntil(lambda: _broker(demo_console, 2).follower_throttle_bps is None,
                    timeout=5000)


def test_unresponsive_broker_is_a_fault_and_its_return_a_recovery():
    """An attached cluster's broker that stops answering (core.admin: 'unresponsive') gets a
    fault marker like a paused one, and an 'up' marker when it answers again."""
    from core.admin.snapshot import BrokerInfo

    running = BrokerInfo(2, "127.0.0.1", 9093, state="online")
    gone = BrokerInfo(2, "127.0.0.1", 9093, state="unresponsive")
    [down] = broker_changes([running], [gone], 5.0)
    assert (down.label, down.kind) == ("unresponsive b2", FAULT)
    [up] = broker_changes([gone], [running], 9.0)
    assert (up.label, up.kind) == ("up b2", RECOVERY)
