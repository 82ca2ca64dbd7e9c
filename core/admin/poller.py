"""SnapshotPoller: one immutable ClusterSnapshot per tick, for the console (and tests).

Per tick, concurrently: Metadata; ListOffsets earliest + latest for every partition (batched
per leader); groups (ListGroups on every broker, DescribeGroups per coordinator, OffsetFetch per
group) -> lag; DescribeLogDirs (sizes, follower lag); DescribeQuorum; each broker's Prometheus
/metrics (rates from counter deltas between ticks, per-replica lag, log end offsets); psutil
CPU / memory of local broker PIDs. A failure in one part never kills the tick: it becomes a
line in snapshot.errors and the part's fields stay None.

A tick never waits on a broker known not to answer: one whose process the supervisor reports
paused / stopped / killed / crashed (`process_info`, re-read during a tick too) is not asked
("broker 2 is paused: not asked"); one whose request or /metrics scrape timed out is not asked
for `unresponsive_backoff` seconds, then probed in the background once per period (see
core.admin.client.UnresponsiveBrokers). Its fields stay None and it shows as "unresponsive".

    poller = SnapshotPoller("127.0.0.1:9092", interval_s=1.0)
    async for snap in poller.snapshots():
        ...
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import urllib.parse
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from core.admin.client import (
    DESCRIBE_LOG_DIRS,
    AdminClient,
    BrokerUnresponsiveError,
    ClusterMetadata,
    CommittedOffset,
    GroupListing,
    OffsetResult,
    UnresponsiveBrokers,
    with_offsets,
)
from core.admin.metrics import BrokerMetrics, RateTracker, parse_metrics, scrape
from core.admin.snapshot import (
    BrokerInfo,
    ClusterSnapshot,
    GroupInfo,
    PartitionInfo,
    QuorumInfo,
    TopicInfo,
    frozen_items,
)
from core.common.errors import KafkaError, UnsupportedVersionError

__all__ = ["SnapshotPoller"]

TP = tuple[str, int]
MetricsUrls = Callable[[], Mapping[int, str]]
ProcessInfo = Callable[[], Mapping[int, tuple[int | None, str]]]
Procs = dict[int, tuple[int | None, str]]

#: supervisor process states of a broker that cannot answer (SIGSTOP, or no process)
DOWN_STATES = frozenset({"paused", "stopped", "killed", "crashed"})
#: while a tick waits, how often process_info is re-read (a broker paused mid-tick)
WATCH_INTERVAL_S = 0.2
METRICS_TIMEOUT_S = 2.0
#: how long a tick waits for DescribeQuorum: any broker forwards it to the active controller,
#: so a stalled controller stalls it. It has its own connections (a broker answers each
#: connection's requests in order, so it cannot hold up the others) and, when slow, goes on
#: in the background: a later tick takes its answer
QUORUM_WAIT_S = 0.5


class SnapshotPoller:
    """Polls a cluster every `interval_s` and builds ClusterSnapshots."""

    def __init__(self, bootstrap: str, *, interval_s: float = 1.0,
                 metrics_urls: MetricsUrls | None = None,
                 process_info: ProcessInfo | None = None,
                 admin: AdminClient | None = None, configs_every: int = 10,
                 include_internal: bool = True, request_timeout: float = 5.0,
                 unresponsive_backoff: float = 3.0, probe_timeout: float = 1.0) -> None:
        self.bootstrap = bootstrap
        self.interval_s = interval_s
        self.metrics_urls = metrics_urls
        self.process_info = process_info
        self.configs_every = max(1, configs_every)
        self.include_internal = include_internal
        self._own_admin = admin is None
        self.admin = admin or AdminClient(bootstrap, client_id="kaflab-console",
                                          request_timeout=request_timeout, retries=1,
                                          unresponsive_backoff=unresponsive_backoff,
                                          probe_timeout=probe_timeout)
        self.probe_timeout = probe_timeout
        self._quorum_admin = AdminClient(bootstrap, client_id="kaflab-console-quorum",
                                         request_timeout=request_timeout, retries=0,
                                         probe_timeout=probe_timeout,
                                         unresponsive=self.admin.unresponsive)
        self._quorum_task: asyncio.Task[QuorumInfo | None] | None = None
        #: /metrics endpoints (host, port) whose scrape timed out
        self._metrics_backoff = UnresponsiveBrokers(unresponsive_backoff)
        self._down: dict[int, str] = {}  # broker id -> process state, for this tick
        self._scrapes: dict[int, asyncio.Future[str]] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self.latest: ClusterSnapshot | None = None
        self._rates = RateTracker()
        self._procs: dict[int, Any] = {}  # pid -> psutil.Process (cpu_percent needs history)
        self._configs: dict[str, tuple[tuple[str, str | None], ...]] = {}
        self._tick = 0
        self._known_brokers: dict[int, BrokerInfo] = {}
        self._stopped = asyncio.Event()

    async def close(self) -> None:
        self._stopped.set()
        for task in list(self._background):
            task.cancel()
        quorum = self._quorum_task
        if quorum is not None:
            quorum.cancel()
            if quorum.done() and not quorum.cancelled():
                quorum.exception()  # retrieved: an answer nobody will read
        await self._quorum_admin.close()
        if self._own_admin:
            await self.admin.close()

    def stop(self) -> None:
        """Make `snapshots()` / `run()` return after the current tick."""
        self._stopped.set()

    async def snapshots(self) -> AsyncIterator[ClusterSnapshot]:
        """Yield a snapshot every interval until stop()/close()."""
        while not self._stopped.is_set():
            started = time.monotonic()
            yield await self.poll_once()
            delay = self.interval_s - (time.monotonic() - started)
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopped.wait(), delay)

    async def run(self, callback: Callable[[ClusterSnapshot], Any]) -> None:
        """Call `callback(snapshot)` every tick until stop()/close()."""
        async for snap in self.snapshots():
            callback(snap)

    # one tick ------------------------------------------------------------------------------
    async def poll_once(self) -> ClusterSnapshot:
        """Build one snapshot (never raises for cluster-side failures)."""
        started = time.monotonic()
        taken_at = time.time()
        self._tick += 1
        errors: list[str] = []
        procs = self._process_info(errors)
        self._set_down(_down_of(procs))
        watcher = (asyncio.get_running_loop().create_task(self._watch_processes())
                   if self.process_info is not None else None)
        try:
            snap = await self._poll(started, taken_at, errors, procs)
        finally:
            if watcher is not None:
                watcher.cancel()
        self.latest = snap
        return snap

    async def _poll(self, started: float, taken_at: float, errors: list[str],
                    procs: Procs) -> ClusterSnapshot:
        try:
            md = await self.admin.metadata()
        except (KafkaError, OSError) as exc:
            errors.append(f"metadata: {exc}")
            self._not_asked_lines(errors)
            return self._offline_snapshot(taken_at, errors, started, self._with_down(procs))

        self._quorum_admin.use_metadata(md)
        tps = [(t.name, p.partition) for t in md.topics.values() for p in t.partitions
               if self.include_internal or not t.internal]
        want_configs = self._tick == 1 or self._tick % self.configs_every == 0

        results = await asyncio.gather(
            self.admin.list_offsets(tps, "earliest", raise_errors=False),
            self.admin.list_offsets(tps, "latest", raise_errors=False),
            self._groups(),
            self._log_dirs(md),
            self._quorum(md),
            self._metrics(),
            self._configs_of(md) if want_configs else _none(),
            return_exceptions=True)
        earliest, latest, groups, log_dirs, quorum, metrics, configs = (
            self._unwrap(name, r, errors) for name, r in zip(
                ("list offsets earliest", "list offsets latest", "groups", "log dirs",
                 "quorum", "metrics", "configs"), results, strict=True))
        procs = self._with_down(procs)
        if configs:
            self._configs.update(configs)
        earliest = self._offsets(earliest or {}, errors, "earliest")
        latest = self._offsets(latest or {}, errors, "latest")
        metrics = metrics or {}
        now = time.monotonic()
        topics = self._topics(md, earliest, latest, log_dirs, metrics, now)
        brokers = self._brokers(md, topics, metrics, now, procs)
        group_infos = self._group_infos(groups, latest, errors)
        self._not_asked_lines(errors)
        return ClusterSnapshot(
            taken_at=taken_at, cluster_id=md.cluster_id, controller_id=md.controller_id,
            brokers=brokers, topics=topics, groups=group_infos, quorum=quorum,
            errors=tuple(errors), bootstrap=self.bootstrap,
            poll_duration_s=time.monotonic() - started)

    # brokers not to wait on ----------------------------------------------------------------
    def _address_of(self, broker_id: int) -> tuple[str, int] | None:
        md = self.admin._metadata
        b = (md.broker(broker_id) if md is not None else None) \
            or self._known_brokers.get(broker_id)
        return (b.host, b.port) if b is not None and b.host else None

    def _set_down(self, down: dict[int, str]) -> None:
        """Tell the admin client which brokers' processes cannot answer (id -> state)."""
        self._down = down
        reasons = {}
        for bid, state in self._down.items():
            address = self._address_of(bid)
            if address is not None:
                reasons[address] = f"broker {bid} is {state}: not asked"
        for address in self.admin.set_known_down(reasons):  # shared with _quorum_admin
            self._quorum_admin.drop(address)
        for bid in self._down:  # a scrape already waiting on a broker paused mid-tick
            scrape_ = self._scrapes.get(bid)
            if scrape_ is not None:
                scrape_.cancel()

    async def _watch_processes(self) -> None:
        """While a tick waits: re-read process info, so a broker paused now is not waited on."""
        while True:
            await asyncio.sleep(WATCH_INTERVAL_S)
            down = _down_of(self._process_info([]))
            if set(down) - set(self._down):  # only adds: a failed read must not clear it
                self._set_down({**self._down, **down})

    def _with_down(self, procs: Procs) -> Procs:
        """Process info with the states seen down during the tick (paused mid-tick)."""
        out = dict(procs)
        for bid, state in self._down.items():
            out[bid] = (procs.get(bid, (None, ""))[0], state)
        return out

    def _not_asked_lines(self, errors: list[str]) -> None:
        """One line per broker that was not asked this tick, and why."""
        errors.extend(f"broker {bid} is {state}: not asked"
                      for bid, state in sorted(self._down.items()))
        errors.extend(self.admin.unresponsive.unresponsive().values())
        errors.extend(self._metrics_backoff.unresponsive().values())

    def _unresponsive_ids(self) -> set[int]:
        late = self.admin.unresponsive.unresponsive()
        return {b.id for b in self._known_brokers.values() if (b.host, b.port) in late}

    @staticmethod
    def _unwrap(name: str, result: Any, errors: list[str]) -> Any:
        if isinstance(result, BaseException):
            if isinstance(result, asyncio.CancelledError):
                raise result
            errors.append(f"{name}: {result}")
            return None
        return result

    @staticmethod
    def _offsets(found: Mapping[TP, Any], errors: list[str], what: str) -> dict[TP, int]:
        out: dict[TP, int] = {}
        failed = 0
        first: str | None = None
        for tp, r in found.items():
            if isinstance(r, OffsetResult):
                out[tp] = r.offset
            else:
                failed += 1
                first = first or str(r)
        if failed:
            errors.append(f"list offsets {what}: {failed} partition(s) failed, e.g. {first}")
        return out

    def _offline_snapshot(self, taken_at: float, errors: list[str],
                          started: float, procs: Procs) -> ClusterSnapshot:
        """The cluster answered nothing: brokers from what we knew plus process info."""
        brokers = []
        for bid in sorted(set(self._known_brokers) | set(procs)):
            known = self._known_brokers.get(bid) or BrokerInfo(bid, "", 0)
            pid, state = procs.get(bid, (None, "offline"))
            cpu, mem = self._usage(pid)
            brokers.append(BrokerInfo(bid, known.host, known.port, known.rack, False,
                                      state if state else "offline", pid, cpu, mem))
        prev = self.latest
        return ClusterSnapshot(taken_at, prev.cluster_id if prev else None, None, tuple(brokers),
                               (), (), None, tuple(errors), self.bootstrap,
                               time.monotonic() - started)

    # parts ---------------------------------------------------------------------------------
    async def _groups(self) -> tuple[dict[str, GroupInfo], dict[str, dict[TP, CommittedOffset]],
                                     list[str]]:
        listings: list[GroupListing] = await self.admin.list_groups()
        ids = [g.group_id for g in listings]
        if not ids:
            return {}, {}, []
        problems: list[str] = []
        described = await self.admin.describe_groups(ids)
        states = {g.group_id: g.state for g in listings}

        async def offsets(gid: str) -> tuple[str, dict[TP, CommittedOffset] | None]:
            try:
                return gid, await self.admin.list_consumer_group_offsets(gid)
            except KafkaError as exc:
                problems.append(f"offsets of group {gid}: {exc}")
                return gid, None

        committed = dict(await asyncio.gather(*(offsets(g) for g in ids)))
        infos = {}
        for gid in ids:
            info = described.get(gid) or GroupInfo(gid, state=states.get(gid) or "Unknown")
            infos[gid] = info
        return infos, {g: c for g, c in committed.items() if c is not None}, problems

    def _group_infos(self, groups: Any, latest: Mapping[TP, int],
                     errors: list[str]) -> tuple[GroupInfo, ...]:
        if not groups:
            return ()
        infos, committed, problems = groups
        errors.extend(problems)
        out = [with_offsets(info, committed.get(gid, {}), latest) for gid, info in infos.items()]
        # a group whose coordinator was not asked (paused, unresponsive) is not listed: keep
        # it, state unknown, until its coordinator answers or another one takes it over
        not_asked = set(self._down) | self._unresponsive_ids()
        for prev in self.latest.groups if self.latest is not None else ():
            if prev.group_id not in infos and prev.coordinator_id in not_asked:
                out.append(GroupInfo(prev.group_id, "Unknown", prev.protocol_type,
                                     coordinator_id=prev.coordinator_id))
        return tuple(sorted(out, key=lambda g: g.group_id))

    async def _log_dirs(self, md: ClusterMetadata) -> dict[int, Any] | None:
        conn = await self.admin.any_connection()
        if not conn.supports(DESCRIBE_LOG_DIRS):
            return None
        found = await self.admin.describe_log_dirs([b.id for b in md.brokers],
                                                   raise_errors=False)
        return {b: d for b, d in found.items()
                if not isinstance(d, UnsupportedVersionError)}

    async def _quorum(self, md: ClusterMetadata) -> QuorumInfo | None:
        # any broker forwards DescribeQuorum to the active controller: not while it is down
        controller = md.broker(md.controller_id) if md.controller_id is not None else None
        if controller is not None:
            reason = self.admin.unresponsive.refusal((controller.host, controller.port))
            if reason is not None:
                raise BrokerUnresponsiveError(f"controller {controller.id}: {reason}")
        task = self._quorum_task
        if task is None or task.get_loop() is not asyncio.get_running_loop():
            # else the one a previous tick started is still under way
            task = self._quorum_task = asyncio.get_running_loop().create_task(
                self._quorum_admin.describe_quorum())
        await asyncio.wait({task}, timeout=QUORUM_WAIT_S)
        if not task.done():
            raise TimeoutError(f"DescribeQuorum not answered within {QUORUM_WAIT_S:g}s "
                               "(it waits on the active controller); still asking")
        self._quorum_task = None
        return task.result()

    async def _configs_of(self, md: ClusterMetadata) -> dict[str, tuple]:
        found = await self.admin.describe_topic_configs_many(sorted(md.topics))
        out = {}
        for topic, entries in found.items():
            if isinstance(entries, KafkaError):
                continue
            out[topic] = frozen_items({n: e.value for n, e in entries.items()
                                       if not e.is_default})
        return out

    async def _metrics(self) -> dict[int, BrokerMetrics | None]:
        if self.metrics_urls is None:
            return {}
        urls = dict(self.metrics_urls())

        async def one(bid: int, url: str) -> tuple[int, BrokerMetrics | None]:
            if bid in self._down:
                return bid, None
            endpoint = _endpoint(url)
            if self._metrics_backoff.refusal(endpoint) is not None:
                if self._metrics_backoff.probe_due(endpoint):
                    self._spawn(self._probe_metrics(endpoint, url))
                return bid, None
            task = asyncio.ensure_future(scrape(url, METRICS_TIMEOUT_S))
            self._scrapes[bid] = task  # cancelled by _set_down if the broker stops mid-tick
            try:
                await asyncio.wait({task})
            finally:
                self._scrapes.pop(bid, None)
                if not task.done():
                    task.cancel()
            if task.cancelled():
                return bid, None
            exc = task.exception()
            if isinstance(exc, TimeoutError):
                self._metrics_backoff.timed_out(endpoint, (
                    f"broker {bid}'s {url} is unresponsive (no answer within "
                    f"{METRICS_TIMEOUT_S:g}s): not scraped, probed every "
                    f"{self._metrics_backoff.backoff_s:g}s"))
                return bid, None
            if exc is not None:
                if isinstance(exc, (OSError, ValueError)):
                    return bid, None
                raise exc
            self._metrics_backoff.answered(endpoint)
            try:
                return bid, parse_metrics(task.result())
            except ValueError:
                return bid, None

        return dict(await asyncio.gather(*(one(b, u) for b, u in urls.items())))

    async def _probe_metrics(self, endpoint: tuple[str, int], url: str) -> None:
        try:
            await scrape(url, self.probe_timeout)
        except (OSError, ValueError, TimeoutError):
            self._metrics_backoff.probe_failed(endpoint)
            return
        self._metrics_backoff.answered(endpoint)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _process_info(self, errors: list[str]) -> dict[int, tuple[int | None, str]]:
        if self.process_info is None:
            return {}
        try:
            return dict(self.process_info())
        except Exception as exc:  # a callback from the console: never kill the tick
            errors.append(f"process info: {exc}")
            return {}

    def _usage(self, pid: int | None) -> tuple[float | None, int | None]:
        if pid is None:
            return None, None
        try:
            import psutil
        except ImportError:
            return None, None
        try:
            proc = self._procs.get(pid)
            if proc is None:
                proc = self._procs[pid] = psutil.Process(pid)
                proc.cpu_percent(None)  # first call primes the counter
                return None, proc.memory_info().rss
            return proc.cpu_percent(None), proc.memory_info().rss
        except (psutil.Error, OSError):
            self._procs.pop(pid, None)
            return None, None

    # assembly ------------------------------------------------------------------------------
    def _rate(self, key: tuple, value: float | None, now: float) -> float | None:
        if value is None:
            return None
        return self._rates.update(key, value, now)

    def _topics(self, md: ClusterMetadata, earliest: Mapping[TP, int],
                latest: Mapping[TP, int], log_dirs: Mapping[int, Any] | None,
                metrics: Mapping[int, BrokerMetrics | None], now: float,
                ) -> tuple[TopicInfo, ...]:
        sizes: dict[tuple[int, TP], int] = {}
        dir_lag: dict[tuple[int, TP], int] = {}
        for bid, dirs in (log_dirs or {}).items():
            if isinstance(dirs, BaseException) or dirs is None:
                continue
            for d in dirs:
                for tp, (size, lag, future) in d.partitions.items():
                    if not future:
                        sizes[(bid, tp)] = size
                        dir_lag[(bid, tp)] = lag
        live_metrics = {b: m for b, m in metrics.items() if m is not None}
        topic_counters: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        for m in live_metrics.values():
            for counter, per_topic in m.topic_counters.items():
                for topic, value in per_topic.items():
                    if topic:
                        topic_counters[topic][counter] += value
        out = []
        for t in sorted(md.topics.values(), key=lambda t: t.name):
            if not self.include_internal and t.internal:
                continue
            parts = []
            records = 0
            size_total = 0
            have_size = False
            have_records = False
            for p in t.partitions:
                tp = (t.name, p.partition)
                leader_metrics = live_metrics.get(p.leader)
                lag: dict[int, int] = {}
                if leader_metrics is not None and tp in leader_metrics.replica_lag:
                    lag = dict(leader_metrics.replica_lag[tp])
                else:
                    for r in p.replicas:
                        if (r, tp) in dir_lag:
                            lag[r] = dir_lag[(r, tp)]
                if p.leader >= 0:
                    lag.setdefault(p.leader, 0)
                hw = latest.get(tp)
                start = earliest.get(tp)
                leo = leader_metrics.log_end_offset.get(tp) if leader_metrics else None
                if leo is None:
                    leo = hw
                size = sizes.get((p.leader, tp))
                if size is None and leader_metrics is not None:
                    size = leader_metrics.log_size.get(tp)
                if size is not None:
                    size_total += size
                    have_size = True
                if hw is not None and start is not None:
                    records += max(0, hw - start)
                    have_records = True
                parts.append(PartitionInfo(
                    t.name, p.partition, p.leader, p.leader_epoch, p.replicas, p.isr,
                    p.offline_replicas, start, leo, hw, frozen_items(lag), size))
            counters = topic_counters.get(t.name, {})
            out.append(TopicInfo(
                name=t.name, internal=t.internal, partitions=tuple(parts),
                configs=self._configs.get(t.name, ()),
                records=records if have_records else None,
                size_bytes=size_total if have_size else None,
                bytes_in_per_sec=self._rate(("topic", t.name, "bytes_in"),
                                            counters.get("bytes_in"), now),
                bytes_out_per_sec=self._rate(("topic", t.name, "bytes_out"),
                                             counters.get("bytes_out"), now),
                messages_in_per_sec=self._rate(("topic", t.name, "messages_in"),
                                               counters.get("messages_in"), now),
                under_replicated=any(p.under_replicated for p in parts),
                topic_id=t.topic_id))
        return tuple(out)

    def _brokers(self, md: ClusterMetadata, topics: tuple[TopicInfo, ...],
                 metrics: Mapping[int, BrokerMetrics | None], now: float,
                 procs: Procs) -> tuple[BrokerInfo, ...]:
        led: dict[int, int] = defaultdict(int)
        urp: dict[int, int] = defaultdict(int)
        offline: dict[int, int] = defaultdict(int)
        for t in topics:
            for p in t.partitions:
                if p.leader >= 0:
                    led[p.leader] += 1
                    if p.under_replicated:
                        urp[p.leader] += 1
                for r in p.replicas:
                    if p.leader < 0 or r in p.offline_replicas:
                        offline[r] += 1
        out = []
        in_metadata = {b.id for b in md.brokers}
        for b in md.brokers:
            self._known_brokers[b.id] = b
        unresponsive = self._unresponsive_ids()
        for bid in sorted(in_metadata | set(self._known_brokers) | set(procs)):
            base = self._known_brokers.get(bid) or BrokerInfo(bid, "", 0)
            pid, proc_state = procs.get(bid, (None, ""))
            state = "online" if bid in in_metadata else "offline"
            if proc_state:
                state = proc_state if (bid not in in_metadata or proc_state != "running") \
                    else "online"
            if state == "online" and bid in unresponsive:
                state = "unresponsive"
            cpu, mem = self._usage(pid)
            m = metrics.get(bid)
            out.append(BrokerInfo(
                id=bid, host=base.host, port=base.port, rack=base.rack,
                is_controller=bid == md.controller_id, state=state, pid=pid, cpu_percent=cpu,
                memory_bytes=mem, partitions_led=led[bid], under_replicated=urp[bid],
                offline=offline[bid],
                bytes_in_per_sec=self._rate(("broker", bid, "bytes_in"),
                                            m.counter_total("bytes_in") if m else None, now),
                bytes_out_per_sec=self._rate(("broker", bid, "bytes_out"),
                                             m.counter_total("bytes_out") if m else None, now),
                messages_in_per_sec=self._rate(("broker", bid, "messages_in"),
                                               m.counter_total("messages_in") if m else None,
                                               now)))
        return tuple(out)


async def _none() -> None:
    return None


def _down_of(procs: Procs) -> dict[int, str]:
    return {bid: state for bid, (_pid, state) in procs.items() if state in DOWN_STATES}


def _endpoint(url: str) -> tuple[str, int]:
    parts = urllib.parse.urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 80
