"""The console's tables at the default window size (MainWindow's own 1360x860): every shown
header section is wide enough for its label (the sorted one also for its sort arrow), the
Brokers table fits without a horizontal scroll bar (also with faults shown, at the 1440x900
of the screenshots), a header click still sorts, tooltips carry the full header text, and
the header's menu shows hidden columns. The demo backend feeds the window (no cluster).

The label's needs are measured here from resources/themes/base.qss (the section's font
weight, horizontal padding and right border), not from the code under test.
"""

from __future__ import annotations

import re
from pathlib import Path

from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QFont, QFontMetrics

from gui.bridge.backend import ThrottleSpec
from gui.models.cluster import BrokersModel

QSS = Path(__file__).resolve().parents[2] / "resources" / "themes" / "base.qss"
ARROW = 8  # the sort arrow must not overlap the label: at least this much more room


def _section_style() -> tuple[int, int, int]:
    """(font weight, horizontal padding, right border) of QHeaderView::section."""
    body = re.search(r"QHeaderView::section\s*\{([^}]*)\}", QSS.read_text()).group(1)
    weight = re.search(r"font-weight:\s*(\d+)", body)
    padding = re.search(r"padding:\s*\d+px\s+(\d+)px", body)
    border = re.search(r"border-right:\s*(\d+)px", body)
    return (int(weight.group(1)) if weight else 400, int(padding.group(1)) if padding else 0,
            int(border.group(1)) if border else 0)


def needed(header, logical: int) -> int:
    """Pixels the section needs to show its whole label (and the arrow when sorted)."""
    weight, padding, border = _section_style()
    font = QFont(header.font())
    font.setWeight(QFont.Weight(weight))
    text = header.model().headerData(logical, Qt.Orientation.Horizontal)
    need = QFontMetrics(font).horizontalAdvance(text) + 2 * padding + border
    if header.sortIndicatorSection() == logical:
        need += ARROW
    return need


def too_narrow(table) -> list[str]:
    header = table.horizontalHeader()
    model = header.model()
    return [f"{table.objectName()}: {model.headerData(i, Qt.Orientation.Horizontal)!r} is "
            f"{header.sectionSize(i)} px, needs {needed(header, i)}"
            for i in range(header.count())
            if not header.isSectionHidden(i) and header.sectionSize(i) < needed(header, i)]


def shown(qtbot, console):
    """The window at its default size, on screen (offscreen platform), with data."""
    w = console.window
    w.show()
    qtbot.waitExposed(w)
    w.topics_view.select_topic("orders")
    w.groups_view.select_group("order-service")
    return w


def visit(qtbot, w, page: int) -> None:
    w.show_page(page)
    qtbot.wait(300)  # a few snapshots; the headers fit after each


def test_every_header_section_fits_its_label_at_the_default_size(demo_console, qtbot):
    w = shown(qtbot, demo_console)
    assert (w.width(), w.height()) == (1360, 860)
    problems = []
    for page, tables in ((0, (w.cluster_view.table, w.cluster_view.quorum_table)),
                         (1, (w.topics_view.table, w.topics_view.partitions_table)),
                         (2, (w.groups_view.table, w.groups_view.offsets_table))):
        visit(qtbot, w, page)
        for table in tables:
            assert table.model().rowCount() > 0, table.objectName()
            problems += too_narrow(table)
    assert not problems, "\n".join(problems)


def test_brokers_table_fits_the_window_without_scrolling(demo_console, qtbot):
    w = shown(qtbot, demo_console)
    visit(qtbot, w, 0)
    table = w.cluster_view.table
    header = table.horizontalHeader()
    assert header.length() <= table.viewport().width()
    assert table.horizontalScrollBar().maximum() == 0
    # the fault columns show up with a fault, and still fit at the screenshots' size
    w.resize(1440, 900)
    cv = w.cluster_view
    assert header.isSectionHidden(BrokersModel.NETWORK_COLUMN)
    cv.network_fault(2, "latency", 200)
    cv.set_throttle(1, ThrottleSpec(10_000_000, 10_000_000, "all"))
    qtbot.waitUntil(lambda: not header.isSectionHidden(BrokersModel.NETWORK_COLUMN)
                    and not header.isSectionHidden(BrokersModel.THROTTLE_COLUMN), timeout=5000)
    qtbot.wait(300)
    assert not too_narrow(table), too_narrow(table)
    assert header.length() <= table.viewport().width()
    assert table.horizontalScrollBar().maximum() == 0
    throttle = table.model().index(0, BrokersModel.THROTTLE_COLUMN)
    assert header.sectionSize(BrokersModel.THROTTLE_COLUMN) >= table.sizeHintForColumn(
        BrokersModel.THROTTLE_COLUMN), throttle.data()


def test_header_click_sorts_and_the_sorted_section_keeps_room(demo_console, qtbot):
    w = shown(qtbot, demo_console)
    visit(qtbot, w, 1)
    table = w.topics_view.partitions_table
    header = table.horizontalHeader()
    leader = 1
    x = header.sectionViewportPosition(leader) + header.sectionSize(leader) // 2
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton,
                     pos=QPoint(x, header.height() // 2))
    assert header.sortIndicatorSection() == leader
    assert table.model().sortColumn() == leader
    qtbot.wait(200)
    assert not too_narrow(table), too_narrow(table)
    values = [table.model().index(r, leader).data() for r in range(table.model().rowCount())]
    assert values == sorted(values, key=int)
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton,
                     pos=QPoint(x, header.height() // 2))
    assert header.sortIndicatorOrder() == Qt.SortOrder.DescendingOrder
    values = [table.model().index(r, leader).data() for r in range(table.model().rowCount())]
    assert values == sorted(values, key=int, reverse=True)
    # filtering is unchanged: the topics filter still narrows the topics table
    w.topics_view.filter.setText("pay")
    assert w.topics_view.proxy.rowCount() == 1


def test_header_tooltips_carry_the_full_label(demo_console):
    model = demo_console.window.cluster_view.table.model()
    for col, column in enumerate(BrokersModel.columns):
        tip = model.headerData(col, Qt.Orientation.Horizontal, Qt.ItemDataRole.ToolTipRole)
        assert tip and tip.startswith(column.title), (column.title, tip)
    tip = demo_console.window.topics_view.table.model().headerData(
        2, Qt.Orientation.Horizontal, Qt.ItemDataRole.ToolTipRole)
    assert tip == "RF: Replication factor"


def test_hidden_columns_come_back_from_the_header_menu(demo_console, qtbot, settings):
    w = shown(qtbot, demo_console)
    visit(qtbot, w, 0)
    table = w.cluster_view.table
    header = table.horizontalHeader()
    rack = 4
    assert header.isSectionHidden(rack)
    menu = header.columns_menu()
    action = next(a for a in menu.actions() if a.text() == "Rack")
    assert action.isCheckable() and not action.isChecked()
    action.trigger()
    qtbot.wait(200)
    assert not header.isSectionHidden(rack)
    assert not too_narrow(table), too_narrow(table)
    # the choice survives a restart of the window's layout
    w.save_layout()
    header.setSectionHidden(rack, True)
    w.restore_layout()
    assert not header.isSectionHidden(rack)
    assert rack in header.chosen_sections()


def test_messages_table_gives_way_to_the_detail_pane(demo_console, qtbot):
    """Long values shrink (elided; the detail pane shows them whole), nothing scrolls."""
    w = shown(qtbot, demo_console)
    browse = w.browse_view
    browse.set_topic("orders")
    browse.read()
    visit(qtbot, w, 4)
    qtbot.waitUntil(lambda: browse.table.model().rowCount() > 0, timeout=5000)
    qtbot.wait(300)
    table = browse.table
    assert not too_narrow(table), too_narrow(table)
    assert table.horizontalHeader().length() <= table.viewport().width()
