"""Timeline page: its tables sort like the console's others (numbers as numbers) and its
cursor can be seen on the dark theme."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette

from gui.views.pages.timeline import MarkerStrip, _fill, _table


def _distance(a: QColor, b: QColor) -> int:
    return abs(a.red() - b.red()) + abs(a.green() - b.green()) + abs(a.blue() - b.blue())


def test_cursor_is_visible_on_both_themes(demo_console, qtbot):
    theme = demo_console.theme
    try:
        for name in ("light", "dark"):
            theme.apply(name)
            strip = MarkerStrip()
            qtbot.addWidget(strip)
            strip.resize(400, 22)
            strip.set_data((0.0, 10.0), [], 5.0)
            image = strip.grab().toImage()
            cursor = QColor(image.pixel(int(strip._x(5.0)), 11))
            background = strip.palette().color(QPalette.ColorRole.Window)
            # the cursor was #222 on the dark theme's #161a21: invisible
            assert _distance(cursor, background) > 200, (name, cursor.name(), background.name())
    finally:
        theme.apply("light")


def test_tables_sort_numbers_as_numbers_and_say_when_empty(qtbot):
    table = _table("t", ["Topic", "Partition", "High watermark"], numeric=(1, 2),
                   empty="Nothing then.")
    qtbot.addWidget(table)
    assert table.empty_hint.isVisibleTo(table)
    _fill(table, [["a", "10", "1,000"], ["a", "9", "200"], ["b", "2", "none"]])
    assert not table.empty_hint.isVisibleTo(table)
    assert table.isSortingEnabled()
    table.sortByColumn(2, Qt.SortOrder.AscendingOrder)
    assert [table.item(r, 2).text() for r in range(3)] == ["none", "200", "1,000"]
    table.sortByColumn(1, Qt.SortOrder.DescendingOrder)
    assert [table.item(r, 1).text() for r in range(3)] == ["10", "9", "2"]
    assert table.item(0, 1).textAlignment() & Qt.AlignmentFlag.AlignRight
    # a refill keeps the user's sort
    _fill(table, [["a", "1", "5"], ["a", "30", "6"]])
    assert [table.item(r, 1).text() for r in range(2)] == ["30", "1"]


def _luminance(c: QColor) -> float:
    def channel(v: int) -> float:
        x = v / 255
        return x / 12.92 if x <= 0.03928 else ((x + 0.055) / 1.055) ** 2.4
    return 0.2126 * channel(c.red()) + 0.7152 * channel(c.green()) + 0.0722 * channel(c.blue())


def _contrast(a: QColor, b: QColor) -> float:
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_fault_rows_are_readable_on_both_themes():
    from gui.theme import load_tokens
    from gui.views.pages.timeline import ROW_FAULT
    from gui.views.pages.transactions import HANGING

    for name in ("light", "dark"):
        tokens = load_tokens(name)
        for background in (tokens["panel"], tokens["alt"]):
            for colour in (ROW_FAULT, HANGING):
                assert _contrast(colour, QColor(background)) >= 3.3, (name, background)


def test_transactions_numbers_are_right_aligned(qtbot):
    from gui.views.pages.transactions import _fill as fill_txn
    from gui.views.pages.transactions import _Item
    from gui.views.pages.transactions import _table as txn_table

    table = txn_table("t", ["Topic", "Partition", "LSO"], numeric=(1, 2))
    qtbot.addWidget(table)
    fill_txn(table, [[_Item("a"), _Item("3", 3), _Item("1,200", 1200)]])
    assert table.item(0, 1).textAlignment() & Qt.AlignmentFlag.AlignRight
    assert table.horizontalHeaderItem(2).textAlignment() & Qt.AlignmentFlag.AlignRight
    assert not table.item(0, 0).textAlignment() & Qt.AlignmentFlag.AlignRight


def test_long_events_are_elided_not_pushed_off_the_right_edge(qtbot):
    table = _table("events", ["Time", "Source", "Kind", "Event"], stretch_floor=160)
    qtbot.addWidget(table)
    table.resize(540, 300)
    table.show()
    qtbot.waitExposed(table)
    long = "kill the leader of orders-0 (broker 2): broker 2 (pid 6397) exited with -9, " * 3
    _fill(table, [["03:53:30.2", "scenario", "scenario-fault", long]] * 5)
    # the Event column gave way: no horizontal scrolling, and the whole text in a tooltip
    qtbot.waitUntil(lambda: table.horizontalHeader().length() <= table.viewport().width())
    assert table.item(0, 3).toolTip() == long
