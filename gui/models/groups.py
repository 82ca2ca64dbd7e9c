"""Consumer groups, their members and their committed offsets."""

from __future__ import annotations

from typing import Any

from gui.models import fmt
from gui.models.keyed import Column, KeyedTableModel

_GROUP_STATE_COLORS = {
    "Stable": fmt.OK, "Empty": fmt.MUTED, "Dead": fmt.BAD,
    "PreparingRebalance": fmt.WARN, "CompletingRebalance": fmt.WARN,
}


class GroupsModel(KeyedTableModel):
    """One row per consumer group (GroupInfo)."""

    columns = (
        Column("Group", lambda g: g.group_id),
        Column("State", lambda g: g.state, color=lambda g: _GROUP_STATE_COLORS.get(g.state)),
        Column("Type", lambda g: g.protocol_type or "\u2013"),
        Column("Assignor", lambda g: g.protocol or "\u2013"),
        Column("Members", lambda g: len(g.members), numeric=True),
        Column("Partitions", lambda g: len(g.offsets), numeric=True),
        Column("Coordinator", lambda g: g.coordinator_id, numeric=True,
               fmt=lambda v: "\u2013" if v is None else str(v)),
        Column("Lag", lambda g: g.total_lag, fmt=fmt.count, numeric=True,
               color=lambda g: fmt.lag_color(g.total_lag),
               tooltip="Sum over partitions of (end offset - committed offset)"),
    )


class MembersModel(KeyedTableModel):
    """The members of one group (MemberInfo)."""

    columns = (
        Column("Member", lambda m: m.member_id),
        Column("Client", lambda m: m.client_id or "\u2013"),
        Column("Host", lambda m: m.host or "\u2013"),
        Column("Instance", lambda m: m.instance_id),
        Column("Assignment", lambda m: _assignment(m.assignment)),
    )


def _assignment(pairs: tuple[tuple[str, int], ...]) -> str:
    if not pairs:
        return "\u2013"
    by_topic: dict[str, list[int]] = {}
    for topic, partition in pairs:
        by_topic.setdefault(topic, []).append(partition)
    return "; ".join(f"{t}[{','.join(str(p) for p in sorted(ps))}]"
                     for t, ps in sorted(by_topic.items()))


class OffsetsModel(KeyedTableModel):
    """Committed offsets of one group per partition (GroupOffset)."""

    columns = (
        Column("Topic", lambda o: o.topic),
        Column("Partition", lambda o: o.partition, numeric=True),
        Column("Committed", lambda o: o.committed, numeric=True,
               fmt=lambda v: "none" if v < 0 else f"{v:,}"),
        Column("End offset", lambda o: o.log_end_offset, fmt=fmt.count, numeric=True),
        Column("Lag", lambda o: o.lag, fmt=fmt.count, numeric=True,
               color=lambda o: fmt.lag_color(o.lag)),
        Column("Owner", lambda o: o.owner or "\u2013"),
    )

    def set_group(self, group: Any) -> None:
        self.set_items(group.offsets if group is not None else ())
