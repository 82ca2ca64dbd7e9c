"""A scenario file, parsed and validated: topics, producers, consumer groups, timed faults.

    name: quickstart-lagging-consumer
    seed: 7
    duration: 30                      # seconds
    topics:
      - {name: orders, partitions: 3, replication_factor: 3, configs: {min.insync.replicas: "2"}}
    producers:
      - {topic: orders, rate: 50, key: "customer-{random:20}", value: "{orders}", acks: all}
    consumers:
      - {group: billing, topic: orders, members: 2}
      - {group: reports, topic: orders, members: 1, processing_ms: 100}   # slow
    faults:
      - {at: 10, fault: kill, broker: 2}
      - {at: 12, fault: kill, leader: orders/0}        # or controller: true, broker: random
      - {at: 20, fault: restart, broker: last}         # the broker hit by the previous fault
      - {at: 5,  fault: latency, broker: 2, ms: 200}   # network faults: latency, drop,
      - {at: 9,  fault: clear, broker: 2}              #   blackhole, isolate, clear
      - {at: 20, action: reset-offsets, group: billing, to: earliest}

Process faults: kill, pause, resume, restart, stop, start. Targets: ``broker: N | random |
last``, ``leader: TOPIC/PARTITION``, ``controller: true``.

Network faults go through the serve's own fault proxies when it has them (so they hit client,
replication, Raft and heartbeat traffic); ``isolate`` (cut a broker off from the other brokers,
clients still reach it) needs them: :func:`check_network_support` says so before a run.

The ``reset-offsets`` step resets a group's committed offsets (``to: earliest | latest |
offset | timestamp`` with ``offset: N`` / ``timestamp: MS``; ``topic:`` defaults to the
topic(s) the scenario's consumers of that group read, ``partitions:`` to all). When the group's
members are this scenario's consumers, the runner stops them, resets and restarts them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROCESS_FAULTS = ("kill", "pause", "resume", "restart", "stop", "start")
NETWORK_FAULTS = ("latency", "drop", "blackhole", "isolate", "clear")
#: network faults only the serve's fault proxies can do (between brokers, not client-side)
CLUSTER_ONLY_FAULTS = ("isolate",)
ACTIONS = ("reset-offsets",)
FAULTS = PROCESS_FAULTS + NETWORK_FAULTS
STEPS = FAULTS + ACTIONS
RESET_TARGETS = ("earliest", "latest", "offset", "timestamp")


class ScenarioError(ValueError):
    """The scenario file is invalid; the message says where."""


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    partitions: int = 1
    replication_factor: int = -1
    configs: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class ProducerSpec:
    topic: str
    rate: float = 10.0  # records per second
    key: str = ""
    value: str = "{orders}"
    acks: int = -1
    count: int | None = None  # default: rate * duration
    name: str = ""


@dataclass(frozen=True, slots=True)
class ConsumerSpec:
    group: str
    topic: str
    members: int = 1
    processing_ms: float = 0.0  # per record: > 0 makes a deliberately slow group
    max_records: int = 500  # per fetch


@dataclass(frozen=True, slots=True)
class FaultSpec:
    at: float
    fault: str
    broker: int | str | None = None  # id, "random" or "last"
    leader: tuple[str, int] | None = None
    controller: bool = False
    ms: float = 0.0
    # reset-offsets
    group: str = ""
    topics: tuple[str, ...] = ()
    to: str = ""
    value: int | None = None
    partitions: tuple[int, ...] | None = None

    @property
    def is_action(self) -> bool:
        """A timed action on the scenario's own clients (not a fault of a broker)."""
        return self.fault in ACTIONS

    def reset_text(self) -> str:
        """``earliest`` / ``offset 5`` / ``timestamp 1700000000000``."""
        return self.to if self.value is None else f"{self.to} {self.value}"

    def target_text(self) -> str:
        if self.is_action:
            return f"group {self.group}"
        if self.controller:
            return "the controller"
        if self.leader is not None:
            return f"the leader of {self.leader[0]}-{self.leader[1]}"
        return f"broker {self.broker}"

    @property
    def is_network(self) -> bool:
        return self.fault in NETWORK_FAULTS


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str = ""
    seed: int = 0
    duration: float = 30.0
    topics: tuple[TopicSpec, ...] = ()
    producers: tuple[ProducerSpec, ...] = ()
    consumers: tuple[ConsumerSpec, ...] = ()
    faults: tuple[FaultSpec, ...] = field(default=())
    brokers: int = 3  # size of the cluster to start when none runs

    @property
    def uses_network_faults(self) -> bool:
        return any(f.is_network for f in self.faults)

    def cluster_only_faults(self) -> tuple[FaultSpec, ...]:
        """The faults that need a serve with fault proxies (``isolate``)."""
        return tuple(f for f in self.faults if f.fault in CLUSTER_ONLY_FAULTS)

    def with_overrides(self, seed: int | None = None, duration: float | None = None) -> Scenario:
        """This scenario with another seed and/or duration (faults after it are dropped)."""
        from dataclasses import replace

        out = self
        if seed is not None:
            out = replace(out, seed=int(seed))
        if duration is not None:
            out = replace(out, duration=float(duration),
                          faults=tuple(f for f in out.faults if f.at < duration))
        return out


def _acks(value: Any) -> int:
    if value in ("all", "-1", -1, None):
        return -1
    if str(value) in ("0", "1"):
        return int(value)
    raise ScenarioError(f"acks must be all, 1 or 0, not {value!r}")


def _num(d: dict[str, Any], key: str, default: Any, where: str, kind: type = float) -> Any:
    value = d.get(key, default)
    if value is None:
        return None
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise ScenarioError(f"{where}: {key} must be a number, not {value!r}") from None


def _mapping(item: Any, where: str) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise ScenarioError(f"{where}: expected a mapping, got {type(item).__name__}")
    return item


def _leader(value: Any, where: str) -> tuple[str, int]:
    if isinstance(value, dict):
        return str(value["topic"]), int(value.get("partition", 0))
    text = str(value)
    topic, sep, part = text.rpartition("/")
    if not sep:
        topic, sep, part = text.rpartition("-")
    if not sep or not part.isdigit():
        raise ScenarioError(f"{where}: leader must be TOPIC/PARTITION, not {value!r}")
    return topic, int(part)


def _reset_step(f: dict[str, Any], at: float, consumers: list[ConsumerSpec],
                where: str) -> FaultSpec:
    group = str(f.get("group") or "")
    if not group:
        raise ScenarioError(f"{where}: reset-offsets needs group")
    if any(f.get(k) not in (None, False) for k in ("broker", "leader", "controller")):
        raise ScenarioError(f"{where}: reset-offsets targets a group, not a broker")
    to = str(f.get("to") or "")
    if to not in RESET_TARGETS:
        raise ScenarioError(f"{where}: to must be one of {', '.join(RESET_TARGETS)}, "
                            f"not {to!r}")
    value = None
    if to in ("offset", "timestamp"):
        value = _num(f, to, None, where, int)
        if value is None or value < 0:
            raise ScenarioError(f"{where}: to: {to} needs {to}: N (>= 0)")
    topic = f.get("topic")
    topics = (str(topic),) if topic else tuple(dict.fromkeys(
        c.topic for c in consumers if c.group == group))
    if not topics:
        raise ScenarioError(f"{where}: topic is required (group {group!r} is not one of the "
                            "scenario's consumer groups)")
    partitions = f.get("partitions")
    parts = None
    if partitions is not None:
        if not isinstance(partitions, list) or not all(str(p).isdigit() for p in partitions):
            raise ScenarioError(f"{where}: partitions must be a list of partition numbers")
        parts = tuple(int(p) for p in partitions)
    return FaultSpec(at, "reset-offsets", group=group, topics=topics, to=to, value=value,
                     partitions=parts)


def parse(document: Any, default_name: str = "scenario") -> Scenario:
    """Build a Scenario from a parsed YAML document; raises ScenarioError."""
    doc = _mapping(document or {}, "scenario")
    duration = _num(doc, "duration", 30.0, "scenario")
    if duration <= 0:
        raise ScenarioError("scenario: duration must be > 0")
    topics = []
    for i, t in enumerate(doc.get("topics") or []):
        t = _mapping(t, f"topics[{i}]")
        if not t.get("name"):
            raise ScenarioError(f"topics[{i}]: name is required")
        configs = tuple(sorted((str(k), str(v)) for k, v in (t.get("configs") or {}).items()))
        topics.append(TopicSpec(str(t["name"]), _num(t, "partitions", 1, f"topics[{i}]", int),
                                _num(t, "replication_factor", t.get("rf", -1),
                                     f"topics[{i}]", int), configs))
    producers = []
    for i, p in enumerate(doc.get("producers") or []):
        p = _mapping(p, f"producers[{i}]")
        if not p.get("topic"):
            raise ScenarioError(f"producers[{i}]: topic is required")
        rate = _num(p, "rate", 10.0, f"producers[{i}]")
        if rate <= 0:
            raise ScenarioError(f"producers[{i}]: rate must be > 0")
        producers.append(ProducerSpec(
            str(p["topic"]), rate, str(p.get("key") or ""), str(p.get("value", "{orders}")),
            _acks(p.get("acks", "all")), _num(p, "count", None, f"producers[{i}]", int),
            str(p.get("name") or f"producer-{i + 1}")))
    consumers = []
    for i, c in enumerate(doc.get("consumers") or doc.get("groups") or []):
        c = _mapping(c, f"consumers[{i}]")
        if not c.get("group") or not c.get("topic"):
            raise ScenarioError(f"consumers[{i}]: group and topic are required")
        consumers.append(ConsumerSpec(
            str(c["group"]), str(c["topic"]), max(1, _num(c, "members", 1, "", int)),
            _num(c, "processing_ms", 0.0, f"consumers[{i}]"),
            max(1, _num(c, "max_records", 500, f"consumers[{i}]", int))))
    faults = []
    for i, f in enumerate(doc.get("faults") or []):
        f = _mapping(f, f"faults[{i}]")
        where = f"faults[{i}]"
        kind = str(f.get("fault") or f.get("action") or "")
        if kind not in STEPS:
            raise ScenarioError(f"{where}: fault must be one of {', '.join(FAULTS)} "
                                f"(or action: {', '.join(ACTIONS)}), not {kind!r}")
        at = _num(f, "at", None, where)
        if at is None or at < 0:
            raise ScenarioError(f"{where}: at (seconds from the start) is required")
        if kind in ACTIONS:
            faults.append(_reset_step(f, at, consumers, where))
            continue
        broker: int | str | None = f.get("broker")
        if broker is not None and str(broker) not in ("random", "last"):
            broker = _num(f, "broker", None, where, int)
        leader = _leader(f["leader"], where) if f.get("leader") is not None else None
        controller = bool(f.get("controller", False))
        if sum(x is not None and x is not False for x in (broker, leader, controller)) != 1:
            raise ScenarioError(f"{where}: give exactly one of broker, leader, controller")
        if kind == "latency" and not f.get("ms"):
            raise ScenarioError(f"{where}: latency needs ms")
        faults.append(FaultSpec(at, kind, broker, leader, controller,
                                _num(f, "ms", 0.0, where)))
    faults.sort(key=lambda x: x.at)
    return Scenario(
        name=str(doc.get("name") or default_name), description=str(doc.get("description") or ""),
        seed=_num(doc, "seed", 0, "scenario", int), duration=duration, topics=tuple(topics),
        producers=tuple(producers), consumers=tuple(consumers), faults=tuple(faults),
        brokers=_num(doc, "brokers", 3, "scenario", int))


def check_network_support(scenario: Scenario, cluster_fault_proxies: bool) -> None:
    """Raise ScenarioError when the scenario has a fault the cluster's network cannot do.

    ``cluster_fault_proxies``: the cluster is a kaflab serve whose status says
    ``fault_proxies: true``. Without them the runner's own proxies sit only between the
    scenario's clients and the brokers, so broker-to-broker faults (``isolate``) are impossible.
    """
    if cluster_fault_proxies:
        return
    bad = scenario.cluster_only_faults()
    if bad:
        f = bad[0]
        raise ScenarioError(
            f"fault at {f.at:g}s: {f.fault} {f.target_text()} needs a kaflab serve with fault "
            "proxies (serve's default; status says fault_proxies: true); this cluster has "
            "none (attached with --bootstrap, or serve --no-fault-proxies), and the "
            "scenario's own proxies only reach its clients, not broker-to-broker traffic")


def load(path: str | Path) -> Scenario:
    """Read and parse a YAML scenario file."""
    import yaml

    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioError(f"cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: invalid YAML: {exc}") from None
    return parse(document, default_name=path.stem)


def bundled_dir() -> Path:
    """resources/scenarios of this checkout."""
    return Path(__file__).resolve().parents[2] / "resources" / "scenarios"


def bundled() -> list[Path]:
    """The scenario files shipped in resources/scenarios, by name."""
    return sorted(bundled_dir().glob("*.yaml"))
