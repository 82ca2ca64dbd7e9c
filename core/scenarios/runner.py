"""Run a Scenario against a cluster: topics, seeded producers, consumer groups, timed faults.

The runner only speaks Kafka (core.admin) plus, for process faults, the supervisor's ctl
socket (core.cluster.ClusterControl). Consumers are real group members (classic protocol,
core.scenarios.member): they subscribe, the range assignor spreads the partitions, they commit
as members of the current generation and rebalance when members come and go; DescribeGroups
shows them with their assignment, and the group's lag is real.

The runner owns its consumers (core.admin.offsets_io.OwnedConsumers): a reset of one of its
groups' offsets, from a timed ``reset-offsets`` step or from the console, stops them, waits
for the group to be Empty, resets and restarts them (:meth:`ScenarioRunner.reset_offsets`).

Network faults have two modes, chosen at setup and named in the run's log:

- ``cluster``: the cluster is a kaflab serve whose status says ``fault_proxies: true``; every
  fault goes through ClusterControl.netfault, so it hits client, replication, Raft and
  heartbeat traffic and shows in cluster.json, the console and the timeline. ``isolate`` works.
  Every broker the scenario faulted is cleared at the end of the run (normal end, error,
  Ctrl+C / stop, cancellation).
- ``client proxies``: any other cluster (``--bootstrap``, ``serve --no-fault-proxies``): a
  ProxySet is started in front of every broker and only the scenario's producers and consumers
  connect through it (fault control and topic creation do not), so latency / drop / blackhole
  hit exactly the scenario's clients; ``isolate`` is refused before the run starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.admin.client import AdminClient, NewTopic, OffsetResult
from core.admin.offsets_io import GroupNotEmptyError, reset_offsets, reset_target
from core.admin.producer import Producer, ProducerRecord
from core.cluster.client import ClusterControl, ClusterControlError
from core.common.errors import KafkaError
from core.netfaults.proxy import ProxySet
from core.scenarios.consumers import GroupConsumers
from core.scenarios.data import RecordTemplate
from core.scenarios.member import MemberConfig
from core.scenarios.model import (
    ConsumerSpec,
    FaultSpec,
    ProducerSpec,
    Scenario,
    ScenarioError,
    check_network_support,
)

log = logging.getLogger(__name__)

MAX_BATCH = 500
SEND_ATTEMPTS = 20
#: ScenarioRunner.fault_mode values
CLUSTER_FAULTS = "cluster"
CLIENT_PROXIES = "client proxies"


@dataclass(frozen=True, slots=True)
class ScenarioEvent:
    """One line of the run's log: ``t`` seconds since the start."""

    t: float
    kind: str  # setup | fault | action | progress | warning | done
    text: str
    wall: float = 0.0

    def line(self) -> str:
        return f"[{self.t:6.1f}s] {self.kind:<8} {self.text}"


@dataclass(slots=True)
class ScenarioSummary:
    name: str
    seed: int
    elapsed_s: float = 0.0
    produced: dict[str, int] = field(default_factory=dict)
    requested: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)
    consumed: dict[str, int] = field(default_factory=dict)
    lag: dict[str, int] = field(default_factory=dict)
    faults: list[str] = field(default_factory=list)
    #: timed actions done (reset-offsets steps) and console resets of the run's groups
    actions: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    stopped: bool = False
    #: the run could not set up (cluster unreachable, topic creation refused)
    aborted: bool = False

    @property
    def outcome(self) -> str:
        return "aborted" if self.aborted else "stopped" if self.stopped else "finished"

    def lines(self) -> list[str]:
        out = [f"scenario {self.name} (seed {self.seed}) "
               f"{self.outcome} after {self.elapsed_s:.1f}s"]
        for name, n in self.produced.items():
            extra = f", {self.failed[name]} failed" if self.failed.get(name) else ""
            out.append(f"  produced  {name}: {n} of {self.requested.get(name, n)}{extra}")
        for group, n in self.consumed.items():
            out.append(f"  consumed  {group}: {n}, lag {self.lag.get(group, '?')}")
        out.append(f"  faults    {len(self.faults)}")
        out.extend(f"    {f}" for f in self.faults)
        if self.actions:
            out.append(f"  actions   {len(self.actions)}")
            out.extend(f"    {a}" for a in self.actions)
        out.extend(f"  error     {e}" for e in self.errors)
        return out


EventSink = Callable[[ScenarioEvent], None]


class ScenarioRunner:
    """``await ScenarioRunner(scenario, bootstrap, control=...).run()`` -> ScenarioSummary."""

    def __init__(self, scenario: Scenario, bootstrap: str, *,
                 control: ClusterControl | None = None, on_event: EventSink | None = None,
                 progress_every: float = 5.0, grace_s: float | None = None,
                 member_config: MemberConfig | None = None) -> None:
        self.scenario = scenario
        self.bootstrap = bootstrap
        self.control = control
        self.on_event = on_event
        self.progress_every = progress_every
        self.grace_s = grace_s if grace_s is not None else max(10.0, scenario.duration / 2)
        self.summary = ScenarioSummary(scenario.name, scenario.seed)
        self.proxies: ProxySet | None = None
        #: how network faults are applied: CLUSTER_FAULTS, CLIENT_PROXIES or "" (none used)
        self.fault_mode = ""
        #: brokers this run put a network fault on through the serve (cleared at the end)
        self._netfaulted: set[int] = set()
        self._stop = asyncio.Event()
        self._t0 = time.monotonic()
        self._fault_rng = random.Random(f"{scenario.seed}:faults")
        self._last_target: int | None = None
        self._produced: dict[str, int] = {}
        self._consumed: dict[str, int] = {}
        self._partitions: dict[str, int] = {}
        self.member_config = member_config
        #: group id -> the members this run started in it
        self.groups: dict[str, GroupConsumers] = {}
        #: the run's direct admin client (None before the run and after it)
        self.admin: AdminClient | None = None
        self._closed = False

    # events ----------------------------------------------------------------------------
    def emit(self, kind: str, text: str) -> None:
        event = ScenarioEvent(round(time.monotonic() - self._t0, 3), kind, text, time.time())
        log.debug("%s", event.line())
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:
                log.exception("scenario event sink failed")

    def stop(self) -> None:
        """Ask the run to end now (call on the runner's loop)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    async def _sleep_until(self, t: float) -> bool:
        """Sleep until ``t`` s after the start; False when stopped first."""
        delay = self._t0 + t - time.monotonic()
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)
        return not self._stop.is_set()

    # the run ---------------------------------------------------------------------------
    async def run(self) -> ScenarioSummary:
        sc = self.scenario
        self._t0 = time.monotonic()
        self.emit("setup", f"scenario {sc.name}: seed {sc.seed}, {sc.duration:g}s, "
                  f"{len(sc.topics)} topic(s), {len(sc.producers)} producer(s), "
                  f"{len(sc.consumers)} group(s), {len(sc.faults)} fault(s)")
        admin = AdminClient(self.bootstrap, client_id="kaflab-scenario", request_timeout=10.0)
        clients: AdminClient | None = None
        try:
            if sc.uses_network_faults:
                self.fault_mode = await self._choose_fault_mode()
            await self._create_topics(admin)
            client_bootstrap = self.bootstrap
            if self.fault_mode == CLUSTER_FAULTS:
                self.emit("setup", "network faults: through the serve's fault proxies "
                          "(client, replication, Raft and heartbeat traffic; shown in "
                          "cluster.json and the console; cleared at the end)")
            elif self.fault_mode == CLIENT_PROXIES:
                md = await admin.metadata()
                self.proxies = await ProxySet.start({b.id: (b.host, b.port) for b in md.brokers})
                client_bootstrap = self.proxies.bootstrap
                self.emit("setup", f"network faults: scenario's own client proxies "
                          f"{client_bootstrap} (only the scenario's producers and consumers "
                          "see them; the cluster has no fault proxies)")
            clients = AdminClient(client_bootstrap, client_id="kaflab-scenario-clients",
                                  request_timeout=10.0, retries=3)
            self._t0 = time.monotonic()
            self.emit("setup", "running")
            self.admin = admin
            workers = [asyncio.ensure_future(self._produce(clients, p))
                       for p in sc.producers]
            await self._start_groups(clients, client_bootstrap)
            background = [asyncio.ensure_future(self._faults(admin)),
                          asyncio.ensure_future(self._progress())]
            await self._sleep_until(sc.duration)
            if workers and not self.stopping:
                _done, pending = await asyncio.wait(workers, timeout=self.grace_s)
                if pending:
                    self.emit("warning", f"producers still behind {self.grace_s:g}s after "
                              "the end: stopping them")
            self._stop.set()
            self._closed = True
            await asyncio.gather(*(g.stop() for g in self.groups.values()))
            for task in (*workers, *background):
                task.cancel()
            await asyncio.gather(*workers, *background, return_exceptions=True)
            if self.proxies is not None:
                self.proxies.clear_all()
            await self.clear_network_faults()
            await self._final_lag(admin)
        except (KafkaError, ScenarioError) as exc:
            self.summary.errors.append(str(exc))
            self.summary.aborted = True
            self.emit("warning", f"scenario aborted: {exc}")
        finally:
            self._closed = True
            self._stop.set()
            await self.clear_network_faults()  # error or cancellation: heal the cluster first
            for g in self.groups.values():  # aborted or cancelled: members still leave
                with contextlib.suppress(Exception):
                    await g.stop(grace_s=5.0)
            self.admin = None
            self.summary.stopped = self.summary.stopped or (
                time.monotonic() - self._t0 < sc.duration - 0.5)
            if clients is not None:
                await clients.close()
            if self.proxies is not None:
                await self.proxies.close()
            await admin.close()
        self.summary.elapsed_s = round(time.monotonic() - self._t0, 2)
        self.summary.consumed = dict(self._consumed)
        self.emit("done", "; ".join(self.summary.lines()[1:4]) or "done")
        return self.summary

    async def _create_topics(self, admin: AdminClient) -> None:
        if not self.scenario.topics:
            return
        results = await admin.create_topics([
            NewTopic(t.name, t.partitions, t.replication_factor, dict(t.configs))
            for t in self.scenario.topics])
        for t in self.scenario.topics:
            err = results.get(t.name)
            if err is None:
                self.emit("setup", f"created topic {t.name}: {t.partitions} partition(s), "
                          f"RF {t.replication_factor if t.replication_factor > 0 else 'default'}")
            elif "exists" in type(err).__name__.lower() or "exists" in str(err).lower():
                self.emit("setup", f"topic {t.name} already exists: using it")
            else:
                raise err
        deadline = time.monotonic() + 30
        names = [t.name for t in self.scenario.topics]
        while True:
            md = await admin.metadata(names)
            ready = all(n in md.topics and md.topics[n].partitions and
                        all(p.leader >= 0 for p in md.topics[n].partitions) for n in names)
            if ready or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        for n in names:
            if n in md.topics:
                self._partitions[n] = len(md.topics[n].partitions)

    async def _num_partitions(self, admin: AdminClient, topic: str) -> int:
        if topic not in self._partitions:
            md = await admin.metadata([topic], allow_auto_topic_creation=True)
            self._partitions[topic] = max(1, len(md.topics[topic].partitions)) \
                if topic in md.topics else 1
        return self._partitions[topic]

    # producers -------------------------------------------------------------------------
    async def _produce(self, admin: AdminClient, spec: ProducerSpec) -> None:
        sc = self.scenario
        total = spec.count if spec.count is not None else round(spec.rate * sc.duration)
        name = spec.name
        self.summary.requested[name] = total
        self.summary.produced[name] = 0
        self.summary.failed[name] = 0
        template = RecordTemplate(spec.key, spec.value, f"{sc.seed}:{name}")
        partitions = await self._num_partitions(admin, spec.topic)
        producer = Producer(admin, acks=spec.acks, timeout_ms=10000, retries=3)
        sent = 0
        while sent < total:
            elapsed = time.monotonic() - self._t0
            due = min(total, int(spec.rate * elapsed) + 1)
            if due <= sent:
                await asyncio.sleep(min(0.2, (sent + 1) / spec.rate - elapsed + 0.001))
                continue
            batch = []
            for counter in range(sent, min(due, sent + MAX_BATCH)):
                key, value = template.render(counter)
                batch.append(ProducerRecord(value, key, (), None if key is not None
                                            else counter % partitions))
            delivered = await self._deliver(producer, spec.topic, batch)
            self.summary.produced[name] += delivered
            self.summary.failed[name] += len(batch) - delivered
            self._produced[name] = self.summary.produced[name]
            sent += len(batch)

    async def _deliver(self, producer: Producer, topic: str,
                       records: list[ProducerRecord]) -> int:
        """Send with retries (the same records, so data stays seeded); returns delivered."""
        todo = records
        delivered = 0
        last_error = ""
        for attempt in range(SEND_ATTEMPTS):
            try:
                reports = await asyncio.wait_for(producer.send_many(topic, todo), 20.0)
            except (KafkaError, OSError, TimeoutError) as exc:
                last_error = str(exc) or type(exc).__name__
                reports = None
            if reports is not None:
                retry = [r for r, rep in zip(todo, reports, strict=False) if not rep.ok]
                delivered += len(todo) - len(retry)
                if not retry:
                    return delivered
                last_error = str(next(rep.error for rep in reports if not rep.ok))
                todo = retry
            if attempt == 0:
                self.emit("warning", f"produce to {topic} failed ({last_error}); retrying")
            await asyncio.sleep(min(1.0, 0.1 * (attempt + 1)))
            with contextlib.suppress(KafkaError, OSError):
                await producer.admin.metadata([topic])
        self.emit("warning", f"gave up on {len(todo)} record(s) to {topic}: {last_error}")
        return delivered

    # consumers -------------------------------------------------------------------------
    def _count(self, group: str, n: int) -> None:
        self._consumed[group] = self._consumed.get(group, 0) + n

    async def _start_groups(self, clients: AdminClient, bootstrap: str) -> None:
        """One GroupConsumers per group id; their topics exist first (auto-created if not
        declared, as a consumer's metadata request would)."""
        by_group: dict[str, list[ConsumerSpec]] = {}
        for spec in self.scenario.consumers:
            by_group.setdefault(spec.group, []).append(spec)
            self._consumed.setdefault(spec.group, 0)
            await self._num_partitions(clients, spec.topic)
        for group, specs in by_group.items():
            self.groups[group] = GroupConsumers(group, specs, bootstrap, self._count,
                                                self.member_config, self._consumer_failed)
            n = self.groups[group].start()
            self.emit("setup", f"group {group}: {n} member(s) subscribed to "
                      f"{', '.join(sorted({s.topic for s in specs}))}")

    def _consumer_failed(self, text: str) -> None:
        self.summary.errors.append(text)
        self.emit("warning", text)

    def consumed_counts(self) -> dict[str, int]:
        """Records processed so far per group (re-reads after a reset count again)."""
        return dict(self._consumed)

    # OwnedConsumers (core.admin.offsets_io): what a reset of our groups may stop ---------
    def owned_member_ids(self, group: str) -> set[str]:
        """Every member id this run's consumers of ``group`` have used."""
        g = self.groups.get(group)
        return g.member_ids() if g is not None else set()

    def owns_group(self, group: str) -> bool:
        """True while this run has consumers in ``group``."""
        return group in self.groups and not self._closed

    async def stop_group(self, group: str) -> int:
        """Stop this run's consumers of ``group`` (they commit and leave)."""
        g = self.groups.get(group)
        return await g.stop() if g is not None else 0

    async def start_group(self, group: str) -> int:
        """Start them again (not once the run is over)."""
        g = self.groups.get(group)
        if g is None or self._closed:
            return 0
        return g.start()

    async def reset_offsets(self, group: str, topic: str, to: str, value: int | None = None,
                            partitions: list[int] | None = None,
                            progress: Callable[[str], None] | None = None) -> dict[Any, int]:
        """Reset ``group``'s offsets on ``topic`` (earliest / latest / offset / timestamp):
        this run's consumers of the group are stopped, the group awaited Empty, the offsets
        reset and the consumers restarted; foreign members make it refuse (nothing changes).
        Call on the runner's loop while the run is going."""
        if self.admin is None:
            raise GroupNotEmptyError("the scenario is not running")

        def say(text: str) -> None:
            self.emit("progress", text)
            if progress is not None:
                progress(text)

        result = await reset_offsets(self.admin, group, topic, reset_target(to, value),
                                     partitions, owner=self, progress=say)
        text = (f"reset-offsets of group {group} on {topic} to "
                f"{to if value is None else f'{to} {value}'}: "
                + ", ".join(f"{p}->{o}" for (_t, p), o in sorted(result.items())))
        self.summary.actions.append(f"t={time.monotonic() - self._t0:.1f}s {text}")
        self.emit("action", text)
        return result

    # faults ----------------------------------------------------------------------------
    async def _faults(self, admin: AdminClient) -> None:
        for fault in self.scenario.faults:
            if not await self._sleep_until(fault.at):
                return
            if fault.is_action:
                await self._action(fault)
                continue
            try:
                text = await self._apply(admin, fault)
            except (KafkaError, ClusterControlError, OSError, ValueError, KeyError) as exc:
                text = f"{fault.fault} {fault.target_text()} failed: {exc}"
                self.summary.errors.append(text)
                self.emit("warning", text)
                continue
            self.summary.faults.append(f"t={fault.at:g}s {text}")
            self.emit("fault", text)

    async def _action(self, step: FaultSpec) -> None:
        """A timed reset-offsets step, on each of its topics."""
        for topic in step.topics:
            try:
                await self.reset_offsets(step.group, topic, step.to, step.value,
                                         list(step.partitions) if step.partitions else None)
            except (KafkaError, GroupNotEmptyError, OSError, ValueError) as exc:
                text = f"reset-offsets of group {step.group} on {topic} failed: {exc}"
                self.summary.errors.append(text)
                self.emit("warning", text)

    async def _broker_ids(self, admin: AdminClient) -> list[int]:
        if self.control is not None:
            status = await self.control.status()
            return sorted(int(b["id"]) for b in status.get("brokers", []))
        return sorted(b.id for b in (await admin.metadata()).brokers)

    async def resolve(self, admin: AdminClient, fault: FaultSpec) -> int:
        """The broker id a fault targets (leader / controller looked up now)."""
        if fault.controller:
            controller = -1
            if self.control is not None:
                controller = int((await self.control.status()).get("controller_id", -1))
            if controller < 0:
                controller = (await admin.metadata()).controller_id or -1
            if controller < 0:
                raise ValueError("no active controller right now")
            return controller
        if fault.leader is not None:
            topic, partition = fault.leader
            md = await admin.metadata([topic])
            p = md.partition(topic, partition)
            if p is None or p.leader < 0:
                raise ValueError(f"{topic}-{partition} has no leader right now")
            return p.leader
        if fault.broker == "last":
            if self._last_target is None:
                raise ValueError("broker: last, but no fault targeted a broker before")
            return self._last_target
        if fault.broker == "random":
            return self._fault_rng.choice(await self._broker_ids(admin))
        return int(fault.broker)  # type: ignore[arg-type]

    async def _choose_fault_mode(self) -> str:
        """CLUSTER_FAULTS when the serve has fault proxies, else CLIENT_PROXIES; raises
        ScenarioError when the scenario has a fault the chosen mode cannot do."""
        cluster = False
        if self.control is not None:
            try:
                cluster = bool((await self.control.status()).get("fault_proxies"))
            except ClusterControlError as exc:
                self.emit("warning", f"cannot ask the serve about fault proxies ({exc}): "
                          "using the scenario's own client proxies")
        check_network_support(self.scenario, cluster)
        return CLUSTER_FAULTS if cluster else CLIENT_PROXIES

    async def clear_network_faults(self) -> None:
        """Clear every network fault this run put on a broker through the serve (idempotent;
        a failure is logged, the others are still cleared)."""
        if self.control is None:
            return
        for broker_id in sorted(self._netfaulted):
            try:
                message = await asyncio.wait_for(
                    self.control.netfault(broker_id, "clear"), 10.0)
            except (ClusterControlError, OSError, TimeoutError) as exc:
                text = f"could not clear the network fault on broker {broker_id}: {exc}"
                self.summary.errors.append(text)
                self.emit("warning", text)
            else:
                self.emit("setup", f"end of run: {message}")
            self._netfaulted.discard(broker_id)

    async def _apply_network(self, fault: FaultSpec, target: int, label: str) -> str:
        extra = f" {fault.ms:g} ms" if fault.fault == "latency" else ""
        if self.fault_mode == CLUSTER_FAULTS:
            assert self.control is not None
            if fault.fault != "clear":
                self._netfaulted.add(target)  # before the request: cleared even if it hangs
            message = await self.control.netfault(
                target, fault.fault, fault.ms if fault.fault == "latency" else None)
            if fault.fault == "clear":
                self._netfaulted.discard(target)
            return f"network {fault.fault}{extra} on {label}: {message}"
        if self.proxies is None or target not in self.proxies:
            raise ValueError(f"no proxy for broker {target}")
        proxy = self.proxies[target]
        proxy.apply(fault.fault, fault.ms)
        return (f"network {fault.fault}{extra} on {label} (scenario clients only): "
                f"link now {proxy.describe()}")

    async def _apply(self, admin: AdminClient, fault: FaultSpec) -> str:
        target = await self.resolve(admin, fault)
        self._last_target = target
        what = fault.target_text()
        label = f"broker {target}" if what == f"broker {fault.broker}" else \
            f"{what} (broker {target})"
        if fault.is_network:
            return await self._apply_network(fault, target, label)
        if self.control is None:
            raise ValueError("process faults need the kaflab supervisor (--data-dir)")
        method: Any = getattr(self.control, fault.fault)
        message = await method(target)
        return f"{fault.fault} {label}: {message}"

    # progress and the end --------------------------------------------------------------
    async def _progress(self) -> None:
        n = 1
        while await self._sleep_until(n * self.progress_every):
            produced = sum(self._produced.values())
            consumed = ", ".join(f"{g}={c}" for g, c in self._consumed.items())
            self.emit("progress", f"produced {produced}" + (f"; consumed {consumed}"
                                                            if consumed else ""))
            n += 1

    async def _final_lag(self, admin: AdminClient) -> None:
        for spec in self.scenario.consumers:
            if spec.group in self.summary.lag:
                continue
            try:
                n = await self._num_partitions(admin, spec.topic)
                tps = [(spec.topic, p) for p in range(n)]
                committed = await admin.list_consumer_group_offsets(spec.group, tps)
                ends = await admin.list_offsets(tps, "latest")
                lag = 0
                for tp in tps:
                    end = ends[tp].offset if isinstance(ends[tp], OffsetResult) else 0
                    c = committed.get(tp)
                    lag += max(0, end - (c.offset if c is not None and c.offset >= 0 else 0))
                self.summary.lag[spec.group] = lag
            except (KafkaError, OSError, TimeoutError) as exc:
                self.summary.errors.append(f"lag of {spec.group}: {exc}")
