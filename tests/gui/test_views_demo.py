"""The console's views driven through the synthetic DemoBackend (no broker processes)."""

from __future__ import annotations

import ast
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from gui.views.common import select_key

GUI = Path(__file__).resolve().parents[2] / "gui"


def test_only_bridge_imports_core():
    """Inside gui/, only gui/bridge may import core (the team's dependency rule)."""
    offenders = []
    for path in GUI.rglob("*.py"):
        if "bridge" in path.relative_to(GUI).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            mods = []
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                mods = [node.module]
            offenders += [f"{path}: {m}" for m in mods if m == "core" or m.startswith("core.")]
    assert offenders == []


def test_snapshot_fills_views_and_status_bar(demo_console, qtbot):
    w = demo_console.window
    assert w.cluster_view.brokers.rowCount() == 3
    assert w.topics_view.model.rowCount() >= 8
    assert w.groups_view.model.rowCount() == 4
    assert w.caps.bootstrap in w.bootstrap_label.text()
    w.copy_bootstrap()
    assert QApplication.clipboard().text() == w.caps.bootstrap
    assert not w.banner.isVisible()


def test_create_topic_through_dialog(demo_console, qtbot):
    view = demo_console.window.topics_view
    dialog = view.create_dialog()
    qtbot.addWidget(dialog)
    assert not dialog.ok.isEnabled()
    dialog.name.setText("bad name!")
    assert not dialog.ok.isEnabled()
    assert "illegal" in dialog.error.text()
    dialog.name.setText("orders")  # exists
    assert "already exists" in dialog.error.text()
    dialog.name.setText("new.topic_1")
    dialog.partitions.setValue(4)
    dialog.config_widgets["retention.ms"].setText("-5")
    assert "at least -1" in dialog.error.text()
    dialog.config_widgets["retention.ms"].setText("3600000")
    assert dialog.ok.isEnabled()
    view.submit_create(dialog)
    qtbot.waitUntil(lambda: view.model.row_of("new.topic_1") is not None, timeout=5000)
    created = view.model.item("new.topic_1")
    assert len(created.partitions) == 4
    assert created.config_dict["retention.ms"] == "3600000"
    qtbot.waitUntil(lambda: view.current_topic() == "new.topic_1", timeout=5000)
    assert view.partitions.rowCount() == 4


def test_kill_leader_moves_leadership(demo_console, qtbot):
    w = demo_console.window
    cv = w.cluster_view
    assert select_key(cv.table, "1")
    assert cv.buttons["kill"].isEnabled()
    cv.do_action("kill", 1)
    qtbot.waitUntil(lambda: cv.brokers.item(1).state == "killed", timeout=5000)
    assert not cv.buttons["kill"].isEnabled()  # killed: only start/restart make sense
    assert cv.buttons["start"].isEnabled()
    snap = demo_console.session.last_snapshot
    assert all(p.leader != 1 for p in snap.partitions())
    assert any(1 not in p.isr for p in snap.partitions() if 1 in p.replicas)


def test_attach_mode_greys_out_supervisor_actions(attached_demo_console, qtbot):
    cv = attached_demo_console.window.cluster_view
    select_key(cv.table, "1")
    for b in (*cv.buttons.values(), cv.add_button):
        assert not b.isEnabled()
        assert "supervisor" in b.toolTip()
    assert "attached" in attached_demo_console.window.mode_label.text()


def test_produce_panel_reports_delivery(demo_console, qtbot):
    view = demo_console.window.produce_view
    view.set_topic("orders")
    view.value.setPlainText('{"n": {counter}}')
    view.count.setValue(1000)
    view.send()
    qtbot.waitUntil(lambda: view.running is None, timeout=10000)
    assert view.progress.value() == 1000
    assert "Delivered 1,000 of 1,000" in view.report.text()


def test_browse_reads_and_filters(demo_console, qtbot):
    view = demo_console.window.browse_view
    view.set_topic("orders")
    view.read()
    qtbot.waitUntil(lambda: view.model.rowCount() > 0, timeout=5000)
    view.filter.setText("customer-7")
    assert 0 < view.proxy.rowCount() < view.model.rowCount()
    view.table.selectRow(0)
    assert "── value ──" in view.detail.toPlainText()


def test_filter_shortcut_and_pages(demo_console, qtbot):
    w = demo_console.window
    w.show_page(1)
    w.focus_filter()
    assert QApplication.focusWidget() in (w.topics_view.filter, None)
    w.topics_view.filter.setText("pay")
    assert w.topics_view.proxy.rowCount() == 1


def test_layout_is_remembered(demo_console, qtbot, settings):
    w = demo_console.window
    w.show_page(2)
    w.topics_view.table.sortByColumn(1, Qt.SortOrder.DescendingOrder)
    w.save_layout()
    assert int(settings.value("window/page")) == 2
    assert settings.value("headers.v2/topics") is not None


def test_theme_toggle(demo_console):
    theme = demo_console.theme
    before = theme.name
    demo_console.window.toggle_theme()
    assert theme.name != before
    assert theme.tokens["window"] in QApplication.instance().styleSheet()
