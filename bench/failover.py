"""Failover: SIGKILL of a partition leader -> first acknowledged produce on the new leader.

Run: ``.venv/bin/python -m bench.failover [--kills 10] [--controller-kills 10]
[--manual-kills 3] [--trace]``
(``--trace``: librdkafka's own timeline, ``debug=broker,topic,metadata,msg,protocol`` with its
wall-clock stamps, on stderr, with a ``KILL wall=... broker=...`` line per kill to line it up)

A 3-broker cluster, a topic with RF=3 and min.insync.replicas=2, and one confluent-kafka
producer (acks=all, librdkafka's defaults otherwise) sending a record every ~2 ms from a
background thread. Each kill: wait until partition 0 has its full ISR (3), SIGKILL its leader,
and measure the time from the kill to the first successful delivery report of a record
produced after the kill (it can only come from the new leader); then restart the killed
broker. Two ways of running the cluster:

* supervisor: `python main.py serve --brokers 3` (core.cluster.LocalCluster), killed with
  `ctl kill` (SIGKILL); the supervisor sees its child die and fences it at the controller
  at once;
* supervisor, controller kills: the same, but the broker killed is both the leader of the
  partition produced to and the active controller (the metadata quorum's Raft leader): before
  each kill a preferred-leader election spreads the 3 partitions over the 3 brokers and the
  producer switches to the partition the controller leads. The supervisor also ends the dead
  leader's Raft epoch with EndQuorumEpoch on its behalf; the time to a new Raft leader in
  DescribeQuorum is measured too;
* manual: three `python main.py broker --config F` processes started here and killed with
  os.kill(pid, SIGKILL); the controller notices only when broker.session.timeout.ms (9 s by
  default) passes without a heartbeat.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import ElectionType, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from bench.common import (
    Broker,
    fmt,
    free_port,
    machine_facts,
    markdown_table,
    median,
    update_doc,
)
from bench.produce_consume import create_topic
from bench.replicated import wait_isr
from core.cluster.layout import broker_properties
from core.cluster.local import LocalCluster, free_base_port
from core.cluster.quorum_probe import describe_quorum
from core.cluster.state import read_cluster_json
from core.network.client import KafkaConnection

TOPIC = "failover"
#: leadership must not move back to the preferred replica between our check and the kill
CLUSTER_CONFIG = {"offsets.topic.num.partitions": "1", "group.initial.rebalance.delay.ms": "0",
                  "auto.leader.rebalance.enable": "false"}


class SteadyProducer:
    """Produces a record every `interval_s` in a thread; remembers successful deliveries."""

    #: librdkafka debug contexts for --trace (None: no debug output)
    debug: str | None = None
    #: the partition produced to (None: the client's partitioner; aiokafka: 0)
    partition: int | None = None

    def __init__(self, bootstrap: str, interval_s: float = 0.002) -> None:
        conf: dict[str, Any] = {"bootstrap.servers": bootstrap, "acks": "all",
                                "message.timeout.ms": 60000}
        if self.debug:
            conf["debug"] = self.debug
        self.producer = Producer(conf)
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.acks: list[tuple[float, float]] = []  # (produced at, acknowledged at)
        self.errors = 0
        self._thread = threading.Thread(target=self._loop, daemon=True, name="steady-producer")

    def _on_delivery(self, err: Any, msg: Any) -> None:
        now = time.monotonic()
        if err is not None:
            self.errors += 1
            return
        produced = float(msg.value().decode())
        with self._lock:
            self.acks.append((produced, now))

    def _loop(self) -> None:
        while not self._stop.is_set():
            extra = {} if self.partition is None else {"partition": self.partition}
            self.producer.produce(TOPIC, repr(time.monotonic()).encode(),
                                  on_delivery=self._on_delivery, **extra)
            self.producer.poll(self.interval_s)
        self.producer.flush(30)

    def __enter__(self) -> SteadyProducer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(60)

    def first_ack_after(self, t0: float, timeout_s: float = 60.0) -> float:
        """Seconds from t0 to the first acknowledgement of a record produced after t0."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                for produced, acked in self.acks:
                    if produced >= t0:
                        return acked - t0
                self.acks = [a for a in self.acks if a[0] >= t0]
            time.sleep(0.002)
        raise TimeoutError("no acknowledged produce after the kill")


class AioSteadyProducer(SteadyProducer):
    """The same steady producer with aiokafka (asyncio loop in a thread): on a disconnect or
    NOT_LEADER it refreshes metadata at once and retries after retry_backoff_ms (100 ms)."""

    def __init__(self, bootstrap: str, interval_s: float = 0.002) -> None:
        self.bootstrap = bootstrap
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.acks = []
        self.errors = 0
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True,
                                        name="steady-aiokafka-producer")

    async def _main(self) -> None:
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all",
                                    request_timeout_ms=60000)
        await producer.start()
        try:
            while not self._stop.is_set():
                produced = time.monotonic()
                fut = await producer.send(TOPIC, repr(produced).encode(),
                                          partition=self.partition or 0)
                fut.add_done_callback(lambda f, p=produced: self._done(f, p))
                await asyncio.sleep(self.interval_s)
            await producer.flush()
        finally:
            await producer.stop()

    def _done(self, fut: Any, produced: float) -> None:
        now = time.monotonic()
        if fut.cancelled() or fut.exception() is not None:
            self.errors += 1
            return
        with self._lock:
            self.acks.append((produced, now))


CLIENTS: dict[str, type[SteadyProducer]] = {"confluent-kafka": SteadyProducer,
                                            "aiokafka": AioSteadyProducer}


class MetadataWatch:
    """After a kill: when do the surviving brokers stop naming the dead one as the leader of
    partition 0 (leader -1 or a new one), stop listing it (fenced) and report a new leader?
    Polls each every ~5 ms over its own connection."""

    def __init__(self, ports: dict[int, int], dead: int, t0: float, timeout_s: float = 30.0,
                 partition: int = 0):
        self.partition = partition
        self.ports = {b: p for b, p in ports.items() if b != dead}
        self.dead = dead
        self.t0 = t0
        self.timeout_s = timeout_s
        self.fenced: dict[int, float] = {}
        self.unnamed: dict[int, float] = {}
        self.leader: dict[int, float] = {}
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self._thread.start()

    async def _watch(self, broker: int, port: int) -> None:
        deadline = self.t0 + self.timeout_s
        conn = None
        while time.monotonic() < deadline and (broker not in self.fenced
                                               or broker not in self.leader):
            try:
                if conn is None:
                    conn = await KafkaConnection.connect("127.0.0.1", port, timeout=1.0)
                md = await conn.request(3, max_version=12, min_version=1,
                                        topics=[dict(name=TOPIC, topic_id=uuid.UUID(int=0))],
                                        allow_auto_topic_creation=False)
            except Exception:  # the broker may be busy electing; keep polling
                conn = None
                await asyncio.sleep(0.005)
                continue
            now = time.monotonic() - self.t0
            if broker not in self.fenced and all(b.node_id != self.dead for b in md.brokers):
                self.fenced[broker] = now
            for t in md.topics:
                for part in t.partitions:
                    if part.partition_index != self.partition or part.leader_id == self.dead:
                        continue
                    self.unnamed.setdefault(broker, now)
                    if part.leader_id != -1:
                        self.leader.setdefault(broker, now)
            await asyncio.sleep(0.005)
        if conn is not None:
            await conn.close()

    async def _main(self) -> None:
        await asyncio.gather(*(self._watch(b, p) for b, p in self.ports.items()))

    def result(self) -> tuple[float, float, float]:
        """Seconds to: all survivors no longer naming the dead leader, the first broker
        seeing the fence, all seeing the new leader."""
        self._thread.join(self.timeout_s + 5)
        nan = float("nan")
        unnamed = max(self.unnamed.values()) if len(self.unnamed) == len(self.ports) else nan
        fenced = min(self.fenced.values()) if self.fenced else nan
        leader = max(self.leader.values()) if len(self.leader) == len(self.ports) else nan
        return unnamed, fenced, leader


#: one kill: (first ack s, leader was the controller, new leader on all survivors s,
#: dead leader no longer named by any survivor s, new Raft leader in DescribeQuorum s or nan)
Kill = tuple[float, bool, float, float, float]


class QuorumWatch:
    """After a controller kill: when does a survivor answer DescribeQuorum as the leader of a
    newer epoch? Polls every ~5 ms in a thread."""

    def __init__(self, ports: dict[int, int], dead: int, epoch: int, t0: float,
                 timeout_s: float = 30.0) -> None:
        self.ports = {b: p for b, p in ports.items() if b != dead}
        self.epoch, self.t0, self.timeout_s = epoch, t0, timeout_s
        self.elected = float("nan")
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self._thread.start()

    async def _main(self) -> None:
        while time.monotonic() - self.t0 < self.timeout_s:
            views = await asyncio.gather(*(describe_quorum("127.0.0.1", p, 0.5)
                                           for p in self.ports.values()))
            if any(v is not None and v.error_code == 0 and v.leader_id == b
                   and v.leader_epoch > self.epoch
                   for b, v in zip(self.ports, views, strict=True)):
                self.elected = time.monotonic() - self.t0
                return
            await asyncio.sleep(0.005)

    def result(self) -> float:
        self._thread.join(self.timeout_s + 5)
        return self.elected


def quorum_leader(ports: dict[int, int]) -> tuple[int, int]:
    """(leader, epoch) of the metadata quorum, from the leader's own DescribeQuorum."""
    for b, port in ports.items():
        v = asyncio.run(describe_quorum("127.0.0.1", port, 1.0))
        if v is not None and v.error_code == 0 and v.leader_id == b:
            return b, v.leader_epoch
    return -1, -1


def controller_partition(bootstrap: str, ports: dict[int, int], timeout_s: float = 120.0
                         ) -> tuple[int, int, int]:
    """Spread partition leadership (preferred-leader election), wait for full ISRs, and return
    (controller, its Raft epoch, the partition it leads)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            futures = admin.elect_leaders(ElectionType.PREFERRED,
                                          [TopicPartition(TOPIC, p) for p in range(3)])
            futures.result(10)
        except Exception:  # ELECTION_NOT_NEEDED, or a broker still starting
            pass
        try:
            md = admin.list_topics(TOPIC, timeout=5).topics[TOPIC]
        except Exception:
            time.sleep(0.2)
            continue
        leader, epoch = quorum_leader(ports)
        full = all(len(p.isrs) == 3 for p in md.partitions.values())
        led = [p.id for p in md.partitions.values() if p.leader == leader]
        if leader > 0 and full and led:
            return leader, epoch, led[0]
        time.sleep(0.2)
    raise TimeoutError("the controller never led a partition with a full ISR")


def _trace_kill(t0: float, broker: int) -> None:
    """With --trace: the kill's wall-clock time, to line up with librdkafka's stamps."""
    if SteadyProducer.debug:
        wall = time.time() - (time.monotonic() - t0)
        print(f"KILL wall={wall:.6f} broker={broker}", file=sys.stderr, flush=True)


def controller_of(data_dir: Path) -> int:
    doc = read_cluster_json(data_dir) or {}
    return int(doc.get("controller_id", -1))


def run_supervisor(tmp: Path, kills: int, client: str = "confluent-kafka"
                   ) -> list[Kill]:
    out: list[Kill] = []
    cluster = LocalCluster(tmp / f"cluster-{client}", brokers=3, port=free_base_port(3),
                           config=CLUSTER_CONFIG)
    with cluster:
        assert cluster.bootstrap is not None
        create_topic(cluster.bootstrap, TOPIC, rf=3, config={"min.insync.replicas": "2"})
        wait_isr(cluster.bootstrap, TOPIC, 3)
        control = cluster.control
        ports = {i + 1: int(hp.rsplit(":", 1)[1])
                 for i, hp in enumerate(cluster.bootstrap.split(","))}
        with CLIENTS[client](cluster.bootstrap) as producer:
            for i in range(kills):
                leader = wait_isr(cluster.bootstrap, TOPIC, 3, timeout_s=120)
                time.sleep(0.5)  # the producer runs steadily on this leader
                was_controller = controller_of(cluster.data_dir) == leader
                t0 = time.monotonic()
                control.kill_sync(leader)
                _trace_kill(t0, leader)
                watch = MetadataWatch(ports, leader, t0)
                took = producer.first_ack_after(t0)
                unnamed, fenced, moved = watch.result()
                out.append((took, was_controller, moved, unnamed, float("nan")))
                print(f"supervisor ({client}) kill {i + 1}: broker {leader}"
                      f"{' (controller)' if was_controller else ''} -> {took * 1000:.0f} ms "
                      f"(dead leader no longer named at {unnamed * 1000:.0f} ms, fenced seen "
                      f"at {fenced * 1000:.0f} ms, new leader on all survivors "
                      f"at {moved * 1000:.0f} ms)", flush=True)
                control.start_sync(leader)
            if producer.errors:
                print(f"warning: {producer.errors} deliveries failed", flush=True)
    return out


def run_controller(tmp: Path, kills: int, client: str = "confluent-kafka") -> list[Kill]:
    """Kill the broker that is both the partition's leader and the active controller."""
    out: list[Kill] = []
    cluster = LocalCluster(tmp / f"cluster-ctrl-{client}", brokers=3, port=free_base_port(3),
                           config=CLUSTER_CONFIG)
    with cluster:
        assert cluster.bootstrap is not None
        create_topic(cluster.bootstrap, TOPIC, partitions=3, rf=3,
                     config={"min.insync.replicas": "2"})
        control = cluster.control
        ports = {i + 1: int(hp.rsplit(":", 1)[1])
                 for i, hp in enumerate(cluster.bootstrap.split(","))}
        leader, _epoch, partition = controller_partition(cluster.bootstrap, ports)
        CLIENTS[client].partition = partition
        try:
            with CLIENTS[client](cluster.bootstrap) as producer:
                for i in range(kills):
                    leader, epoch, partition = controller_partition(cluster.bootstrap, ports)
                    producer.partition = partition
                    time.sleep(1.0)  # the producer runs steadily on this partition's leader
                    t0 = time.monotonic()
                    control.kill_sync(leader)
                    _trace_kill(t0, leader)
                    watch = MetadataWatch(ports, leader, t0, partition=partition)
                    quorum = QuorumWatch(ports, leader, epoch, t0)
                    took = producer.first_ack_after(t0)
                    unnamed, fenced, moved = watch.result()
                    elected = quorum.result()
                    out.append((took, True, moved, unnamed, elected))
                    print(f"controller ({client}) kill {i + 1}: broker {leader} (controller, "
                          f"epoch {epoch}, partition {partition}) -> {took * 1000:.0f} ms "
                          f"(new Raft leader at {elected * 1000:.0f} ms, dead leader no "
                          f"longer named at {unnamed * 1000:.0f} ms, fenced seen at "
                          f"{fenced * 1000:.0f} ms, new partition leader on all survivors "
                          f"at {moved * 1000:.0f} ms)", flush=True)
                    control.start_sync(leader)
                if producer.errors:
                    print(f"warning: {producer.errors} deliveries failed", flush=True)
        finally:
            CLIENTS[client].partition = None
    return out


def run_manual(tmp: Path, kills: int) -> list[Kill]:
    out: list[Kill] = []
    base = free_base_port(3)
    brokers: dict[int, Broker] = {}
    try:
        for node in (1, 2, 3):
            props = broker_properties(broker_id=node, base_port=base, voters_of=3,
                                      data_dir=tmp / f"manual-{node}" / "data",
                                      metrics_port=free_port(),
                                      overrides=CLUSTER_CONFIG)
            brokers[node] = Broker(tmp / f"manual-{node}", node_id=node, port=base + node - 1,
                                   overrides=props)
        for b in brokers.values():  # a quorum needs a majority up before any answers
            b.spawn()
        for b in brokers.values():
            b.wait_started()
        bootstrap = ",".join(b.bootstrap for b in brokers.values())
        create_topic(bootstrap, TOPIC, rf=3, config={"min.insync.replicas": "2"})
        wait_isr(bootstrap, TOPIC, 3)
        with SteadyProducer(bootstrap) as producer:
            for i in range(kills):
                leader = wait_isr(bootstrap, TOPIC, 3, timeout_s=120)
                time.sleep(0.5)
                t0 = time.monotonic()
                os.kill(brokers[leader].pid, signal.SIGKILL)
                _trace_kill(t0, leader)
                watch = MetadataWatch({n: b.port for n, b in brokers.items()}, leader, t0)
                took = producer.first_ack_after(t0)
                unnamed, fenced, moved = watch.result()
                brokers[leader].kill()  # reap it
                out.append((took, False, moved, unnamed, float("nan")))
                print(f"manual kill {i + 1}: broker {leader} -> {took * 1000:.0f} ms "
                      f"(dead leader no longer named at {unnamed * 1000:.0f} ms, fenced seen "
                      f"at {fenced * 1000:.0f} ms, new leader on all survivors "
                      f"at {moved * 1000:.0f} ms)", flush=True)
                brokers[leader].start()
    finally:
        for b in brokers.values():
            b.stop()
    return out


Series = list[tuple[str, bool, list[Kill]]]


def report(series: Series, args: argparse.Namespace, command: str, facts: str) -> str:
    rows = []
    for name, is_goal, data in series:
        if not data:
            continue
        times = [k[0] * 1000 for k in data]
        moved = [k[2] * 1000 for k in data]
        unnamed = [k[3] * 1000 for k in data]
        plain = [k[0] * 1000 for k in data if not k[1]]
        ctl = [k[0] * 1000 for k in data if k[1]]
        raft = [k[4] * 1000 for k in data if k[4] == k[4]]
        goal = "yes" if median(times) <= 1000 else "**no**"
        rows.append([name, len(times), fmt(median(times)), fmt(min(times)), fmt(max(times)),
                     fmt(median(unnamed)), fmt(median(moved)),
                     f"{len(plain)}: {fmt(median(plain)) if plain else 'n/a'}",
                     f"{len(ctl)}: {fmt(median(ctl)) if ctl else 'n/a'}",
                     fmt(median(raft)) if raft else "n/a",
                     goal if is_goal else "(not a goal: 9 s session timeout)"])
    table = markdown_table(["cluster, client", "kills", "median ms", "min ms", "max ms",
                            "survivors no longer name the dead leader, median ms",
                            "broker side: new leader on all survivors, median ms",
                            "leader not controller: kills, median ms",
                            "leader was the active controller: kills, median ms",
                            "new Raft leader (DescribeQuorum), median ms",
                            "median <= 1 s"], rows)
    raw = "\n".join(f"- {name}: first ack " + ", ".join(fmt(k[0] * 1000) for k in data)
                    + "; dead leader no longer named " + ", ".join(fmt(k[3] * 1000)
                                                                   for k in data)
                    + "; new leader seen " + ", ".join(fmt(k[2] * 1000) for k in data)
                    + ("; new Raft leader " + ", ".join(fmt(k[4] * 1000) for k in data)
                       if any(k[4] == k[4] for k in data) else "")
                    + "; controller kills at " + (", ".join(
                        str(i + 1) for i, k in enumerate(data) if k[1]) or "none")
                    for name, _, data in series if data)
    return f"""## Failover: leader SIGKILL to first acknowledged produce

Command: `{command}`

Machine: {facts}. 3 brokers, topic with RF=3 and min.insync.replicas=2
(auto.leader.rebalance.enable=false so that leadership only moves because of the kills), one
producer -- confluent-kafka, then aiokafka, each against its own fresh cluster -- with acks=all
sending a record every ~2 ms (client defaults otherwise). *First ack*: time from SIGKILL of
the leader of partition 0 to the delivery report of the first record produced after the kill.
*Broker side*: a watcher polls Metadata on the two surviving brokers every ~5 ms and notes
when both no longer name the dead broker as the leader (leader -1 or a new one) and when both
name a new leader. Between kills the
killed broker is restarted and the ISR is back to 3 (3 stable metadata polls) before the next.

{table}

Where the time goes (librdkafka's own timeline: `--trace`, i.e.
`debug=broker,topic,metadata,msg,protocol`, lined up with the brokers' logs). When the killed
leader is not the controller: librdkafka sees its connection close 4-12 ms after the SIGKILL;
its in-flight ProduceRequest fails (transport error), which starts its *fast leader query*,
and it also refreshes metadata because a broker went down. Both requests go to a survivor and
are answered within ~1 ms -- still before the supervisor's fence reaches the controller. The
survivors answer them with leader -1 / LEADER_NOT_AVAILABLE, the dead replica offline:
each broker keeps one idle connection to every other broker (core/broker/peer_watch.py) and
knows the peer is gone as soon as the kernel closes that connection (a non-blocking peek when
the Metadata request is served, so the client's own disconnect can never overtake it). As
for Kafka's leader without a live endpoint, librdkafka parks the partition on its internal
queue and keeps the fast leader query going; the fence and the new leader reach the
survivors at 15-40 ms; the next query, retry.backoff.ms (100 ms) later, names the new leader,
and the first produce to it is acknowledged at ~110-140 ms (the new leader's image had
changed ~80 ms before: no NOT_LEADER_OR_FOLLOWER refusals in the traces).
Before this change (the tree at 463ae01, run the same way in the same session: medians 743 and
780 ms with confluent-kafka, non-controller kills 115 ms to 1.4 s; 1.39 s in the previous
version of this section), those first answers
named the dead leader again -- its broker not yet fenced -- so librdkafka cleared its
"leader unavailable" flag, stopped the fast query and only asked again on its 1 s topic
scan ("broker is down: re-query"); that answer named the new leader while no longer listing
the fenced broker, and librdkafka's decommissioning of that broker handle raced the
partition's move to the new leader and parked it on the internal broker until one more 1 s
scan ("broker is internal: re-query"): 0.3-2 s. What is left on the client side: if no
ProduceRequest happened to be in flight at the kill, librdkafka does not start its fast query
and the partition waits for the 1 s scan (0-1 s). KIP-951 (Produce v10+ answering
NOT_LEADER_OR_FOLLOWER with current_leader and node_endpoints) would not shorten this: the
client never produces to a live broker that is not the leader here (its records go from the
dead leader to the internal queue to the new leader), so Produce stays at v9.
aiokafka refreshes metadata as soon as a produce fails and retries after retry_backoff_ms
(100 ms): ~0.22 s before this change (227 ms median at 463ae01 in the same session), less
now (not traced).
When the killed leader is also the active controller (the *controller* rows: the broker
killed leads both the partition produced to and the metadata quorum), a Raft election comes
first. Before, both surviving voters waited out controller.quorum.fetch.timeout.ms (2 s),
became candidates at the same instant and often split the vote: ~3.5 s. Now the supervisor,
which sees the death at once, asks the survivors for DescribeQuorum and, if they still follow
the dead broker, sends them the EndQuorumEpoch a resigning Kafka leader sends (KIP-595:
leader_id = the dead broker, its epoch, preferred successors by the replication progress of
the leader's last DescribeQuorum): the first successor asks for pre-votes (KIP-996) at once
and wins, the other backs off 100 ms; a lost election backs off randomly and exponentially
(controller.quorum.election.backoff.max.ms, 1 s). The supervisor then fences the dead broker
at the new controller (it polls for it every 200 ms) and the partition moves.
Without the supervisor the controller fences the broker only after broker.session.timeout.ms
(9 s): the survivors stop naming the dead leader at once, but a new one exists only then.

Raw values (ms):

{raw}
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--controller-kills", type=int, default=10,
                        help="kills of the broker that leads the partition and the quorum")
    parser.add_argument("--manual-kills", type=int, default=3,
                        help="kills with hand-started brokers (0 to skip; ~10 s each)")
    parser.add_argument("--clients", default="confluent-kafka,aiokafka",
                        help="producer clients for the supervisor series (comma-separated)")
    parser.add_argument("--no-doc", action="store_true")
    parser.add_argument("--keep-dir", help="put the clusters' data and logs here (kept)")
    parser.add_argument("--trace", action="store_true",
                        help="librdkafka debug timeline on stderr (implies --no-doc)")
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    if args.trace:
        SteadyProducer.debug = "broker,topic,metadata,msg,protocol"
        args.no_doc = True
    facts = machine_facts()
    with tempfile.TemporaryDirectory(prefix="kaflab-bench-") as tmp:
        work = Path(args.keep_dir) if args.keep_dir else Path(tmp)
        series: Series = []
        for client in args.clients.split(","):
            if args.kills:
                series.append((f"supervisor (`serve`, `ctl kill`), {client}", True,
                               run_supervisor(work, args.kills, client)))
            if args.controller_kills:
                series.append((f"supervisor, partition leader = active controller, {client}",
                               True, run_controller(work, args.controller_kills, client)))
        if args.manual_kills:
            series.append(("manual brokers (`os.kill`, no supervisor), confluent-kafka", False,
                           run_manual(work, args.manual_kills)))
    text = report(series, args, " ".join([".venv/bin/python -m bench.failover", *argv]),
                  facts)
    print(text)
    if not args.no_doc:
        update_doc("failover", text)


if __name__ == "__main__":
    main()
