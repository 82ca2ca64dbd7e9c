"""Table models fed with synthetic snapshots: diffing, sorting, filtering, selection."""

from __future__ import annotations

import dataclasses

import pytest
from PySide6.QtCore import QItemSelectionModel, Qt

from gui.bridge.demo import DemoCluster
from gui.bridge.types import GroupInfo, PartitionInfo, TopicInfo
from gui.models.cluster import BrokersModel, QuorumModel
from gui.models.groups import GroupsModel, OffsetsModel
from gui.models.keyed import ITEM_ROLE, SORT_ROLE
from gui.models.logs import LogFilterProxy, LogModel
from gui.models.messages import MessageFilterProxy, MessagesModel, as_hex, render
from gui.models.topics import PartitionsModel, TopicFilterProxy, TopicsModel, partition_status
from gui.views.common import sorting_proxy


def topic(name: str, partitions: int = 3, internal: bool = False, rate: float = 0.0,
          isr_short: bool = False) -> TopicInfo:
    parts = tuple(PartitionInfo(topic=name, partition=p, leader=1, replicas=(1, 2, 3),
                                isr=(1, 2) if isr_short else (1, 2, 3),
                                log_start_offset=0, log_end_offset=10 * p, high_watermark=10 * p)
                  for p in range(partitions))
    return TopicInfo(name=name, internal=internal, partitions=parts,
                     messages_in_per_sec=rate, records=sum(10 * p for p in range(partitions)))


def names(model, column: int = 0) -> list[str]:
    return [model.index(r, column).data() for r in range(model.rowCount())]


def test_set_items_inserts_updates_and_removes(qtbot):
    model = TopicsModel()
    inserted, removed, changed = [], [], []
    model.rowsInserted.connect(lambda _p, a, b: inserted.append((a, b)))
    model.rowsRemoved.connect(lambda _p, a, b: removed.append((a, b)))
    model.dataChanged.connect(lambda a, b: changed.append((a.row(), b.row())))
    assert model.set_items([topic("a"), topic("b"), topic("c")]) == (3, 0, 0)
    assert inserted == [(0, 2)]
    # same keys, one changed value -> a single dataChanged for that row, no resets
    assert model.set_items([topic("a"), topic("b", rate=5.0), topic("c")]) == (0, 0, 1)
    assert changed == [(1, 1)]
    # identical snapshot -> nothing emitted
    assert model.set_items([topic("a"), topic("b", rate=5.0), topic("c")]) == (0, 0, 0)
    assert changed == [(1, 1)]
    # remove one, add one
    assert model.set_items([topic("a"), topic("c"), topic("d")]) == (1, 1, 0)
    assert removed == [(1, 1)]
    assert names(model) == ["a", "c", "d"]


def test_removal_of_non_contiguous_rows(qtbot):
    model = TopicsModel()
    model.set_items([topic(n) for n in "abcdefg"])
    model.set_items([topic(n) for n in "aceg"])
    assert names(model) == list("aceg")
    assert model.row_of("e") == 2


def test_selection_survives_updates_and_removals(qtbot):
    model = TopicsModel()
    proxy = TopicFilterProxy()
    proxy.setSourceModel(model)
    proxy.sort(0, Qt.SortOrder.AscendingOrder)
    model.set_items([topic(n) for n in ("alpha", "beta", "gamma", "delta")])
    sel = QItemSelectionModel(proxy)
    gamma = proxy.mapFromSource(model.index(model.row_of("gamma"), 0))
    sel.select(gamma, QItemSelectionModel.SelectionFlag.ClearAndSelect
               | QItemSelectionModel.SelectionFlag.Rows)
    for i in range(5):  # values change every tick, a topic before it disappears, one appears
        model.set_items([topic("alpha", rate=i), topic("gamma", rate=i * 2),
                         topic("delta"), topic(f"new-{i}")])
    rows = sel.selectedRows()
    assert len(rows) == 1
    assert rows[0].data() == "gamma"
    assert rows[0].data(ITEM_ROLE).messages_in_per_sec == 8


def test_sorting_uses_raw_values(qtbot):
    model = TopicsModel()
    proxy = TopicFilterProxy()
    proxy.setSourceModel(model)
    model.set_items([topic("a", partitions=2), topic("b", partitions=10),
                     topic("c", partitions=9)])
    proxy.sort(1, Qt.SortOrder.DescendingOrder)  # Partitions: 10 > 9 > 2 (not "9" > "2" > "10")
    assert names(proxy) == ["b", "c", "a"]
    model.set_items([topic("a", partitions=20), topic("b", partitions=10),
                     topic("c", partitions=9)])
    assert names(proxy) == ["a", "b", "c"]  # dynamic re-sort after an update


def test_none_sorts_first(qtbot):
    model = BrokersModel()
    proxy = sorting_proxy(model)
    demo = DemoCluster(brokers=3).snapshot()
    brokers = list(demo.brokers)
    brokers[1] = dataclasses.replace(brokers[1], cpu_percent=None)
    model.set_items(brokers)
    proxy.sort(6, Qt.SortOrder.AscendingOrder)
    assert proxy.index(0, 0).data(SORT_ROLE) == 2


def test_filter_and_hide_internal(qtbot):
    model = TopicsModel()
    proxy = TopicFilterProxy()
    proxy.setSourceModel(model)
    model.set_items([topic("orders"), topic("orders.dlq"), topic("payments"),
                     topic("__consumer_offsets", internal=True)])
    assert proxy.rowCount() == 4
    proxy.set_hide_internal(True)
    assert proxy.rowCount() == 3
    proxy.setFilterFixedString("ORDERS")
    assert sorted(names(proxy)) == ["orders", "orders.dlq"]
    model.set_items([topic("orders"), topic("payments"), topic("orders-v2")])
    assert sorted(names(proxy)) == ["orders", "orders-v2"]


def test_partitions_model_status_and_colours(qtbot):
    model = PartitionsModel()
    parts = (
        PartitionInfo("t", 0, leader=1, replicas=(1, 2, 3), isr=(1, 2, 3)),
        PartitionInfo("t", 1, leader=2, replicas=(1, 2, 3), isr=(2, 3),
                      replica_lag=((1, 500), (3, 0))),
        PartitionInfo("t", 2, leader=-1, replicas=(1, 2, 3), isr=(), offline_replicas=(1, 2, 3)),
        PartitionInfo("t", 3, leader=2, replicas=(1, 2, 3), isr=(1, 2, 3)),
    )
    model.set_topic(TopicInfo("t", partitions=parts))
    assert [partition_status(p) for p in parts] == ["ok", "under-replicated", "offline",
                                                     "not preferred"]
    assert model.index(2, 1).data() == "none"
    assert model.index(1, 4).data() == "2, 3"
    assert model.index(1, 10).data() == "1:500  3:0"
    assert model.index(2, 1).data(Qt.ItemDataRole.ForegroundRole) is not None


def test_groups_and_offsets(qtbot):
    snap = DemoCluster(groups=4).snapshot()
    groups = GroupsModel()
    groups.set_items(snap.groups)
    assert groups.rowCount() == 4
    g = snap.groups[0]
    offsets = OffsetsModel()
    offsets.set_group(g)
    assert offsets.rowCount() == len(g.offsets)
    lag_col = 4
    assert offsets.index(0, lag_col).data(SORT_ROLE) == g.offsets[0].lag
    empty = GroupInfo("gone", state="Dead")
    groups.set_items([empty])
    assert groups.rowCount() == 1
    assert groups.index(0, 7).data() == "\u2013"


def test_quorum_model(qtbot):
    snap = DemoCluster(brokers=4).snapshot()
    model = QuorumModel()
    model.set_quorum(snap.quorum)
    assert model.rowCount() == 4  # 3 voters + 1 observer
    roles = sorted(model.index(r, 1).data() for r in range(4))
    assert roles == ["leader", "observer", "voter", "voter"]
    model.set_quorum(None)
    assert model.rowCount() == 0


def test_messages_filter_and_render(qtbot):
    from gui.bridge.backend import Record

    model = MessagesModel()
    proxy = MessageFilterProxy()
    proxy.setSourceModel(model)
    model.set_items([Record("t", 0, i, 1_700_000_000_000 + i, f"k{i}".encode(),
                            b'{"n": %d}' % i, (("h", b"v"),)) for i in range(10)])
    proxy.set_needle('"n": 7')
    assert proxy.rowCount() == 1
    proxy.set_needle("")
    assert proxy.rowCount() == 10
    model.append([Record("t", 0, 10, 0, None, b"\x00\x01", ())])
    assert model.rowCount() == 11
    assert render(b'{"a":1}', "auto") == '{\n  "a": 1\n}'
    assert render(b"\xff\xfe", "auto").startswith("00000000  ff fe")
    assert render(None, "text") == "null"
    assert as_hex(b"AB").startswith("00000000  41 42")


def test_log_model_bounded_and_filtered(qtbot):
    model = LogModel(max_lines=100)
    proxy = LogFilterProxy()
    proxy.setSourceModel(model)
    model.append([(1 + i % 2, "ERROR" if i % 10 == 0 else "INFO", f"line {i}")
                  for i in range(150)])
    assert model.rowCount() == 100
    proxy.configure(min_level="ERROR")
    assert proxy.rowCount() == 10
    proxy.configure(min_level="DEBUG", broker=2, needle="line 14")
    assert all(proxy.index(r, 0).data() == "2" for r in range(proxy.rowCount()))
    assert proxy.rowCount() == 5  # 141,143,...,149


@pytest.mark.parametrize("name,ok", [("orders", True), ("a.b_c-d", True), ("", False),
                                     (".", False), ("..", False), ("a" * 249, True),
                                     ("a" * 250, False), ("bad name", False),
                                     ("ümlaut", False)])
def test_topic_name_rules(name, ok):
    from gui.bridge.types import topic_name_error

    assert (topic_name_error(name) is None) == ok


def test_topic_name_messages_are_kafkas():
    from gui.bridge.types import topic_name_error

    assert topic_name_error("..") == 'Topic name cannot be "." or ".."'
    assert "can't be longer than 249 characters" in topic_name_error("x" * 250)
    assert "contains a character other than ASCII alphanumerics" in topic_name_error("a b")
