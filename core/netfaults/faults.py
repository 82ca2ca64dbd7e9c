"""Per-broker network faults and the rule that turns them into what one link suffers.

A link is one TCP connection through the proxy of broker ``dst``, opened by ``src``: another
broker (identified from the client id of its first request, see ``source_broker``) or a client
(``src`` None). A broker's fault is a mode plus an added latency:

- ``latency``   every round trip to or from the broker is ``ms`` longer (links into it and
                links it opens into its peers; a link with both ends slow gets both delays)
- ``drop``      the broker is unreachable: its links are reset, new ones are reset at once
- ``blackhole`` nothing moves to or from the broker (a full partition): its links stall
- ``isolate``   cut off from the other *brokers* only: links between it and a peer broker stall,
                both ways; clients still reach it (the classic partitioned leader)
- ``clear``     back to healthy

Pure state, no I/O: proxies ask ``policy(src, dst)`` and subscribe to changes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

OK, DROP, BLACKHOLE, ISOLATE = "ok", "drop", "blackhole", "isolate"
MODES = (OK, DROP, BLACKHOLE, ISOLATE)
FAULTS = ("latency", DROP, BLACKHOLE, ISOLATE, "clear")

#: client ids our brokers use for their own outbound connections (core/broker/*)
_PEER_CLIENT_ID = re.compile(r"^(?:replica-fetcher|raft|broker|txn-markers)-(\d+)$")


def source_broker(client_id: str | None) -> int | None:
    """The broker id behind an inter-broker client id (``raft-2`` -> 2), else None."""
    if not client_id:
        return None
    m = _PEER_CLIENT_ID.match(client_id)
    return int(m.group(1)) if m else None


@dataclass(frozen=True, slots=True)
class LinkFault:
    """What one broker's network suffers: a mode and an added latency (ms)."""

    mode: str = OK
    latency_ms: float = 0.0

    @property
    def healthy(self) -> bool:
        return self.mode == OK and not self.latency_ms

    def describe(self) -> str:
        """`healthy`, `isolate`, `+200 ms`, `blackhole, +50 ms`."""
        parts = [self.mode] if self.mode != OK else []
        if self.latency_ms:
            parts.append(f"+{self.latency_ms:g} ms")
        return ", ".join(parts) or "healthy"

    def to_json(self) -> dict[str, object] | None:
        """cluster.json's `netfault` of a broker (None when healthy)."""
        if self.healthy:
            return None
        return {"mode": self.mode, "latency_ms": self.latency_ms, "text": self.describe()}


HEALTHY = LinkFault()
Listener = Callable[[], None]


class FaultTable:
    """The active fault of every broker; proxies read it per link and are told of changes."""

    def __init__(self) -> None:
        self._faults: dict[int, LinkFault] = {}
        self._listeners: list[Listener] = []

    @property
    def active(self) -> bool:
        """Whether any broker has a fault (the proxies' fast path checks only this)."""
        return bool(self._faults)

    def get(self, broker_id: int) -> LinkFault:
        return self._faults.get(broker_id, HEALTHY)

    def items(self) -> list[tuple[int, LinkFault]]:
        return sorted(self._faults.items())

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener()`` after every change."""
        self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def apply(self, broker_id: int, fault: str, ms: float | None = None) -> LinkFault:
        """Set broker ``broker_id``'s fault by name (see FAULTS); returns the new state.

        ``latency`` changes only the delay (``ms``, 0 removes it) and keeps the mode; the
        modes keep the delay; ``clear`` (or ``heal``) removes both.
        """
        current = self.get(broker_id)
        if fault == "latency":
            if ms is None or ms < 0:
                raise ValueError("latency needs a delay in ms (>= 0)")
            new = LinkFault(current.mode, float(ms))
        elif fault in (DROP, BLACKHOLE, ISOLATE):
            new = LinkFault(fault, current.latency_ms)
        elif fault in ("clear", "heal"):
            new = HEALTHY
        else:
            raise ValueError(f"unknown network fault {fault!r} (one of {', '.join(FAULTS)})")
        if new.healthy:
            self._faults.pop(broker_id, None)
        else:
            self._faults[broker_id] = new
        self._changed()
        return new

    def clear_all(self) -> None:
        """Heal every broker."""
        if self._faults:
            self._faults.clear()
            self._changed()

    def policy(self, src: int | None, dst: int) -> tuple[str, float]:
        """(mode, latency ms) of a link from ``src`` (a broker id, None: a client) into ``dst``.

        The mode is ``ok``, ``drop`` or ``blackhole`` (an isolated end stalls broker links).
        """
        if not self._faults:
            return OK, 0.0
        ends = [self.get(dst)]
        if src is not None and src != dst:
            ends.append(self.get(src))
        modes = {end.mode for end in ends}
        latency = sum(end.latency_ms for end in ends)
        if DROP in modes:
            return DROP, latency
        if BLACKHOLE in modes:
            return BLACKHOLE, latency
        if ISOLATE in modes and src is not None and src != dst:
            return BLACKHOLE, latency
        return OK, latency

    def _changed(self) -> None:
        for listener in list(self._listeners):
            listener()
