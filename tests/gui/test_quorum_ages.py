"""The Cluster page's quorum table shows each voter's last fetch and last caught-up time
(DescribeQuorum's KIP-836 timestamps) as ages at the snapshot's time: "Last fetch" and
"Caught up" columns with header tooltips saying what Kafka means by them, sorted as numbers
(not as text: "10 s ago" is older than "4.3 s ago"), and a voter that has not been caught up
for more than LAGGING_AFTER_S while the quorum has a leader in the warning colour. On the
synthetic DemoBackend (a voter that is down keeps its last times, which grow old)."""

from __future__ import annotations

import re

from PySide6.QtCore import Qt

from gui.bridge.demo import DemoCluster
from gui.models import fmt
from gui.models.cluster import LAGGING_AFTER_S, QuorumModel
from gui.models.keyed import SORT_ROLE
from gui.views.common import make_table, sorting_proxy

AGE = re.compile(r"^\d+(\.\d)? s ago$")
FG = Qt.ItemDataRole.ForegroundRole


def _columns(model) -> dict[str, int]:
    return {model.headerData(c, Qt.Orientation.Horizontal): c
            for c in range(model.columnCount())}


def _rows(proxy, cols) -> dict[int, dict[str, object]]:
    """node -> {column title: display text, ...} as the view's proxy shows them."""
    out = {}
    for r in range(proxy.rowCount()):
        node = proxy.index(r, cols["Node"]).data(SORT_ROLE)
        out[node] = {title: proxy.index(r, c).data() for title, c in cols.items()}
    return out


def _color(proxy, row: int, col: int) -> str | None:
    brush = proxy.index(row, col).data(FG)
    return None if brush is None else brush.color().name()


def _row_of(proxy, cols, node: int) -> int:
    return next(r for r in range(proxy.rowCount())
                if proxy.index(r, cols["Node"]).data(SORT_ROLE) == node)


def test_quorum_table_shows_ages_and_highlights_a_lagging_voter(demo_console, qtbot):
    w = demo_console.window
    cv = w.cluster_view
    proxy = cv.quorum_table.model()
    cols = _columns(proxy)
    assert {"Last fetch", "Caught up"} <= cols.keys()
    fetch_tip = proxy.headerData(cols["Last fetch"], Qt.Orientation.Horizontal,
                                 Qt.ItemDataRole.ToolTipRole)
    caught_tip = proxy.headerData(cols["Caught up"], Qt.Orientation.Horizontal,
                                  Qt.ItemDataRole.ToolTipRole)
    assert "fetched from the quorum leader" in fetch_tip
    assert "caught up to the leader's log end offset" in caught_tip
    assert f"{LAGGING_AFTER_S:g} s" in caught_tip

    # every voter alive: each shows two small ages, nothing in the warning colour
    qtbot.waitUntil(lambda: len(_rows(proxy, cols)) == 3, timeout=5000)
    rows = _rows(proxy, cols)
    for node, row in rows.items():
        for title in ("Last fetch", "Caught up"):
            assert AGE.match(row[title]), (node, title, row[title])
            r = _row_of(proxy, cols, node)
            assert proxy.index(r, cols[title]).data(SORT_ROLE) < LAGGING_AFTER_S
        assert _color(proxy, _row_of(proxy, cols, node), cols["Node"]) != fmt.WARN
    leader = demo_console.session.last_snapshot.quorum.leader_id
    assert rows[leader]["Last fetch"] == "0.0 s ago"  # the leader reports itself as now
    assert proxy.index(_row_of(proxy, cols, 1), cols["Last fetch"]).data(
        Qt.ItemDataRole.ToolTipRole).startswith("Last fetched from the leader at ")

    # voter 3 (not the leader) is killed: its times stay, its ages grow, it is lagging
    assert leader != 3
    cv.do_action("kill", 3)

    def lagging() -> bool:
        r = _row_of(proxy, cols, 3)
        return proxy.index(r, cols["Caught up"]).data(SORT_ROLE) > LAGGING_AFTER_S + 2

    qtbot.waitUntil(lagging, timeout=10_000)
    r3 = _row_of(proxy, cols, 3)
    for title in ("Node", "Last fetch", "Caught up"):
        assert _color(proxy, r3, cols[title]) == fmt.WARN, title
    assert "Lagging" in proxy.index(r3, cols["Caught up"]).data(Qt.ItemDataRole.ToolTipRole)
    for node in (1, 2):  # the others stay fresh and uncoloured
        r = _row_of(proxy, cols, node)
        assert _color(proxy, r, cols["Node"]) != fmt.WARN
        assert _color(proxy, r, cols["Caught up"]) != fmt.WARN

    # the view's header sorts the column as numbers: the stale voter first, descending
    cv.quorum_table.sortByColumn(cols["Caught up"], Qt.SortOrder.DescendingOrder)
    assert proxy.index(0, cols["Node"]).data(SORT_ROLE) == 3
    ages = [proxy.index(r, cols["Caught up"]).data(SORT_ROLE) for r in range(3)]
    assert ages == sorted(ages, reverse=True)
    assert all(isinstance(a, float) for a in ages)


def test_ages_sort_as_numbers_not_text(qtbot):
    """Two voters down at different times: 10 s and 4 s ago, which sort the other way as
    text ("4.0 s ago" > "10 s ago")."""
    demo = DemoCluster()
    model = QuorumModel()
    proxy = sorting_proxy(model)
    table = make_table(proxy, "QuorumTableTest")
    qtbot.addWidget(table)

    def tick(n: int) -> None:
        for _ in range(n):
            snap = demo.snapshot()
        model.set_quorum(snap.quorum, snap.taken_at)

    tick(1)
    demo.broker_action("pause", 2)
    tick(6)
    demo.broker_action("pause", 3)
    tick(4)
    cols = _columns(proxy)
    rows = _rows(proxy, cols)
    assert rows[1]["Caught up"] == "0.0 s ago"
    for col in ("Last fetch", "Caught up"):  # as text, 3 ("4.x s ago") would come first
        assert sorted((rows[n][col], n) for n in (1, 2, 3))[-1][1] == 3, rows
    for col in ("Last fetch", "Caught up"):
        table.sortByColumn(cols[col], Qt.SortOrder.DescendingOrder)
        assert [proxy.index(r, cols["Node"]).data(SORT_ROLE) for r in range(3)] == [2, 3, 1]
        table.sortByColumn(cols[col], Qt.SortOrder.AscendingOrder)
        assert [proxy.index(r, cols["Node"]).data(SORT_ROLE) for r in range(3)] == [1, 3, 2]
    # the voter down for 10 s is lagging (the leader, 1, is alive), the one down for 4 s
    # not yet ...
    assert {n for n in (1, 2, 3)
            if _color(proxy, _row_of(proxy, cols, n), cols["Node"]) == fmt.WARN} == {2}

    # ... but with no leader nobody is "lagging behind" it: unknown ages stay plain
    demo.broker_action("kill", 1)
    tick(1)
    assert demo.snapshot(advance=False).quorum.leader_id == -1
    assert all(_color(proxy, r, cols["Node"]) != fmt.WARN for r in range(3))


def test_unknown_times_show_a_dash(qtbot):
    """A voter DescribeQuorum reports -1 for (None in the snapshot) shows the console's dash
    and sorts before every age; no snapshot time, no ages."""
    from gui.bridge.types import QuorumInfo, QuorumVoter

    model = QuorumModel()
    quorum = QuorumInfo(1, 4, 100, (QuorumVoter(1, 100, 0, 1_700_000_000_000, 1_700_000_000_000),
                                    QuorumVoter(2, 90, 10, None, None)))
    model.set_quorum(quorum, 1_700_000_012.0)
    cols = _columns(model)
    assert model.index(0, cols["Last fetch"]).data() == "12 s ago"
    assert model.index(1, cols["Last fetch"]).data() == "\u2013"
    assert model.index(1, cols["Caught up"]).data(SORT_ROLE) == float("-inf")
    model.set_quorum(quorum)
    assert model.index(0, cols["Caught up"]).data() == "\u2013"
