"""Brokers and quorum voters."""

from __future__ import annotations

from typing import Any

from gui.bridge.types import fault_label, throttle_label
from gui.models import fmt
from gui.models.keyed import Column, KeyedTableModel

_STATE_COLORS = {
    "online": fmt.OK, "running": fmt.OK, "starting": fmt.ACCENT, "paused": fmt.WARN,
    "unresponsive": fmt.WARN,  # attached cluster: in the metadata, but not answering
    "stopped": fmt.MUTED, "offline": fmt.BAD, "killed": fmt.BAD, "crashed": fmt.BAD,
}


def state_color(state: str) -> str | None:
    return _STATE_COLORS.get(state)


class BrokersModel(KeyedTableModel):
    """One row per broker (BrokerInfo)."""

    columns = (
        Column("ID", lambda b: b.id, numeric=True),
        Column("Address", lambda b: b.address),
        Column("State", lambda b: b.state, color=lambda b: state_color(b.state)),
        Column("Role", lambda b: "controller" if b.is_controller else "",
               color=lambda b: fmt.ACCENT if b.is_controller else None,
               tooltip="The active controller (leader of the metadata quorum)"),
        Column("Rack", lambda b: b.rack),
        Column("PID", lambda b: b.pid, fmt=lambda v: "\u2013" if v is None else str(v),
               numeric=True),
        Column("CPU", lambda b: b.cpu_percent, fmt=fmt.percent, numeric=True),
        Column("Memory", lambda b: b.memory_bytes, fmt=fmt.nbytes, numeric=True),
        Column("Leaders", lambda b: b.partitions_led, numeric=True,
               tooltip="Partitions this broker leads"),
        Column("Under-replicated", lambda b: b.under_replicated, numeric=True,
               color=lambda b: fmt.WARN if b.under_replicated else None),
        Column("Offline", lambda b: b.offline, numeric=True,
               color=lambda b: fmt.BAD if b.offline else None,
               tooltip="Replicas on this broker that are offline (all of them while it is "
                       "down)"),
        Column("Msgs in/s", lambda b: b.messages_in_per_sec, fmt=fmt.rate, numeric=True),
        Column("Bytes in/s", lambda b: b.bytes_in_per_sec, fmt=fmt.byte_rate, numeric=True),
        Column("Bytes out/s", lambda b: b.bytes_out_per_sec, fmt=fmt.byte_rate, numeric=True),
        # issue #8; last in the model (column numbers stay put), shown after State by the view
        Column("Network", fault_label,
               color=lambda b: fmt.BAD if getattr(b, "network_mode", None) else fmt.WARN,
               tooltip="Network fault injected by the supervisor's proxy in front of the "
                       "broker (latency, drop, blackhole, isolated from the other brokers)"),
        Column("Throttle", throttle_label, color=lambda b: fmt.WARN,
               tooltip="Replication throttle on this broker "
                       "(leader/follower.replication.throttled.rate)"),
    )
    #: model columns of the injected faults
    NETWORK_COLUMN, THROTTLE_COLUMN = 14, 15
    #: hidden until the user shows them (the header's context menu): Role (the page's
    #: "Active controller" card says it), Rack, PID, Offline (mostly what State says)
    HIDDEN_AT_FIRST = (3, 4, 5, 10)

    def row_color(self, item: Any) -> str | None:
        return fmt.MUTED if item.state in ("stopped", "offline", "killed", "crashed") else None


class QuorumModel(KeyedTableModel):
    """Voters and observers of the KRaft quorum; items are (role, QuorumVoter, leader_id)."""

    columns = (
        Column("Node", lambda r: r[1].id, numeric=True),
        Column("Role", lambda r: "leader" if r[1].id == r[2] else r[0],
               color=lambda r: fmt.ACCENT if r[1].id == r[2] else None),
        Column("Log end offset", lambda r: r[1].log_end_offset, numeric=True),
        Column("Lag", lambda r: r[1].lag, numeric=True, color=lambda r: fmt.lag_color(r[1].lag)),
    )

    def key_of(self, item: Any) -> Any:
        return (item[0], item[1].id)

    def set_quorum(self, quorum: Any) -> None:
        if quorum is None:
            self.set_items(())
            return
        rows = [("voter", v, quorum.leader_id) for v in quorum.voters]
        rows += [("observer", v, quorum.leader_id) for v in quorum.observers]
        self.set_items(rows)
