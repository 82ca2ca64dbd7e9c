"""A synthetic, in-memory cluster behind the Backend interface.

Used for screenshots, the GUI tick benchmark and model tests: it produces realistic
ClusterSnapshots (rates with noise, lag that moves, a controller, a quorum) and reacts to the
console's actions (create/delete topics, kill a broker -> leaders move and ISRs shrink, ...).
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from gui.bridge.backend import (
    BrowseSpec,
    Capabilities,
    ConfigEntry,
    ProduceReport,
    ProduceSpec,
    Progress,
    Record,
    ThrottleSpec,
    render_template,
)
from gui.bridge.types import (
    NETWORK_FAULTS,
    TOPIC_CONFIGS,
    BrokerInfo,
    ClusterSnapshot,
    GroupInfo,
    GroupOffset,
    MemberInfo,
    PartitionInfo,
    QuorumInfo,
    QuorumVoter,
    TopicInfo,
    frozen_items,
    with_faults,
)


@dataclass
class _Topic:
    name: str
    replicas: list[list[int]]
    leo: list[int]
    configs: dict[str, str] = field(default_factory=dict)
    rate: float = 0.0  # messages/s
    internal: bool = False


@dataclass
class _Group:
    group_id: str
    topic: str
    members: int
    committed: list[int]
    speed: float  # fraction of new records consumed per tick
    state: str = "Stable"


class DemoCluster:
    """A deterministic (seeded) evolving cluster; ``snapshot()`` advances it by one tick."""

    def __init__(self, brokers: int = 3, topics: int = 8, partitions: int = 6, groups: int = 4,
                 seed: int = 7, base_port: int = 9092, rates: bool = True) -> None:
        self.rng = random.Random(seed)
        self.base_port = base_port
        self.broker_ids = list(range(1, brokers + 1))
        self.state = dict.fromkeys(self.broker_ids, "running")
        self.pids = {b: 41000 + b * 17 for b in self.broker_ids}
        self.tick = 0
        self.t0 = 1_700_000_000.0
        self.topics: dict[str, _Topic] = {}
        self.groups: dict[str, _Group] = {}
        self.epochs: dict[tuple[str, int], int] = {}
        self.leaders: dict[tuple[str, int], int] = {}
        self.quorum_epoch = 3
        #: node -> demo time (s) of its last fetch from the quorum leader / last time caught
        #: up to the leader's log end (DescribeQuorum's KIP-836 times); frozen while down
        self.quorum_fetched: dict[int, float] = {}
        self.quorum_caught_up: dict[int, float] = {}
        self._quorum_rng = random.Random(seed + 836)  # apart from self.rng's sequence
        #: broker -> (mode or None, added latency ms): the supervisor's proxy faults
        self.netfaults: dict[int, tuple[str | None, float]] = {}
        #: broker -> (leader, follower) replication throttle, bytes/s
        self.throttles: dict[int, tuple[int | None, int | None]] = {}
        names = ["orders", "payments", "clickstream", "inventory", "audit-log", "user-events",
                 "notifications", "metrics.raw", "shipments", "search-queries", "sessions",
                 "recommendations"]
        for i in range(topics):
            name = names[i] if i < len(names) else f"topic-{i:04d}"
            self.add_topic(name, partitions, min(3, brokers),
                           rate=(self.rng.uniform(20, 900) if rates else 0.0))
        self.add_topic("__consumer_offsets", min(partitions, 10), min(3, brokers),
                       internal=True, rate=5.0 if rates else 0.0)
        group_names = ["order-service", "fraud-detector", "analytics-etl", "mailer",
                       "search-indexer", "billing"]
        topic_names = [t for t in self.topics if not t.startswith("__")]
        for i in range(groups):
            gid = group_names[i] if i < len(group_names) else f"group-{i:03d}"
            topic = topic_names[i % len(topic_names)]
            t = self.topics[topic]
            self.groups[gid] = _Group(gid, topic, members=1 + i % 3,
                                      committed=[max(0, x - self.rng.randint(0, 400))
                                                 for x in t.leo],
                                      speed=self.rng.uniform(0.6, 1.0),
                                      state="Empty" if i == 3 else "Stable")

    # -- mutations ----------------------------------------------------------------------------

    def add_topic(self, name: str, partitions: int, rf: int, configs: dict[str, str] | None = None,
                  rate: float = 0.0, internal: bool = False) -> None:
        n = len(self.broker_ids)
        offset = self.rng.randrange(n)
        replicas = [[self.broker_ids[(p + offset + r) % n] for r in range(rf)]
                    for p in range(partitions)]
        leo = [self.rng.randint(1_000, 200_000) if rate else 0 for _ in range(partitions)]
        self.topics[name] = _Topic(name, replicas, leo, dict(configs or {}), rate, internal)
        for p, reps in enumerate(replicas):
            self.leaders[(name, p)] = reps[0]
            self.epochs[(name, p)] = 0

    def alive(self, broker: int) -> bool:
        return self.state.get(broker) == "running"

    def _reelect(self) -> None:
        for t in self.topics.values():
            for p, reps in enumerate(t.replicas):
                leader = self.leaders[(t.name, p)]
                if leader >= 0 and self.alive(leader):
                    continue
                live = [r for r in reps if self.alive(r)]
                self.leaders[(t.name, p)] = live[0] if live else -1
                self.epochs[(t.name, p)] += 1

    def broker_action(self, action: str, broker: int | None) -> str:
        if action == "add":
            new = max(self.broker_ids) + 1
            self.broker_ids.append(new)
            self.state[new] = "running"
            self.pids[new] = 41000 + new * 17
            return f"broker {new} started"
        assert broker is not None
        if action in ("kill", "stop"):
            self.state[broker] = "killed" if action == "kill" else "stopped"
            self.pids[broker] = 0
        elif action == "pause":
            self.state[broker] = "paused"
        elif action in ("start", "resume", "restart"):
            self.state[broker] = "running"
            self.pids[broker] = self.pids.get(broker) or 52000 + broker
        self._reelect()
        return f"broker {broker}: {action} done"

    def network_fault(self, broker: int, fault: str, ms: int | None) -> str:
        """The supervisor's netfault: a mode and an added latency per broker, combined."""
        if broker not in self.state:
            raise ValueError(f"Unknown broker {broker}")
        if fault not in (*NETWORK_FAULTS, "clear"):
            raise ValueError(f"Unknown network fault {fault!r}")
        mode, latency = self.netfaults.get(broker, (None, 0.0))
        if fault == "clear":
            mode, latency = None, 0.0
        elif fault == "latency":
            if ms is None or ms < 0:
                raise ValueError("latency needs a delay in ms (>= 0)")
            latency = float(ms)
        else:
            mode = fault
        if mode is None and not latency:
            self.netfaults.pop(broker, None)
            return f"broker {broker}: network healthy"
        self.netfaults[broker] = (mode, latency)
        text = ", ".join(x for x in (mode, f"+{latency:g} ms" if latency else "") if x)
        return f"broker {broker}: {text}"

    def cut_off(self, broker: int) -> bool:
        """Its followers cannot fetch: isolated, blackholed or dropped."""
        return self.netfaults.get(broker, (None, 0.0))[0] in ("isolate", "blackhole", "drop")

    def elect_preferred(self, topic: str) -> int:
        moved = 0
        t = self.topics[topic]
        for p, reps in enumerate(t.replicas):
            if self.alive(reps[0]) and self.leaders[(topic, p)] != reps[0]:
                self.leaders[(topic, p)] = reps[0]
                self.epochs[(topic, p)] += 1
                moved += 1
        return moved

    # -- snapshots ----------------------------------------------------------------------------

    def snapshot(self, advance: bool = True) -> ClusterSnapshot:
        if advance:
            self.tick += 1
        now = self.t0 + self.tick
        wave = 1.0 + 0.35 * math.sin(self.tick / 9.0)
        per_broker_msgs = dict.fromkeys(self.broker_ids, 0.0)
        led = dict.fromkeys(self.broker_ids, 0)
        urp = dict.fromkeys(self.broker_ids, 0)
        offline_count = dict.fromkeys(self.broker_ids, 0)
        topics: list[TopicInfo] = []
        rng = self.rng
        for t in sorted(self.topics.values(), key=lambda x: x.name):
            parts: list[PartitionInfo] = []
            n = len(t.replicas)
            msgs = t.rate * wave * rng.uniform(0.85, 1.15) if t.rate else 0.0
            for p, reps in enumerate(t.replicas):
                leader = self.leaders[(t.name, p)]
                if advance and leader >= 0 and msgs:
                    t.leo[p] += int(msgs / n) + rng.randint(0, 3)
                isr = tuple(r for r in reps if self.alive(r) and (
                    r == leader or not self.cut_off(r))) if leader >= 0 else ()
                offline = tuple(r for r in reps if self.state.get(r) in
                                ("killed", "stopped", "crashed"))
                lag = tuple((r, 0 if self.alive(r) and rng.random() > 0.15
                             else (rng.randint(1, 40) if self.alive(r) else t.leo[p] % 997))
                            for r in reps if r != leader) if leader >= 0 else ()
                lso = t.leo[p] // 10
                parts.append(PartitionInfo(
                    topic=t.name, partition=p, leader=leader,
                    leader_epoch=self.epochs[(t.name, p)], replicas=tuple(reps), isr=isr,
                    offline_replicas=offline, log_start_offset=lso, log_end_offset=t.leo[p],
                    high_watermark=t.leo[p], replica_lag=frozen_items(lag),
                    size_bytes=(t.leo[p] - lso) * 180))
                if leader >= 0:
                    led[leader] += 1
                    per_broker_msgs[leader] += msgs / n
                    if len(isr) < len(reps):
                        urp[leader] += 1
                else:
                    for r in reps:
                        offline_count[r] = offline_count.get(r, 0) + 1
            records = sum(x.records or 0 for x in parts)
            topics.append(TopicInfo(
                name=t.name, internal=t.internal, partitions=tuple(parts),
                configs=frozen_items(t.configs), records=records,
                size_bytes=sum(x.size_bytes or 0 for x in parts),
                messages_in_per_sec=msgs, bytes_in_per_sec=msgs * 180,
                bytes_out_per_sec=msgs * 180 * 1.8,
                under_replicated=any(x.under_replicated for x in parts)))
        controller = next((b for b in self.broker_ids[:3] if self.alive(b)), None)
        for b, (mode, latency) in self.netfaults.items():  # slower or cut-off clients
            if b in per_broker_msgs:
                per_broker_msgs[b] *= (0.05 if mode in ("drop", "blackhole")
                                       else 1.0 / (1.0 + latency / 100.0))
        brokers = tuple(BrokerInfo(
            id=b, host="127.0.0.1", port=self.base_port + b - 1,
            is_controller=(b == controller), state=self.state[b],
            pid=self.pids[b] or None,
            cpu_percent=(rng.uniform(4, 28) if self.alive(b) else None),
            memory_bytes=(int(rng.uniform(90, 140) * 2**20) if self.state[b] != "killed"
                          and self.state[b] != "stopped" else None),
            partitions_led=led.get(b, 0), under_replicated=urp.get(b, 0),
            offline=offline_count.get(b, 0),
            messages_in_per_sec=per_broker_msgs.get(b, 0.0) if self.alive(b) else None,
            bytes_in_per_sec=per_broker_msgs.get(b, 0.0) * 180 if self.alive(b) else None,
            bytes_out_per_sec=per_broker_msgs.get(b, 0.0) * 320 if self.alive(b) else None,
        ) for b in self.broker_ids)
        brokers = tuple(with_faults(
            b, network_mode=self.netfaults.get(b.id, (None, 0.0))[0],
            network_latency_ms=self.netfaults.get(b.id, (None, 0.0))[1],
            leader_throttle_bps=self.throttles.get(b.id, (None, None))[0],
            follower_throttle_bps=self.throttles.get(b.id, (None, None))[1]) for b in brokers)
        groups = tuple(self._group(g) for g in sorted(self.groups.values(),
                                                       key=lambda x: x.group_id))
        fetching = self._quorum_times(now, controller)
        voters = tuple(self._quorum_voter(b, fetching) for b in self.broker_ids[:3])
        observers = tuple(self._quorum_voter(b, fetching) for b in self.broker_ids[3:])
        quorum = QuorumInfo(leader_id=controller if controller is not None else -1,
                            epoch=self.quorum_epoch, high_watermark=1200 + self.tick * 2,
                            voters=voters, observers=observers)
        return ClusterSnapshot(
            taken_at=now, cluster_id="kaflab-demo-7Hq2", controller_id=controller,
            brokers=brokers, topics=tuple(topics), groups=groups, quorum=quorum,
            bootstrap=",".join(f"127.0.0.1:{self.base_port + b - 1}" for b in self.broker_ids[:3]),
            poll_duration_s=0.012)

    def _quorum_times(self, now: float, leader: int | None) -> set[int]:
        """Advance the quorum's fetch / caught-up times to ``now``; returns the nodes that
        fetch from the leader (the others' times stay where they were: they grow old)."""
        fetching: set[int] = set()
        if leader is None or self.cut_off(leader):
            return fetching
        rng = self._quorum_rng
        for b in self.broker_ids:
            if b == leader:  # the leader reports the time of its answer for itself
                self.quorum_fetched[b] = self.quorum_caught_up[b] = now
                fetching.add(b)
            elif self.alive(b) and not self.cut_off(b):
                fetched = now - rng.uniform(0.02, 0.45)  # long-poll fetches, ~every 0.5 s
                self.quorum_fetched[b] = fetched
                self.quorum_caught_up[b] = fetched - (rng.uniform(0.0, 0.6)
                                                      if rng.random() < 0.2 else 0.0)
                fetching.add(b)
        return fetching

    def _quorum_voter(self, b: int, fetching: set[int]) -> QuorumVoter:
        behind = 0 if b in fetching else 40

        def ms(t: float | None) -> int | None:
            return None if t is None else round(t * 1000)

        return QuorumVoter(id=b, log_end_offset=1200 + self.tick * 2 - behind, lag=behind,
                           last_fetch_timestamp=ms(self.quorum_fetched.get(b)),
                           last_caught_up_timestamp=ms(self.quorum_caught_up.get(b)))

    def _group(self, g: _Group) -> GroupInfo:
        t = self.topics.get(g.topic)
        if t is None:
            return GroupInfo(group_id=g.group_id, state="Empty", protocol_type="consumer")
        n = len(t.leo)
        if g.state == "Stable":
            for p in range(n):
                if p < len(g.committed):
                    behind = t.leo[p] - g.committed[p]
                    g.committed[p] += int(behind * g.speed)
        members = tuple(MemberInfo(
            member_id=f"{g.group_id}-{i}-5b1e0c7a", client_id=f"{g.group_id}-client",
            host=f"/10.0.0.{10 + i}",
            assignment=tuple((g.topic, p) for p in range(n) if p % g.members == i))
            for i in range(g.members)) if g.state == "Stable" else ()
        offsets = tuple(GroupOffset(
            topic=g.topic, partition=p, committed=g.committed[p], log_end_offset=t.leo[p],
            lag=t.leo[p] - g.committed[p],
            owner=(members[p % len(members)].member_id if members else None))
            for p in range(min(n, len(g.committed))))
        return GroupInfo(group_id=g.group_id, state=g.state, protocol_type="consumer",
                         protocol="range" if g.state == "Stable" else "",
                         members=members, offsets=offsets,
                         total_lag=sum(o.lag or 0 for o in offsets), coordinator_id=1)


class DemoBackend:
    """Backend over a :class:`DemoCluster` (see gui.bridge.backend.Backend)."""

    def __init__(self, cluster: DemoCluster | None = None, supervised: bool = True,
                 delay: float = 0.0) -> None:
        self.cluster = cluster or DemoCluster()
        self.delay = delay
        bootstrap = self.cluster.snapshot(advance=False).bootstrap
        self.capabilities = Capabilities(
            bootstrap=bootstrap, supervised=supervised, data_dir=None,
            reason="" if supervised else "Attached to an external cluster: no supervisor",
            network_faults=supervised)
        self._records: dict[tuple[str, int], list[Record]] = {}

    async def open(self, progress: Callable[[str, float], None]) -> Capabilities:
        for i, step in enumerate(("Starting brokers", "Electing the controller", "Ready")):
            progress(step, (i + 1) / 3)
            await asyncio.sleep(self.delay)
        return self.capabilities

    async def close(self, stop_cluster: bool) -> None:
        return None

    async def snapshot(self) -> ClusterSnapshot:
        await asyncio.sleep(self.delay)
        return self.cluster.snapshot()

    async def create_topic(self, name: str, partitions: int, replication_factor: int,
                           configs: dict[str, str]) -> None:
        if name in self.cluster.topics:
            raise ValueError(f"Topic '{name}' already exists.")
        if replication_factor > len(self.cluster.broker_ids):
            raise ValueError(f"Replication factor: {replication_factor} larger than available "
                             f"brokers: {len(self.cluster.broker_ids)}.")
        self.cluster.add_topic(name, partitions, replication_factor, configs)

    async def delete_topic(self, name: str) -> None:
        self.cluster.topics.pop(name)

    async def create_partitions(self, name: str, total: int) -> None:
        t = self.cluster.topics[name]
        n = len(self.cluster.broker_ids)
        rf = len(t.replicas[0])
        for p in range(len(t.replicas), total):
            reps = [self.cluster.broker_ids[(p + r) % n] for r in range(rf)]
            t.replicas.append(reps)
            t.leo.append(0)
            self.cluster.leaders[(name, p)] = reps[0]
            self.cluster.epochs[(name, p)] = 0

    async def describe_topic_configs(self, name: str) -> list[ConfigEntry]:
        t = self.cluster.topics[name]
        return [ConfigEntry(n, t.configs.get(n, d.default), n not in t.configs,
                            "TOPIC_CONFIG" if n in t.configs else "DEFAULT_CONFIG", doc=d.doc)
                for n, d in sorted(TOPIC_CONFIGS.items())]

    async def alter_topic_configs(self, name: str, set_: dict[str, str],
                                  delete: list[str]) -> None:
        t = self.cluster.topics[name]
        t.configs.update(set_)
        for key in delete:
            t.configs.pop(key, None)

    async def elect_preferred_leaders(self, topic: str, partitions: list[int] | None) -> str:
        moved = self.cluster.elect_preferred(topic)
        return f"{moved} partition(s) moved to their preferred leader"

    async def delete_group(self, group_id: str) -> None:
        self.cluster.groups.pop(group_id)

    async def reset_offsets(self, group_id: str, topic: str, partitions: list[int] | None,
                            to: str, value: int | None) -> dict[int, int]:
        g = self.cluster.groups[group_id]
        t = self.cluster.topics[topic]
        result = {}
        for p in partitions or range(len(t.leo)):
            target = {"earliest": t.leo[p] // 10, "latest": t.leo[p]}.get(to, value or 0)
            g.committed[p] = target
            result[p] = target
        return result

    async def broker_action(self, action: str, broker_id: int | None) -> str:
        await asyncio.sleep(self.delay)
        return self.cluster.broker_action(action, broker_id)

    async def network_fault(self, broker_id: int, fault: str, ms: int | None) -> str:
        await asyncio.sleep(self.delay)
        if not self.capabilities.network_faults:
            raise ValueError(self.capabilities.network_reason or "No fault proxies")
        return self.cluster.network_fault(broker_id, fault, ms)

    async def set_replication_throttle(self, broker_id: int, spec: ThrottleSpec) -> str:
        await asyncio.sleep(self.delay)
        if spec.leader_bps is None and spec.follower_bps is None:
            raise ValueError("Give a leader or a follower rate (or clear the throttle).")
        for bps in (spec.leader_bps, spec.follower_bps):
            if bps is not None and bps <= 0:
                raise ValueError(f"A throttle rate must be positive, got {bps}")
        self.cluster.throttles[broker_id] = (spec.leader_bps, spec.follower_bps)
        return f"Broker {broker_id}: replication throttled"

    async def clear_replication_throttle(self, broker_id: int) -> str:
        await asyncio.sleep(self.delay)
        self.cluster.throttles.pop(broker_id, None)
        return f"Broker {broker_id}: throttle cleared"

    async def produce(self, spec: ProduceSpec, progress: Progress) -> ProduceReport:
        t = self.cluster.topics[spec.topic]
        report = ProduceReport(requested=spec.count)
        started = time.monotonic()
        for i in range(spec.count):
            p = spec.partition if spec.partition is not None else i % len(t.leo)
            now_ms = int(time.time() * 1000)
            rec = Record(spec.topic, p, t.leo[p], now_ms,
                         render_template(spec.key, i, random, now_ms).encode() or None,
                         render_template(spec.value, i, random, now_ms).encode(),
                         tuple((k, v.encode()) for k, v in spec.headers))
            self._records.setdefault((spec.topic, p), []).append(rec)
            first, _ = report.offsets.get(p, (t.leo[p], t.leo[p]))
            report.offsets[p] = (first, t.leo[p])
            t.leo[p] += 1
            report.delivered += 1
            if i % 100 == 0 or i == spec.count - 1:
                progress(i + 1, spec.count)
                await asyncio.sleep(0)
        report.elapsed_s = time.monotonic() - started
        return report

    async def browse(self, spec: BrowseSpec) -> list[Record]:
        t = self.cluster.topics[spec.topic]
        parts = [spec.partition] if spec.partition is not None else range(len(t.leo))
        out: list[Record] = []
        for p in parts:
            stored = self._records.get((spec.topic, p))
            if stored:
                out.extend(stored[-spec.limit:])
                continue
            end = t.leo[p]
            for off in range(max(0, end - min(spec.value, 20)), end):
                body = (f'{{"id": {off}, "partition": {p}, "amount": {off % 97}.5, '
                        f'"currency": "EUR", "status": "{("NEW", "PAID", "SHIPPED")[off % 3]}"}}')
                out.append(Record(spec.topic, p, off, int(self.cluster.t0 * 1000) + off,
                                  f"customer-{off % 50}".encode(), body.encode(),
                                  (("source", b"web"), ("trace-id", f"{off:08x}".encode()))))
        out.sort(key=lambda r: (r.timestamp_ms, r.partition, r.offset))
        return out[-spec.limit:]

    async def tail(self, topic: str, partition: int | None,
                   positions: dict[int, int] | None) -> tuple[list[Record], dict[int, int]]:
        await asyncio.sleep(0.5)
        return [], dict(positions or {})
