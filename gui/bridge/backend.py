"""What the console can ask of a cluster: the Backend interface and its plain data types.

Every method is a coroutine run on the bridge's asyncio loop (never in the Qt thread).
:class:`gui.bridge.kafka.KafkaBackend` implements it over core.admin / core.cluster;
:class:`gui.bridge.demo.DemoBackend` over a synthetic in-memory cluster (screenshots, benches).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from gui.bridge.types import ClusterSnapshot

SUPERVISOR_ACTIONS = ("start", "stop", "kill", "pause", "resume", "restart")


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What this connection allows; ``reason`` explains what is greyed out and why."""

    bootstrap: str
    supervised: bool
    data_dir: Path | None = None
    reason: str = ""
    #: The console started this cluster itself (and stops it on exit unless told otherwise).
    owns_cluster: bool = False
    #: The supervisor runs a fault proxy in front of every broker (ctl ``netfault``).
    network_faults: bool = False
    #: Why network faults are unavailable (tooltip), when they are.
    network_reason: str = ""

    @property
    def logs_available(self) -> bool:
        return self.data_dir is not None


@dataclass(frozen=True, slots=True)
class ConfigEntry:
    """One topic config as described by the cluster."""

    name: str
    value: str | None
    is_default: bool
    source: str = ""
    read_only: bool = False
    sensitive: bool = False
    doc: str = ""


@dataclass(frozen=True, slots=True)
class Record:
    """One record read by the browser."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...] = ()

    @property
    def key_id(self) -> tuple[str, int, int]:
        return (self.topic, self.partition, self.offset)


@dataclass(frozen=True, slots=True)
class ProduceSpec:
    """What the produce panel asks for. Templates may use {counter}, {random}, {timestamp}."""

    topic: str
    value: str
    key: str = ""
    partition: int | None = None  # None: by key hash (or the partitioner's choice)
    headers: tuple[tuple[str, str], ...] = ()
    count: int = 1
    rate: float = 0.0  # records per second, 0 = as fast as possible
    acks: int = -1


@dataclass(slots=True)
class ProduceReport:
    """Delivery report of one produce run."""

    requested: int
    delivered: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    #: partition -> (first offset, last offset) of delivered records
    offsets: dict[int, tuple[int, int]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BrowseSpec:
    """Where to read from: ``start`` is earliest | latest | offset | timestamp."""

    topic: str
    partition: int | None = None  # None: all partitions
    start: str = "latest"
    value: int = 100  # N for latest, the offset, or the timestamp (ms)
    limit: int = 500


@dataclass(frozen=True, slots=True)
class ThrottleSpec:
    """A replication throttle on one broker (Kafka's leader/follower.replication.throttled.*).

    Rates are bytes/s, None leaves that side unthrottled. ``replicas`` is "all" (the topics'
    ``*.replication.throttled.replicas`` = ``*``) or "reassigning" (only the partitions being
    reassigned, as kafka-reassign-partitions --throttle does).
    """

    leader_bps: int | None
    follower_bps: int | None
    replicas: str = "all"


Progress = Callable[[int, int], None]  # (done, total); called on the loop thread


class Backend(Protocol):
    """The operations the console needs. Errors are raised as exceptions with clear messages."""

    capabilities: Capabilities

    async def open(self, progress: Callable[[str, float], None]) -> Capabilities: ...
    async def close(self, stop_cluster: bool) -> None: ...
    async def snapshot(self) -> ClusterSnapshot: ...

    async def create_topic(self, name: str, partitions: int, replication_factor: int,
                           configs: dict[str, str]) -> None: ...
    async def delete_topic(self, name: str) -> None: ...
    async def create_partitions(self, name: str, total: int) -> None: ...
    async def describe_topic_configs(self, name: str) -> list[ConfigEntry]: ...
    async def alter_topic_configs(self, name: str, set_: dict[str, str],
                                  delete: list[str]) -> None: ...
    async def elect_preferred_leaders(self, topic: str, partitions: list[int] | None) -> str: ...
    async def delete_group(self, group_id: str) -> None: ...
    async def reset_offsets(self, group_id: str, topic: str, partitions: list[int] | None,
                            to: str, value: int | None) -> dict[int, int]: ...
    async def broker_action(self, action: str, broker_id: int | None) -> str: ...
    async def network_fault(self, broker_id: int, fault: str, ms: int | None) -> str: ...
    async def set_replication_throttle(self, broker_id: int, spec: ThrottleSpec) -> str: ...
    async def clear_replication_throttle(self, broker_id: int) -> str: ...
    async def produce(self, spec: ProduceSpec, progress: Progress) -> ProduceReport: ...
    async def browse(self, spec: BrowseSpec) -> list[Record]: ...
    async def tail(self, topic: str, partition: int | None,
                   positions: dict[int, int] | None) -> tuple[list[Record], dict[int, int]]: ...


def not_supervised(capabilities: Capabilities) -> str:
    """The tooltip explaining why supervisor actions are unavailable."""
    return capabilities.reason or (
        "Needs the kaflab supervisor: this console is attached to an external cluster "
        f"({capabilities.bootstrap}) through the Kafka protocol only.")


def no_network_faults(capabilities: Capabilities) -> str:
    """The tooltip explaining why network faults are unavailable ('' when they are not)."""
    if capabilities.network_faults:
        return ""
    if not capabilities.supervised:
        return not_supervised(capabilities)
    return capabilities.network_reason or (
        "This cluster's supervisor runs no fault proxies in front of the brokers.")


def render_template(template: str, counter: int, rnd: Any, now_ms: int) -> str:
    """Expand {counter}, {random} and {timestamp} in a produce template."""
    if "{" not in template:
        return template
    return (template.replace("{counter}", str(counter))
            .replace("{random}", str(rnd.randint(0, 2**31 - 1)))
            .replace("{timestamp}", str(now_ms)))
