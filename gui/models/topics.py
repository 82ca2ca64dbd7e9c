"""Topics and the partitions of one topic."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QSortFilterProxyModel, Qt

from gui.models import fmt
from gui.models.keyed import ITEM_ROLE, SORT_ROLE, Column, KeyedTableModel


class TopicsModel(KeyedTableModel):
    """One row per topic (TopicInfo)."""

    columns = (
        Column("Topic", lambda t: t.name),
        Column("Partitions", lambda t: len(t.partitions), numeric=True),
        Column("RF", lambda t: t.replication_factor, numeric=True,
               tooltip="Replication factor"),
        Column("Records", lambda t: t.records, fmt=fmt.count, numeric=True),
        Column("Size", lambda t: t.size_bytes, fmt=fmt.nbytes, numeric=True),
        Column("Msgs in/s", lambda t: t.messages_in_per_sec, fmt=fmt.rate, numeric=True),
        Column("Bytes in/s", lambda t: t.bytes_in_per_sec, fmt=fmt.byte_rate, numeric=True),
        Column("Bytes out/s", lambda t: t.bytes_out_per_sec, fmt=fmt.byte_rate, numeric=True),
        Column("Status", lambda t: topic_status(t),
               color=lambda t: {"offline": fmt.BAD, "under-replicated": fmt.WARN}.get(
                   topic_status(t), fmt.OK),
               tooltip="offline: a partition has no leader; under-replicated: ISR < replicas"),
    )

    def row_color(self, item: Any) -> str | None:
        return fmt.MUTED if item.internal else None


def topic_status(topic: Any) -> str:
    if any(p.leader < 0 for p in topic.partitions):
        return "offline"
    if topic.under_replicated or any(len(p.isr) < len(p.replicas) for p in topic.partitions):
        return "under-replicated"
    return "ok"


class TopicFilterProxy(QSortFilterProxyModel):
    """Sorts by raw values and filters topic names by substring; can hide internal topics."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.setSortRole(SORT_ROLE)
        self.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.setFilterKeyColumn(0)
        self.setDynamicSortFilter(True)
        self._hide_internal = False

    def set_hide_internal(self, hide: bool) -> None:
        self._hide_internal = hide
        self.invalidateFilter()

    def filterAcceptsRow(self, source_row: int,
                         source_parent: QModelIndex | QPersistentModelIndex) -> bool:
        model = self.sourceModel()
        if self._hide_internal:
            item = model.data(model.index(source_row, 0, source_parent), ITEM_ROLE)
            if item is not None and getattr(item, "internal", False):
                return False
        return super().filterAcceptsRow(source_row, source_parent)


def _lag_text(p: Any) -> str:
    if not p.replica_lag:
        return "\u2013"
    return "  ".join(f"{b}:{lag:,}" for b, lag in p.replica_lag if b != p.leader) or "\u2013"


def _max_follower_lag(p: Any) -> int | None:
    lags = [lag for b, lag in p.replica_lag if b != p.leader]
    return max(lags) if lags else None


def partition_status(p: Any) -> str:
    if p.leader < 0:
        return "offline"
    if len(p.isr) < len(p.replicas):
        return "under-replicated"
    if p.replicas and p.leader != p.replicas[0]:
        return "not preferred"
    return "ok"


_STATUS_COLORS = {"offline": fmt.BAD, "under-replicated": fmt.WARN,
                  "not preferred": fmt.ACCENT, "ok": fmt.OK}


class PartitionsModel(KeyedTableModel):
    """The partitions of one topic (PartitionInfo), colour-coded by health."""

    columns = (
        Column("Partition", lambda p: p.partition, numeric=True),
        Column("Leader", lambda p: p.leader, numeric=True,
               fmt=lambda v: "none" if v < 0 else str(v),
               color=lambda p: fmt.BAD if p.leader < 0 else None),
        Column("Epoch", lambda p: p.leader_epoch, numeric=True,
               tooltip="Leader epoch"),
        Column("Replicas", lambda p: p.replicas, fmt=fmt.ids,
               tooltip="Assigned replicas; the first is the preferred leader"),
        Column("ISR", lambda p: p.isr, fmt=fmt.ids,
               color=lambda p: fmt.WARN if len(p.isr) < len(p.replicas) else None,
               tooltip="In-sync replicas"),
        Column("Offline", lambda p: p.offline_replicas, fmt=fmt.ids,
               color=lambda p: fmt.BAD if p.offline_replicas else None),
        Column("Log start", lambda p: p.log_start_offset, fmt=fmt.count, numeric=True),
        Column("Log end", lambda p: p.log_end_offset, fmt=fmt.count, numeric=True),
        Column("HW", lambda p: p.high_watermark, fmt=fmt.count, numeric=True,
               tooltip="High watermark: the last committed offset + 1"),
        Column("Records", lambda p: p.records, fmt=fmt.count, numeric=True),
        Column("Follower lag", _max_follower_lag, fmt=lambda _v: "", numeric=True,
               tooltip="Records each follower is behind the leader (broker:lag)"),
        Column("Status", partition_status,
               color=lambda p: _STATUS_COLORS.get(partition_status(p))),
    )

    def data(self, index: Any, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        # The follower-lag column sorts by the maximum lag but shows every follower's.
        if (role == Qt.ItemDataRole.DisplayRole and index.isValid()
                and index.column() == _FOLLOWER_LAG_COLUMN):
            return _lag_text(self.item_at(index.row()))
        if (role == Qt.ItemDataRole.ForegroundRole and index.isValid()
                and index.column() == _FOLLOWER_LAG_COLUMN):
            p = self.item_at(index.row())
            return self._brush(fmt.lag_color(_max_follower_lag(p)) or fmt.MUTED)
        return super().data(index, role)

    def set_topic(self, topic: Any) -> None:
        self.set_items(topic.partitions if topic is not None else ())


_FOLLOWER_LAG_COLUMN = 10
