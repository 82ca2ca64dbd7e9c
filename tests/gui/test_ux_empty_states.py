"""Empty tables say why they are empty (none yet, select something, the filter hides all),
and the Browse page tells the user what to do instead of doing nothing."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor


def _shown(qtbot, console):
    w = console.window
    w.show()
    qtbot.waitExposed(w)
    return w


def _hint(table):
    hint = table.empty_hint
    return hint.text() if hint.isVisibleTo(table) else None


def _ink(widget) -> int:
    """Pixels of the widget far from its most common colour (text drawn on a plain box)."""
    image = widget.grab().toImage()
    counts: dict[int, int] = {}
    for y in range(0, image.height(), 2):
        for x in range(0, image.width(), 2):
            rgb = image.pixel(x, y)
            counts[rgb] = counts.get(rgb, 0) + 1
    bg = QColor(max(counts, key=counts.get))
    ink = 0
    for rgb, n in counts.items():
        c = QColor(rgb)
        if abs(c.red() - bg.red()) + abs(c.green() - bg.green()) + abs(c.blue() - bg.blue()) > 60:
            ink += n
    return ink


def test_topic_filter_that_matches_nothing_says_so(demo_console, qtbot):
    w = _shown(qtbot, demo_console)
    w.show_page(1)
    view = w.topics_view
    assert _hint(view.table) is None  # rows: no hint
    view.filter.setText("zzz-nothing")
    assert view.proxy.rowCount() == 0
    qtbot.waitUntil(lambda: _hint(view.table) is not None)
    assert "zzz-nothing" in _hint(view.table)
    assert _ink(view.table.viewport()) > 20  # the sentence is drawn, not a blank box
    view.filter.clear()
    qtbot.waitUntil(lambda: _hint(view.table) is None)


def test_partitions_table_asks_for_a_topic(demo_console, qtbot):
    w = _shown(qtbot, demo_console)
    w.show_page(1)
    view = w.topics_view
    view.table.clearSelection()
    qtbot.waitUntil(lambda: view.partitions.rowCount() == 0)
    assert "Select a topic" in (_hint(view.partitions_table) or "")
    view.select_topic("orders")
    qtbot.waitUntil(lambda: _hint(view.partitions_table) is None)


def test_group_filter_and_group_details_say_why_they_are_empty(demo_console, qtbot):
    w = _shown(qtbot, demo_console)
    w.show_page(2)
    view = w.groups_view
    view.filter.setText("no-such-group")
    qtbot.waitUntil(lambda: _hint(view.table) is not None)
    assert "no-such-group" in _hint(view.table)
    assert "Select a group" in (_hint(view.offsets_table) or "")


def test_browse_before_reading_says_what_to_do(demo_console, qtbot):
    w = _shown(qtbot, demo_console)
    w.show_page(4)
    view = w.browse_view
    assert "press Read" in (_hint(view.table) or "")
    # the count box says what it counts from the start (it showed a bare "100")
    assert view.start.currentData() == "latest"
    assert view.value.prefix() == "N = "
    assert view.read_button.toolTip()


def test_read_without_a_topic_is_not_silent(demo_console, qtbot):
    w = _shown(qtbot, demo_console)
    w.show_page(4)
    view = w.browse_view
    view.topic.setCurrentText("")
    view.read()
    assert "topic" in view.subtitle.text().lower()


def test_enter_in_the_topic_box_reads(demo_console, qtbot):
    w = _shown(qtbot, demo_console)
    w.show_page(4)
    view = w.browse_view
    view.topic.setCurrentText("orders")
    view.topic.lineEdit().setFocus()
    qtbot.keyClick(view.topic.lineEdit(), Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: view.model.rowCount() > 0, timeout=5000)
    assert _hint(view.table) is None
    view.filter.setText("no-such-value-anywhere")
    qtbot.waitUntil(lambda: _hint(view.table) is not None)
    assert "no-such-value-anywhere" in _hint(view.table)


def test_transactions_tables_say_nothing_is_open(demo_console, qtbot):
    w = _shown(qtbot, demo_console)
    page = next(p for p in w.pages if type(p).__name__ == "TransactionsView")
    w.show_page(w.pages.index(page))
    page.open_table.setRowCount(0)
    page.held_table.setRowCount(0)
    assert "No open transactions" in (_hint(page.open_table) or "")
    assert "held back" in (_hint(page.held_table) or "")


def test_query_result_says_run_first_then_no_rows(demo_console, qtbot):
    from gui.bridge.query import QueryResult

    w = _shown(qtbot, demo_console)
    page = next(p for p in w.pages if type(p).__name__ == "QueryView")
    w.show_page(w.pages.index(page))
    assert "Ctrl+Enter" in (_hint(page.table) or "")
    page._result(QueryResult(sql="SELECT 1 WHERE false", columns=(("x", "INTEGER"),), rows=[]))
    assert "no rows" in (_hint(page.table) or "")


def test_topics_subtitle_says_how_many_rows_are_shown(demo_console, qtbot):
    w = _shown(qtbot, demo_console)
    view = w.topics_view
    total = view.model.rowCount()
    # "9 topics" over 8 rows (internal hidden) read as a missing topic
    assert view.proxy.rowCount() < total
    assert f"{view.proxy.rowCount()} shown" in view.subtitle.text()
    view.hide_internal.setChecked(False)
    assert "shown" not in view.subtitle.text()
    view.filter.setText("orders")
    assert f"{view.proxy.rowCount()} shown" in view.subtitle.text()


def test_logs_table_says_why_no_line_shows(demo_console, qtbot):
    w = _shown(qtbot, demo_console)
    view = w.logs_view
    w.show_page(w.pages.index(view))
    view.set_source(None)
    assert "only available for the local cluster" in (_hint(view.table) or "")
    view.set_source("Following /tmp/x/broker-*/broker.log")
    if view.model.rowCount() == 0:
        assert "No log lines yet" in (_hint(view.table) or "")
    view.append([(1, "INFO", "[2026-01-01 00:00:00,000] INFO broker 1 started")])
    assert _hint(view.table) is None
    view.filter.setText("no-such-line")
    assert "no-such-line" in (_hint(view.table) or "")


def test_before_the_first_snapshot_the_tables_do_not_claim_there_is_nothing(demo_console,
                                                                            qtbot):
    import dataclasses

    from gui.views.groups_view import GroupsView
    from gui.views.topics_view import TopicsView

    topics = TopicsView(demo_console.session)
    groups = GroupsView(demo_console.session)
    for view in (topics, groups):
        qtbot.addWidget(view)
        view.show()
        # "No topics yet. Create one…" while still connecting was wrong
        assert "Waiting" in (_hint(view.table) or "")
    empty = dataclasses.replace(demo_console.session.last_snapshot, topics=(), groups=())
    topics.on_snapshot(empty)
    groups.on_snapshot(empty)
    assert "No topics yet" in (_hint(topics.table) or "")
    assert "No consumer groups yet" in (_hint(groups.table) or "")


def test_cluster_tables_say_what_they_wait_for(demo_console, qtbot):
    from gui.views.cluster_view import ClusterView

    view = ClusterView(demo_console.session)
    qtbot.addWidget(view)
    view.show()
    assert "Waiting" in (_hint(view.table) or "")
    assert "DescribeQuorum" in (_hint(view.quorum_table) or "")
    view.on_snapshot(demo_console.session.last_snapshot)
    assert _hint(view.table) is None
