"""Keyboard shortcuts as a user presses them: every page has one, the help and the sidebar
list only keys that work, and Ctrl+Enter acts on the page it was pressed on."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence


def _page(window, cls_name: str):
    return next(p for p in window.pages if type(p).__name__ == cls_name)


def _shown(qtbot, console):
    w = console.window
    w.show()
    qtbot.waitExposed(w)
    return w


def test_every_page_has_a_working_shortcut_and_the_sidebar_and_help_name_it(demo_console,
                                                                           qtbot):
    w = _shown(qtbot, demo_console)
    assert len(w.pages) > 9  # the pages beyond Ctrl+9 once had none (and tooltips said Ctrl+10)
    keys = {a.shortcut().toString(QKeySequence.SequenceFormat.PortableText)
            for a in w.actions() if not a.shortcut().isEmpty()}
    help_text = w.shortcuts_text()
    assert "1…7" not in help_text
    for i, title in enumerate(w.page_titles):
        tip = w.nav.item(i).toolTip()
        assert "(" in tip, f"page {title} has no shortcut"
        key = tip[tip.rindex("(") + 1:-1]
        assert key in keys, f"the sidebar says {key} for {title}, no action has it"
        assert f"{key}\t{title}" in help_text
        w.show_page(0 if i else 1)
        seq = QKeySequence(key)[0]
        qtbot.keyClick(w, seq.key(), seq.keyboardModifiers())
        assert w.stack.currentIndex() == i, f"{key} did not open {title}"


def test_ctrl_enter_runs_the_query_on_the_query_page(demo_console, qtbot):
    w = _shown(qtbot, demo_console)
    query = _page(w, "QueryView")
    runs: list[str] = []
    query.controller.run = lambda sql, live=False: runs.append(sql) or False
    sent: list[int] = []
    w.produce_view.session.produce = lambda *a, **k: sent.append(1)
    w.show_page(w.pages.index(query))
    query.editor.setPlainText("SELECT 1")
    query.editor.setFocus()
    qtbot.keyClick(query.editor, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert runs == ["SELECT 1"]  # was swallowed: ambiguous with the window's Send action
    assert sent == []


def test_ctrl_enter_elsewhere_does_not_produce_behind_the_users_back(demo_console, qtbot):
    w = _shown(qtbot, demo_console)
    sent: list[int] = []
    w.produce_view.spec = lambda: type("S", (), {"topic": "orders", "count": 1})()
    w.produce_view.session.produce = lambda *a, **k: sent.append(1)
    w.show_page(1)
    w.topics_view.table.setFocus()
    qtbot.keyClick(w.topics_view.table, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert sent == []
    assert w.stack.currentIndex() == 1


def test_ctrl_enter_sends_on_the_produce_page(demo_console, qtbot):
    w = _shown(qtbot, demo_console)
    w.show_page(w.pages.index(w.produce_view))
    view = w.produce_view
    view.topic.setCurrentText("orders")
    view.value.setPlainText("hello {counter}")
    view.value.setFocus()
    qtbot.keyClick(view.value, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: "Delivered 1 of 1" in view.report.text(), timeout=5000)
    assert view.value.toPlainText() == "hello {counter}"  # no newline typed


def test_send_from_the_menu_shows_the_produce_page(demo_console, qtbot):
    w = _shown(qtbot, demo_console)
    w.show_page(1)
    w.produce_view.topic.setCurrentText("orders")
    action = w.findChild(type(w.actions()[0]), "produce_send_action")
    action.trigger()
    assert w.stack.currentWidget() is w.produce_view
    qtbot.waitUntil(lambda: "Delivered" in w.produce_view.report.text(), timeout=5000)


def test_ctrl_f_focuses_the_filter_or_says_there_is_none(demo_console, qtbot):
    w = _shown(qtbot, demo_console)
    w.show_page(1)
    qtbot.keyClick(w, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert w.topics_view.filter.hasFocus()
    w.show_page(0)
    qtbot.keyClick(w, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert "no filter" in w.statusBar().currentMessage()
