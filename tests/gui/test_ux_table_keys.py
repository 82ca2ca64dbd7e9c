"""Keys on the tables, as in any desktop app: Delete deletes the selected row (after the
same confirmation as the button), Enter opens the selected topic's messages."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox


def _shown(qtbot, console):
    w = console.window
    w.show()
    qtbot.waitExposed(w)
    return w


def test_delete_key_asks_then_deletes_the_selected_topic(demo_console, qtbot, monkeypatch):
    w = _shown(qtbot, demo_console)
    w.show_page(1)
    view = w.topics_view
    asked: list[str] = []

    def answer(_parent, _title, text, *_a, **_k):
        asked.append(text)
        return QMessageBox.StandardButton.Yes

    monkeypatch.setattr(QMessageBox, "warning", answer)
    assert view.select_topic("payments")
    view.table.setFocus()
    qtbot.keyClick(view.table, Qt.Key.Key_Delete)
    assert asked and "payments" in asked[0]
    qtbot.waitUntil(lambda: view.model.row_of("payments") is None, timeout=5000)


def test_enter_on_a_topic_browses_it(demo_console, qtbot):
    w = _shown(qtbot, demo_console)
    w.show_page(1)
    view = w.topics_view
    assert view.select_topic("orders")
    view.table.setFocus()
    qtbot.keyClick(view.table, Qt.Key.Key_Return)
    assert w.stack.currentWidget() is w.browse_view
    assert w.browse_view.topic.currentText() == "orders"


def test_delete_key_on_a_group_asks_only_when_it_can_be_deleted(demo_console, qtbot,
                                                                 monkeypatch):
    w = _shown(qtbot, demo_console)
    w.show_page(2)
    view = w.groups_view
    asked: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning",
                        lambda _p, _t, text, *a, **k: asked.append(text)
                        or QMessageBox.StandardButton.Cancel)
    assert view.select_group("order-service")  # Stable: cannot be deleted
    view.table.setFocus()
    qtbot.keyClick(view.table, Qt.Key.Key_Delete)
    assert asked == []
    assert view.select_group("mailer")  # Empty
    view.table.setFocus()
    qtbot.keyClick(view.table, Qt.Key.Key_Delete)
    assert asked and "mailer" in asked[0]
