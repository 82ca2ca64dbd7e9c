"""Chaos harness: a seeded nemesis against a real `serve` cluster under an acks=all workload.

    python -m tests.faults.harness --minutes 10 --brokers 5 --seed 7 --report docs/reliability.md

Workload: idempotent, acks=all confluent-kafka producers (one thread each) write unique values
`"<producer>:<seq>"` to every partition of RF=3, min.insync.replicas=2 topics, while a consumer
group (several members, auto commit) reads them. The nemesis follows a schedule drawn from
`random.Random(seed)`: the sequence of fault kinds, their hold times and the gaps between them are
fixed by the seed; the *targets* (leader of a busy partition, active controller, a follower) are
resolved from the live cluster when the fault fires, by indexes also drawn from the seed.

Faults (at most one broker is faulty at a time, which is what DESIGN.md "Guarantees" covers):

- kill_leader       SIGKILL the leader of a busy partition; restarted after a hold time
- kill_controller   SIGKILL the active controller; restarted after a hold time
- pause_follower    SIGSTOP a follower of a busy partition, SIGCONT after a hold time
- pause_controller  SIGSTOP the active controller, SIGCONT after a hold time
- isolate_broker    a network partition of one broker: `ctl netfault N isolate` through the
                    supervisor's fault proxies stalls every link between N and the other brokers
                    (replication, Raft, heartbeats; both ways) for longer than the session /
                    replica-lag timeouts, while N keeps running and clients still reach it; then
                    `netfault N clear`.
- restart           controlled restart (SIGTERM, clean shutdown, start) of one broker
- rolling_restart   controlled restart of every broker in turn, waiting for full ISRs between

After every fault the nemesis waits (bounded) until every partition has its full ISR again.
When the time is up: faults stop, producers flush, the group's lag must return to 0, and a fresh
assign()-based reader reads every partition from offset 0. The checker then requires: every
acknowledged value read; per partition offsets 0..n-1 contiguous; per (partition, producer) values
in produce order; no value twice. Values whose delivery was reported failed may or may not be
in the log and are never counted as lost. Unavailability: for each injected fault, the longest
stretch without any acknowledgement on a partition between the fault and the next one.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import random
import signal
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `python tests/faults/harness.py` as well as `-m`
    sys.path.insert(0, str(ROOT))

from core.cluster.client import ClusterControl, ClusterControlError  # noqa: E402
from core.cluster.local import LocalCluster, free_base_port  # noqa: E402

FAULT_KINDS = ("kill_leader", "kill_controller", "pause_follower", "pause_controller",
               "isolate_broker", "restart", "rolling_restart")

#: relative frequency of each fault kind in the schedule
WEIGHTS = {"kill_leader": 3, "kill_controller": 2, "pause_follower": 2, "pause_controller": 2,
           "isolate_broker": 2, "restart": 2, "rolling_restart": 1}

CLUSTER_CONFIG = {
    "min.insync.replicas": "2",
    "replica.lag.time.max.ms": "3000",
    "offsets.topic.num.partitions": "3",
    "group.initial.rebalance.delay.ms": "0",
    "auto.create.topics.enable": "false",
}

TOPICS = {"chaos-a": 4, "chaos-b": 2}


@dataclasses.dataclass
class Fault:
    """One scheduled fault: kind, hold time (s), quiet gap after recovery (s), target picks."""

    kind: str
    hold: float
    gap: float
    pick: int
    injected_at: float = 0.0
    healed_at: float = 0.0
    recovered_at: float = 0.0
    target: int | None = None
    note: str = ""


def schedule(seed: int, count: int = 400) -> list[Fault]:
    """The seeded fault sequence (the run uses as many as fit in its duration).

    The first faults are a seeded permutation of every kind; then kinds are drawn by WEIGHTS.
    """
    rng = random.Random(seed)
    kinds = list(WEIGHTS)
    weights = [WEIGHTS[k] for k in kinds]
    faults = []
    first = list(FAULT_KINDS)
    rng.shuffle(first)  # every kind early, so that short runs cover them all
    for i in range(count):
        kind = first[i] if i < len(first) else rng.choices(kinds, weights)[0]
        hold = rng.uniform(8.0, 14.0) if kind == "isolate_broker" else rng.uniform(2.0, 6.0)
        faults.append(Fault(kind, round(hold, 2), round(rng.uniform(1.0, 4.0), 2),
                            rng.randrange(1 << 30)))
    return faults


def log(msg: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --------------------------------------------------------------------------------- workload


class ProducerWorker:
    """One idempotent acks=all producer thread writing "<id>:<seq>" round-robin to partitions."""

    def __init__(self, ident: int, bootstrap: str, partitions: list[tuple[str, int]],
                 rate: float) -> None:
        self.ident = ident
        self.bootstrap = bootstrap
        self.partitions = partitions
        self.interval = 1.0 / rate
        self.seq = 0
        #: (topic, partition) -> acknowledged seqs, in ack order; and their ack times
        self.acked: dict[tuple[str, int], list[int]] = defaultdict(list)
        self.ack_times: dict[tuple[str, int], list[float]] = defaultdict(list)
        self.failed: dict[tuple[str, int], set[int]] = defaultdict(set)
        self.errors: dict[str, int] = defaultdict(int)
        self.fatal = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"producer-{ident}")
        self.producer = self._new_producer()

    def _new_producer(self) -> Producer:
        return Producer({"bootstrap.servers": self.bootstrap, "acks": "all",
                         "enable.idempotence": True, "linger.ms": 5,
                         "message.timeout.ms": 120000, "socket.timeout.ms": 10000,
                         "queue.buffering.max.messages": 20000,
                         "error_cb": self._on_error})

    def _on_error(self, err: KafkaError) -> None:
        self.errors[err.name()] += 1
        if err.fatal():
            self.fatal += 1

    def _on_delivery(self, err: KafkaError | None, msg: Any) -> None:
        key = (msg.topic(), msg.partition())
        seq = int(msg.value().split(b":", 1)[1])
        if err is not None:
            self.failed[key].add(seq)
            self.errors[err.name()] += 1
        else:
            self.acked[key].append(seq)
            self.ack_times[key].append(time.monotonic())

    def _run(self) -> None:
        index = 0
        next_at = time.monotonic()
        while not self._stop.is_set():
            topic, partition = self.partitions[index % len(self.partitions)]
            value = f"{self.ident}:{self.seq}".encode()
            try:
                self.producer.produce(topic, value=value, partition=partition,
                                      on_delivery=self._on_delivery)
            except BufferError:
                self.producer.poll(0.05)
                continue
            except KafkaException as exc:
                self.errors[f"produce:{exc.args[0].name()}"] += 1
                if exc.args[0].fatal():  # fatal idempotence error: a new producer (new pid)
                    self.producer.flush(30)
                    self.producer = self._new_producer()
                else:  # e.g. _UNKNOWN_TOPIC from stale metadata mid-fault: retry the record
                    self.producer.poll(0.1)
                continue
            self.seq += 1
            index += 1
            self.producer.poll(0)
            next_at += self.interval
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif delay < -1.0:
                next_at = time.monotonic()
        remaining = self.producer.flush(120)
        if remaining:
            self.errors["unflushed_at_end"] += remaining

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(150)

    def acked_count(self) -> int:
        return sum(len(v) for v in self.acked.values())


class GroupMember:
    """A consumer-group member (subscribe, auto commit) reading during the faults."""

    def __init__(self, bootstrap: str, group: str, topics: list[str]) -> None:
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                                  "auto.offset.reset": "earliest", "enable.auto.commit": True,
                                  "auto.commit.interval.ms": 500,
                                  "session.timeout.ms": 10000, "check.crcs": True})
        self.topics = topics
        self.values: set[tuple[str, int, bytes]] = set()
        self.deliveries = 0
        self.errors: dict[str, int] = defaultdict(int)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.consumer.subscribe(self.topics)
        while not self._stop.is_set():
            try:
                msgs = self.consumer.consume(500, 0.5)
            except KafkaException as exc:
                self.errors[str(exc.args[0].name())] += 1
                continue
            for msg in msgs:
                if msg.error():
                    self.errors[msg.error().name()] += 1
                    continue
                self.deliveries += 1
                self.values.add((msg.topic(), msg.partition(), msg.value()))
        with contextlib.suppress(Exception):
            self.consumer.commit(asynchronous=False)
        self.consumer.close()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)


# --------------------------------------------------------------------------------- cluster view


class ClusterView:
    """Leaders, ISRs and the controller, from an admin client and the supervisor."""

    def __init__(self, bootstrap: str, control: ClusterControl, brokers: int) -> None:
        self.admin = AdminClient({"bootstrap.servers": bootstrap})
        self.control = control
        self.brokers = list(range(1, brokers + 1))

    def partitions(self) -> dict[tuple[str, int], tuple[int, list[int], list[int]]]:
        """(topic, partition) -> (leader, replicas, isr) for the chaos topics."""
        md = self.admin.list_topics(timeout=10)
        out = {}
        for topic in TOPICS:
            for p, meta in md.topics[topic].partitions.items():
                out[(topic, p)] = (meta.leader, list(meta.replicas), list(meta.isrs))
        return out

    def controller(self) -> int:
        status = self.control.status_sync()
        cid = status.get("controller_id", -1)
        if cid in (None, -1):
            cid = self.admin.list_topics(timeout=10).controller_id
        return int(cid)

    def states(self) -> dict[int, str]:
        return {int(b["id"]): b["state"] for b in self.control.status_sync()["brokers"]}

    def healthy(self) -> bool:
        """Every broker running and every partition led with its full ISR."""
        if any(s != "running" for s in self.states().values()):
            return False
        parts = self.partitions()
        return all(leader > 0 and len(isr) == len(replicas)
                   for leader, replicas, isr in parts.values())

    def wait_healthy(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.healthy():
                    return True
            except Exception:  # metadata may be unavailable mid-fault
                pass
            time.sleep(0.5)
        return False


# --------------------------------------------------------------------------------- nemesis


class Nemesis:
    """Runs the seeded schedule until `deadline`; records what it did and when."""

    def __init__(self, view: ClusterView, faults: list[Fault], recover_timeout: float = 90.0,
                 busy: Callable[[], list[tuple[str, int]]] | None = None,
                 stop: threading.Event | None = None) -> None:
        self.stop = stop or threading.Event()
        self.view = view
        self.control = view.control
        self.faults = faults
        self.recover_timeout = recover_timeout
        self.done: list[Fault] = []
        self.unrecovered: list[Fault] = []
        self.busy = busy or (lambda: sorted(view.partitions()))

    def run(self, deadline: float) -> None:
        for fault in self.faults:
            if time.monotonic() >= deadline or self.stop.is_set():
                break
            try:
                self._inject(fault)
            except (ClusterControlError, KafkaException, KeyError) as exc:
                fault.note = f"{fault.note} error: {exc}".strip()
                log(f"{fault.kind}: {exc}")
                self._heal_everything()
            self.done.append(fault)
            ok = self.view.wait_healthy(self.recover_timeout)
            fault.recovered_at = time.monotonic()
            if not ok:
                self.unrecovered.append(fault)
                log(f"{fault.kind} target {fault.target}: cluster not healthy after "
                    f"{self.recover_timeout:.0f}s; healing")
                self._heal_everything()
                self.view.wait_healthy(self.recover_timeout)
            self.stop.wait(fault.gap)

    def _heal_everything(self) -> None:
        for broker_id, state in self.view.states().items():
            with contextlib.suppress(ClusterControlError):
                self.control.netfault_sync(broker_id, "clear")
            with contextlib.suppress(ClusterControlError):
                if state == "paused":
                    self.control.resume_sync(broker_id)
                elif state not in ("running", "starting"):
                    self.control.start_sync(broker_id)

    def _busy_partition(self, pick: int) -> tuple[str, int]:
        parts = self.busy()
        return parts[pick % len(parts)]

    def _inject(self, fault: Fault) -> None:
        kind, pick = fault.kind, fault.pick
        parts = self.view.partitions()
        if kind in ("kill_leader", "pause_follower"):
            tp = self._busy_partition(pick)
            leader, replicas, isr = parts[tp]
            if kind == "kill_leader":
                fault.target = leader
            else:
                followers = [b for b in isr if b != leader] or [b for b in replicas
                                                                if b != leader]
                fault.target = followers[(pick >> 8) % len(followers)]
            fault.note = f"{tp[0]}-{tp[1]}"
        elif kind in ("kill_controller", "pause_controller"):
            fault.target = self.view.controller()
        elif kind in ("isolate_broker", "restart"):
            fault.target = self.view.brokers[pick % len(self.view.brokers)]
        log(f"inject {kind} target={fault.target} {fault.note} hold={fault.hold}s")
        fault.injected_at = time.monotonic()
        if kind in ("kill_leader", "kill_controller"):
            self.control.kill_sync(fault.target)
            self.stop.wait(fault.hold)
            fault.healed_at = time.monotonic()
            self.control.start_sync(fault.target)
        elif kind in ("pause_follower", "pause_controller"):
            self.control.pause_sync(fault.target)
            try:
                self.stop.wait(fault.hold)
            finally:
                fault.healed_at = time.monotonic()
                self.control.resume_sync(fault.target)
        elif kind == "isolate_broker":
            self.control.netfault_sync(fault.target, "isolate")
            try:
                self.stop.wait(fault.hold)
            finally:
                fault.healed_at = time.monotonic()
                self.control.netfault_sync(fault.target, "clear")
        elif kind == "restart":
            self.control.restart_sync(fault.target)
            fault.healed_at = time.monotonic()
        elif kind == "rolling_restart":
            for broker_id in self.view.brokers:
                if self.stop.is_set():
                    break
                self.control.restart_sync(broker_id)
                if not self.view.wait_healthy(self.recover_timeout):
                    fault.note += f" not healthy after restarting {broker_id};"
            fault.healed_at = time.monotonic()


# --------------------------------------------------------------------------------- checker


@dataclasses.dataclass
class Verdict:
    acknowledged: int = 0
    failed_reported: int = 0
    read: int = 0
    verified: int = 0
    lost: int = 0
    duplicated: int = 0
    out_of_order: int = 0
    offset_gaps: int = 0
    failed_but_written: int = 0
    group_missing: int = 0
    group_deliveries: int = 0
    final_lag: int = -1
    problems: list[str] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (not self.lost and not self.duplicated and not self.out_of_order
                and not self.offset_gaps and self.final_lag == 0 and not self.group_missing)


def read_all(bootstrap: str, expected: dict[tuple[str, int], int],
             timeout: float = 120.0) -> dict[tuple[str, int], list[tuple[int, bytes]]]:
    """(offset, value) of every record of every partition, read with assign() from offset 0."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "chaos-verify",
                         "enable.auto.commit": False, "check.crcs": True,
                         "enable.partition.eof": True})
    ends = {}
    for (topic, p) in expected:
        _low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=15)
        ends[(topic, p)] = high
    consumer.assign([TopicPartition(t, p, 0) for (t, p) in expected])
    out: dict[tuple[str, int], list[tuple[int, bytes]]] = {tp: [] for tp in expected}
    done = {tp for tp, end in ends.items() if end == 0}
    deadline = time.monotonic() + timeout
    while len(done) < len(expected) and time.monotonic() < deadline:
        for msg in consumer.consume(2000, 0.5):
            tp = (msg.topic(), msg.partition())
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    if msg.offset() >= ends[tp]:
                        done.add(tp)
                    continue
                raise KafkaException(err)
            out[tp].append((msg.offset(), msg.value()))
            if msg.offset() + 1 >= ends[tp]:
                done.add(tp)
    consumer.close()
    return out


def group_lag(bootstrap: str, group: str, partitions: list[tuple[str, int]]) -> int:
    """Sum over partitions of (high watermark - committed offset) of `group`."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                         "enable.auto.commit": False})
    try:
        committed = consumer.committed([TopicPartition(t, p) for t, p in partitions],
                                       timeout=15)
        lag = 0
        for tp in committed:
            _low, high = consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition),
                                                        timeout=15)
            lag += high - max(tp.offset, 0)
        return lag
    finally:
        consumer.close()


def check(producers: list[ProducerWorker], log_records: dict[tuple[str, int], list[tuple[int,
          bytes]]], members: list[GroupMember]) -> Verdict:
    """Compare what was acknowledged with what the log holds (and the group saw)."""
    v = Verdict()
    group_seen: set[tuple[str, int, bytes]] = set()
    for m in members:
        group_seen |= m.values
        v.group_deliveries += m.deliveries
    for tp, records in log_records.items():
        offsets = [o for o, _ in records]
        if offsets != list(range(len(offsets))):
            v.offset_gaps += 1
            v.problems.append(f"{tp}: offsets not contiguous from 0 ({len(offsets)} records)")
        seen: set[bytes] = set()
        last_seq: dict[int, int] = {}
        for _offset, value in records:
            if value in seen:
                v.duplicated += 1
                if v.duplicated <= 5:
                    v.problems.append(f"{tp}: duplicate {value!r}")
            seen.add(value)
            ident, seq = (int(x) for x in value.split(b":"))
            if seq <= last_seq.get(ident, -1):
                v.out_of_order += 1
                if v.out_of_order <= 5:
                    v.problems.append(f"{tp}: {value!r} after seq {last_seq[ident]}")
            last_seq[ident] = max(seq, last_seq.get(ident, -1))
        v.read += len(records)
        for prod in producers:
            for seq in prod.acked.get(tp, []):
                v.acknowledged += 1
                value = f"{prod.ident}:{seq}".encode()
                if value in seen:
                    v.verified += 1
                else:
                    v.lost += 1
                    if v.lost <= 5:
                        v.problems.append(f"{tp}: acknowledged {value!r} lost")
                if (tp[0], tp[1], value) not in group_seen:
                    v.group_missing += 1
            for seq in prod.failed.get(tp, set()):
                v.failed_reported += 1
                if f"{prod.ident}:{seq}".encode() in seen:
                    v.failed_but_written += 1
    return v


def unavailability(faults: list[Fault], producers: list[ProducerWorker],
                   end: float) -> dict[str, dict[str, float]]:
    """Per fault kind: count and the longest no-ack stretch of any partition after a fault."""
    times: dict[tuple[str, int], list[float]] = defaultdict(list)
    for prod in producers:
        for tp, ts in prod.ack_times.items():
            times[tp].extend(ts)
    for ts in times.values():
        ts.sort()
    result: dict[str, dict[str, float]] = {}
    injected = [f for f in faults if f.injected_at]
    for i, fault in enumerate(injected):
        until = injected[i + 1].injected_at if i + 1 < len(injected) else end
        worst = 0.0
        for ts in times.values():
            prev = fault.injected_at
            for t in ts:
                if t <= fault.injected_at:
                    continue
                if t > until:
                    break
                worst = max(worst, t - prev)
                prev = t
            worst = max(worst, min(until, end) - prev if prev < until else 0.0)
        entry = result.setdefault(fault.kind, {"count": 0, "max_unavailable_s": 0.0,
                                               "sum_unavailable_s": 0.0})
        entry["count"] += 1
        entry["max_unavailable_s"] = max(entry["max_unavailable_s"], worst)
        entry["sum_unavailable_s"] += worst
    return result


# --------------------------------------------------------------------------------- the run


@dataclasses.dataclass
class RunResult:
    seed: int
    brokers: int
    seconds: float
    verdict: Verdict
    faults: list[Fault]
    unavailable: dict[str, dict[str, float]]
    unrecovered: list[Fault]
    producer_errors: dict[str, int]
    consumer_errors: dict[str, int]
    fatal_producer_errors: int
    command: str = ""

    def summary(self) -> dict[str, Any]:
        v = self.verdict
        return {"seed": self.seed, "brokers": self.brokers, "seconds": round(self.seconds),
                "faults": len(self.faults), "acknowledged": v.acknowledged, "read": v.read,
                "verified": v.verified, "lost": v.lost, "duplicated": v.duplicated,
                "out_of_order": v.out_of_order, "offset_gaps": v.offset_gaps,
                "failed_reported": v.failed_reported,
                "failed_but_written": v.failed_but_written, "final_lag": v.final_lag,
                "group_missing": v.group_missing, "group_deliveries": v.group_deliveries,
                "unrecovered": len(self.unrecovered),
                "unavailable": {k: {"count": e["count"],
                                    "max_s": round(e["max_unavailable_s"], 2)}
                                for k, e in self.unavailable.items()},
                "problems": v.problems[:20]}


def run_chaos(data_dir: Path, *, seconds: float, seed: int, brokers: int = 3,
              producers: int = 2, rate: float = 300.0, members: int = 2,
              recover_timeout: float = 90.0, stop: threading.Event | None = None) -> RunResult:
    """Start a cluster, run workload + nemesis for `seconds`, stop everything, check."""
    cluster = LocalCluster(data_dir, brokers=brokers, port=free_base_port(brokers),
                           config=CLUSTER_CONFIG, ready_timeout=120, stop_timeout=60)
    cluster.start()
    workers: list[ProducerWorker] = []
    group: list[GroupMember] = []
    try:
        assert cluster.bootstrap is not None
        bootstrap = cluster.bootstrap
        admin = AdminClient({"bootstrap.servers": bootstrap})
        futures = admin.create_topics([NewTopic(t, n, 3, config={"min.insync.replicas": "2"})
                                       for t, n in TOPICS.items()])
        for future in futures.values():
            future.result(30)
        partitions = [(t, p) for t, n in TOPICS.items() for p in range(n)]
        view = ClusterView(bootstrap, cluster.control, brokers)
        if not view.wait_healthy(60):
            raise RuntimeError("cluster not healthy before the run")
        workers = [ProducerWorker(i, bootstrap, partitions, rate) for i in range(producers)]
        group = [GroupMember(bootstrap, "chaos-group", list(TOPICS)) for _ in range(members)]
        for w in workers:
            w.start()
        for m in group:
            m.start()
        time.sleep(3)
        started = time.monotonic()
        log(f"seed={seed} brokers={brokers} seconds={seconds:.0f}: nemesis starts")
        nemesis = Nemesis(view, schedule(seed), recover_timeout=recover_timeout, stop=stop)
        nemesis.run(started + seconds)
        log(f"nemesis done: {len(nemesis.done)} faults; healing and draining")
        nemesis._heal_everything()
        view.wait_healthy(recover_timeout)
        time.sleep(2)
        end_faults = time.monotonic()
        for w in workers:
            w.stop()
        deadline = time.monotonic() + 60
        lag = -1
        while time.monotonic() < deadline:
            try:
                lag = group_lag(bootstrap, "chaos-group", partitions)
            except KafkaException:
                lag = -1
            if lag == 0:
                break
            time.sleep(1)
        for m in group:
            m.stop()
        records = read_all(bootstrap, {tp: 0 for tp in partitions})
        verdict = check(workers, records, group)
        verdict.final_lag = lag
        errors: dict[str, int] = defaultdict(int)
        for w in workers:
            for k, n in w.errors.items():
                errors[k] += n
        cerrors: dict[str, int] = defaultdict(int)
        for m in group:
            for k, n in m.errors.items():
                cerrors[k] += n
        return RunResult(seed, brokers, end_faults - started, verdict, nemesis.done,
                         unavailability(nemesis.done, workers, end_faults), nemesis.unrecovered,
                         dict(errors), dict(cerrors), sum(w.fatal for w in workers))
    finally:
        for w in workers:
            w._stop.set()
        for m in group:
            m._stop.set()
        cluster.stop()


# --------------------------------------------------------------------------------- report


def render_report(results: list[RunResult]) -> str:
    """docs/reliability.md from one or more runs."""
    lines = ["# Reliability under fire", "",
             "Generated by `tests/faults/harness.py` (`make chaos`). Each run starts a real",
             "`python main.py serve` cluster on 127.0.0.1, writes with idempotent `acks=all`",
             "confluent-kafka producers to RF=3, `min.insync.replicas=2` topics "
             f"({', '.join(f'`{t}` {n} partitions' for t, n in TOPICS.items())}) while a",
             "two-member consumer group reads them, and injects faults on a schedule drawn",
             "from the seed (see the harness docstring for what each fault does). At most one",
             "broker is faulty at a time; after each fault the nemesis waits for full ISRs.", ""]
    for r in results:
        v = r.verdict
        lines += [f"## {r.brokers} brokers, seed {r.seed}, {r.seconds / 60:.1f} minutes of faults",
                  "", f"Command: `{r.command}`", "",
                  "| records | count |", "|---|---|",
                  f"| acknowledged | {v.acknowledged} |",
                  f"| read back and verified (acknowledged and present) | {v.verified} |",
                  f"| records in the log | {v.read} |",
                  f"| **lost** (acknowledged, not in the log) | **{v.lost}** |",
                  f"| **duplicated** | **{v.duplicated}** |",
                  f"| out of produce order | {v.out_of_order} |",
                  f"| partitions with offset gaps | {v.offset_gaps} |",
                  f"| delivery reported failed to the producer | {v.failed_reported} |",
                  f"| ... of which nevertheless in the log | {v.failed_but_written} |",
                  f"| acknowledged but never seen by the consumer group | {v.group_missing} |",
                  f"| consumer-group deliveries (incl. re-deliveries after rebalances) | "
                  f"{v.group_deliveries} |",
                  f"| consumer-group lag after faults stopped | {v.final_lag} |",
                  f"| faults after which the cluster did not heal in time | "
                  f"{len(r.unrecovered)} |", "",
                  "| fault kind | injected | longest write unavailability (s) | mean (s) |",
                  "|---|---|---|---|"]
        for kind in FAULT_KINDS:
            e = r.unavailable.get(kind)
            if e:
                lines.append(f"| {kind} | {e['count']} | {e['max_unavailable_s']:.2f} | "
                             f"{e['sum_unavailable_s'] / e['count']:.2f} |")
        lines += ["", "Write unavailability: for each injected fault, the longest stretch with "
                  "no acknowledgement on any one partition between the fault's injection and "
                  "the next fault (hold time included: a SIGKILLed leader stays down for its "
                  "hold time, but its partitions must move before that).", ""]
        if r.producer_errors:
            lines.append("Producer-side errors seen (librdkafka, retried internally): " + ", ".join(
                f"{k} x{n}" for k, n in sorted(r.producer_errors.items())) + ".")
        if r.fatal_producer_errors:
            lines.append(f"Fatal producer errors: {r.fatal_producer_errors}.")
        if v.problems:
            lines += ["", "Problems:", ""] + [f"- {p}" for p in v.problems[:20]]
        lines += ["", "<details><summary>fault log</summary>", "", "```"]
        t0 = r.faults[0].injected_at if r.faults else 0.0
        for f in r.faults:
            lines.append(f"{f.injected_at - t0:8.1f}s {f.kind:17s} target={f.target} "
                         f"hold={f.hold:.1f}s healed_in="
                         f"{max(0.0, f.recovered_at - (f.healed_at or f.injected_at)):.1f}s "
                         f"{f.note}")
        lines += ["```", "", "</details>", ""]
    lines += ["## Notes", "",
              "- `isolate_broker` cuts one broker off from the other brokers for 8-14 s (longer",
              "  than the replica lag and session timeouts) with `ctl netfault N isolate`: every",
              "  byte to a broker crosses the supervisor's proxy in front of it, which stalls",
              "  the links between N and its peers both ways (replication, Raft, heartbeats)",
              "  while N keeps running and clients still reach it (a partitioned leader).",
              "- The schedule (kinds, hold times, gaps, target picks) is a pure function of the",
              "  seed; targets are resolved from the live cluster (leader of the picked",
              "  partition, active controller), so two runs with one seed inject the same",
              "  sequence of kinds but timing-dependent targets may differ.",
              "- Storage faults (torn tails, corrupt bytes, lost indexes and checkpoints, a full",
              "  disk) are covered by tests/faults/test_disk_faults.py and",
              "  tests/faults/test_crash_recovery.py; see the section below.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float,
                        default=float(os.environ.get("CHAOS_MINUTES", "10")))
    parser.add_argument("--brokers", type=int, default=5)
    parser.add_argument("--seed", type=int, default=int(os.environ.get("CHAOS_SEED", "20240")))
    parser.add_argument("--rate", type=float, default=300.0, help="records/s per producer")
    parser.add_argument("--report", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    command = ("python -m tests.faults.harness " + " ".join(sys.argv[1:] if argv is None
                                                             else argv)).strip()
    stop = threading.Event()  # SIGINT/SIGTERM: stop injecting, heal, check what was written
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with tempfile.TemporaryDirectory(prefix="chaos-") as tmp:
        data_dir = args.data_dir or Path(tmp) / "cluster"
        result = run_chaos(data_dir, seconds=args.minutes * 60, seed=args.seed,
                           brokers=args.brokers, rate=args.rate, stop=stop)
    result.command = command
    summary = result.summary()
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1))
    if args.report:
        text = render_report([result])
        extra = ROOT / "tests" / "faults" / "storage_faults.md"
        if extra.exists():
            text += "\n" + extra.read_text()
        args.report.write_text(text)
        log(f"wrote {args.report}")
    return 0 if result.verdict.ok and not result.unrecovered else 1


if __name__ == "__main__":
    sys.exit(main())
