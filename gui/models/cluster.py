"""Brokers and quorum voters."""

from __future__ import annotations

import time
from typing import Any, NamedTuple

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


#: A voter (not the leader) whose last caught-up time is older than this, while the quorum
#: has a leader, is lagging (warning colour). Kafka's controller.quorum.fetch.timeout.ms
#: defaults to 2 s; a follower that fetches keeps catching up well within it.
LAGGING_AFTER_S = 5.0

_FETCH_TIP = ("The last time this replica fetched from the quorum leader, as an age at the "
              "snapshot's time (DescribeQuorum's LastFetchTimestamp, KIP-836, on the "
              "leader's clock). The leader reports itself as now; \u2013 when unknown.")
_CAUGHT_UP_TIP = ("The last time this replica was caught up to the leader's log end offset, as "
                  "an age at the snapshot's time (DescribeQuorum's LastCaughtUpTimestamp, "
                  "KIP-836). A voter not caught up for more than "
                  f"{LAGGING_AFTER_S:g} s while the quorum has a leader is lagging (warning "
                  "colour); \u2013 when unknown.")


class QuorumRow(NamedTuple):
    """One row of the quorum table: a voter or observer as of the snapshot's time."""

    role: str  # "voter" or "observer"
    voter: Any  # QuorumVoter
    leader_id: int
    taken_at: float | None = None  # the snapshot's Unix time, seconds

    def age_s(self, epoch_ms: int | None) -> float | None:
        """Seconds between ``epoch_ms`` and the snapshot (never negative: clocks and the
        DescribeQuorum answer arriving after the snapshot started may put it ahead)."""
        if epoch_ms is None or self.taken_at is None:
            return None
        return max(0.0, self.taken_at - epoch_ms / 1000.0)

    @property
    def fetch_age_s(self) -> float | None:
        return self.age_s(getattr(self.voter, "last_fetch_timestamp", None))

    @property
    def caught_up_age_s(self) -> float | None:
        return self.age_s(getattr(self.voter, "last_caught_up_timestamp", None))

    @property
    def is_leader(self) -> bool:
        return self.voter.id == self.leader_id

    @property
    def lagging(self) -> bool:
        """A voter that has not been caught up for LAGGING_AFTER_S while there is a leader."""
        age = self.caught_up_age_s
        return (self.role == "voter" and self.leader_id >= 0 and not self.is_leader
                and age is not None and age > LAGGING_AFTER_S)


def _when(epoch_ms: int | None) -> str | None:
    if epoch_ms is None:
        return None
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch_ms / 1000))
    return f"{stamp}.{epoch_ms % 1000:03d}"


def _fetch_tip(r: QuorumRow) -> str | None:
    when = _when(getattr(r.voter, "last_fetch_timestamp", None))
    return None if when is None else f"Last fetched from the leader at {when}"


def _caught_up_tip(r: QuorumRow) -> str | None:
    when = _when(getattr(r.voter, "last_caught_up_timestamp", None))
    if when is None:
        return None
    tip = f"Last caught up to the leader's log end offset at {when}"
    if r.lagging:
        tip += (f"\nLagging: not caught up for more than {LAGGING_AFTER_S:g} s while "
                f"node {r.leader_id} leads the quorum")
    return tip


class QuorumModel(KeyedTableModel):
    """Voters and observers of the KRaft quorum; items are :class:`QuorumRow`
    (role, QuorumVoter, leader_id, snapshot time)."""

    columns = (
        Column("Node", lambda r: r[1].id, numeric=True),
        Column("Role", lambda r: "leader" if r[1].id == r[2] else r[0],
               color=lambda r: fmt.ACCENT if r[1].id == r[2] else None),
        Column("Log end offset", lambda r: r[1].log_end_offset, numeric=True),
        Column("Lag", lambda r: r[1].lag, numeric=True, color=lambda r: fmt.lag_color(r[1].lag)),
        Column("Last fetch", lambda r: r.fetch_age_s, fmt=fmt.age, numeric=True,
               tooltip=_FETCH_TIP, cell_tooltip=_fetch_tip),
        Column("Caught up", lambda r: r.caught_up_age_s, fmt=fmt.age, numeric=True,
               tooltip=_CAUGHT_UP_TIP, cell_tooltip=_caught_up_tip),
    )
    LAST_FETCH_COLUMN, CAUGHT_UP_COLUMN = 4, 5

    def key_of(self, item: Any) -> Any:
        return (item[0], item[1].id)

    def row_color(self, item: Any) -> str | None:
        return fmt.WARN if item.lagging else None

    def set_quorum(self, quorum: Any, taken_at: float | None = None) -> None:
        """Show ``quorum`` (None: no rows); ages are taken at ``taken_at`` (the snapshot's
        Unix time; None: no ages)."""
        if quorum is None:
            self.set_items(())
            return
        rows = [QuorumRow("voter", v, quorum.leader_id, taken_at) for v in quorum.voters]
        rows += [QuorumRow("observer", v, quorum.leader_id, taken_at) for v in quorum.observers]
        self.set_items(rows)
