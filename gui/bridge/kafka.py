"""The real Backend: core.admin over the Kafka protocol, core.cluster for our own supervisor.

Two modes:
- local (default): re-attach to the `serve` running on the data dir (ctl socket answers), or
  start one with LocalCluster (a `python main.py serve` subprocess) and report progress from
  cluster.json while it boots. Supervisor actions go to ClusterControl.
- attach (``--attach BOOTSTRAP``): any Kafka cluster; only what the protocol gives.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.admin.browser import Browser
from core.admin.client import AdminClient, BrokerUnresponsiveError, with_offsets
from core.admin.producer import Producer, ProducerRecord
from core.cluster.client import ClusterControl, ClusterControlError
from core.cluster.layout import default_data_dir
from core.cluster.local import LocalCluster
from core.cluster.state import read_cluster_json
from gui.bridge import throttle
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
    ClusterSnapshot,
    GroupInfo,
    TopicInfo,
    with_faults,
)

log = logging.getLogger(__name__)

RESOURCE_TOPIC = 2
#: read the brokers' throttle rates every this many snapshots (and after every change)
THROTTLE_EVERY = 5


class BackendError(Exception):
    """A failure worth showing as is (the message is for the operator)."""


def network_support(document: dict[str, Any] | None) -> tuple[bool, str]:
    """Whether the serve behind ``document`` (its status / cluster.json) runs fault proxies."""
    proxies = (document or {}).get("fault_proxies")
    if proxies:
        return True, ""
    if proxies is False:
        return False, ("This serve runs without fault proxies (serve --no-fault-proxies): "
                       "restart it without that option to inject network faults.")
    return False, ("The running serve publishes no fault proxies (started by an older "
                   "kaflab?): restart it to inject network faults.")


def netfault_of(entry: dict[str, Any]) -> tuple[str | None, float | None]:
    """(mode, latency ms) of one cluster.json broker entry's ``netfault`` (None, None: none)."""
    fault = entry.get("netfault")
    if not isinstance(fault, dict):
        return None, None
    mode = fault.get("mode")
    ms = fault.get("latency_ms")
    return (mode if mode and mode != "ok" else None,
            float(ms) if isinstance(ms, int | float) and ms > 0 else None)


def _bootstrap_of(document: dict[str, Any] | None) -> str:
    brokers = (document or {}).get("brokers", [])
    return ",".join(f"{b.get('host', '127.0.0.1')}:{b['port']}" for b in brokers if "port" in b)


class KafkaBackend:
    """Backend over core.admin (+ core.cluster when supervised). See gui.bridge.backend."""

    def __init__(self, *, attach: str | None = None, data_dir: str | Path | None = None,
                 brokers: int = 3, port: int = 9092, ready_timeout: float = 120.0,
                 config: dict[str, str] | None = None) -> None:
        self.attach = attach
        self.data_dir = Path(data_dir).expanduser().absolute() if data_dir else None
        self.brokers = brokers
        self.port = port
        self.ready_timeout = ready_timeout
        self.config = dict(config or {})
        self.admin: AdminClient | None = None
        self.control: ClusterControl | None = None
        self.local: LocalCluster | None = None
        self._poller: Any = None
        self.capabilities = Capabilities(bootstrap=attach or "", supervised=False)
        #: broker id -> (leader, follower) throttle rate in bytes/s, refreshed in background
        self._throttles: dict[int, tuple[int | None, int | None]] = {}
        self._throttle_task: asyncio.Task[Any] | None = None
        self._snapshots = 0

    # -- lifecycle ------------------------------------------------------------------------

    async def open(self, progress: Callable[[str, float], None]) -> Capabilities:
        if self.attach:
            progress(f"Connecting to {self.attach}…", 0.3)
            self.admin = AdminClient(self.attach, request_timeout=10.0, retries=2)
            try:
                await asyncio.wait_for(self.admin.metadata([]), 20)
            except Exception as exc:
                raise BackendError(f"Could not reach a Kafka broker at {self.attach}: "
                                   f"{exc}") from exc
            self.capabilities = Capabilities(
                bootstrap=self.attach, supervised=False,
                reason=(f"Attached to an external cluster ({self.attach}) with --attach: "
                        "process actions need the kaflab supervisor."))
            progress("Connected", 1.0)
            return self.capabilities

        data_dir = self.data_dir or default_data_dir()
        self.data_dir = data_dir
        self.control = ClusterControl(data_dir, timeout=60.0)
        progress(f"Looking for a running cluster in {data_dir}…", 0.05)
        owns = False
        if await self.control.is_running_async():
            document = await self.control.status()
            bootstrap = _bootstrap_of(document)
            progress(f"Re-attached to the running cluster ({bootstrap})", 0.9)
        else:
            progress(f"Starting {self.brokers} brokers on 127.0.0.1:{self.port}…", 0.1)
            self.local = LocalCluster(data_dir, brokers=self.brokers, port=self.port,
                                      config=self.config, ready_timeout=self.ready_timeout)
            start = asyncio.ensure_future(asyncio.to_thread(self.local.start))
            while not start.done():
                await asyncio.wait({start}, timeout=0.4)
                doc = read_cluster_json(data_dir) or {}
                states = [b.get("state") for b in doc.get("brokers", [])]
                running = sum(1 for s in states if s == "running")
                if states:
                    progress(f"Starting brokers: {running} of {len(states)} running…",
                             0.15 + 0.8 * running / max(1, len(states)))
            try:
                start.result()
            except Exception as exc:
                self.local = None
                raise BackendError(f"The local cluster did not start.\n\n{exc}") from exc
            bootstrap = self.local.bootstrap or _bootstrap_of(read_cluster_json(data_dir))
            owns = True
            progress(f"Cluster ready at {bootstrap}", 1.0)
        self.admin = AdminClient(bootstrap, request_timeout=10.0, retries=3)
        document = None
        with contextlib.suppress(ClusterControlError):
            document = await self.control.status()
        faults, why = network_support(document or read_cluster_json(data_dir))
        self.capabilities = Capabilities(bootstrap=bootstrap, supervised=True,
                                         data_dir=data_dir, owns_cluster=owns,
                                         network_faults=faults, network_reason=why)
        return self.capabilities

    async def close(self, stop_cluster: bool) -> None:
        if self._throttle_task is not None:
            self._throttle_task.cancel()
        poller_close = getattr(self._poller, "close", None)
        if poller_close is not None:
            with contextlib.suppress(Exception):
                result = poller_close()
                if asyncio.iscoroutine(result):
                    await result
        if self.admin is not None:
            with contextlib.suppress(Exception):
                await self.admin.close()
        if self.local is not None and stop_cluster:
            await asyncio.to_thread(self.local.stop)
            self.local = None

    # -- snapshots ------------------------------------------------------------------------

    def _make_poller(self) -> Any:
        """core.admin.poller.SnapshotPoller, fed with cluster.json's metrics ports and pids."""
        try:
            from core.admin.poller import SnapshotPoller
        except ImportError:
            return None
        kwargs: dict[str, Any] = {}
        if self.capabilities.supervised and self.data_dir is not None:
            data_dir = self.data_dir

            def brokers() -> list[dict[str, Any]]:
                return list((read_cluster_json(data_dir) or {}).get("brokers", []))

            def metrics_urls() -> dict[int, str]:
                return {int(b["id"]): f"http://{b.get('host', '127.0.0.1')}:"
                        f"{b['metrics_port']}/metrics"
                        for b in brokers() if b.get("metrics_port")}

            def process_info() -> dict[int, tuple[int | None, str]]:
                return {int(b["id"]): (b.get("pid"), str(b.get("state") or "unknown"))
                        for b in brokers()}

            kwargs = {"metrics_urls": metrics_urls, "process_info": process_info}
        try:
            return SnapshotPoller(self.capabilities.bootstrap, interval_s=1.0, **kwargs)
        except TypeError:
            log.warning("SnapshotPoller signature not understood; using the basic poller")
            return None

    async def snapshot(self) -> ClusterSnapshot:
        assert self.admin is not None
        if self._poller is None:
            self._poller = self._make_poller() or False
            self._share_unresponsive()
        if self._poller:
            snap = await self._poller.poll_once()
        else:
            snap = await self._basic_snapshot()
        return self._with_faults(snap)

    def _share_unresponsive(self) -> None:
        """The action client adopts the poller's brokers-not-to-wait-on (paused / stopped as
        the supervisor reports them each tick, and those that timed out, with its back-off
        and probes): a request that any broker can answer goes to one that answers, one for
        a paused broker (its partitions' leader, its configs) fails at once with the reason
        ("broker 2 is paused: not asked"), instead of waiting out 10 s x retries."""
        poller_admin = getattr(self._poller, "admin", None) if self._poller else None
        shared = getattr(poller_admin, "unresponsive", None)
        if self.admin is not None and shared is not None:
            self.admin.unresponsive = shared

    def _with_faults(self, snap: ClusterSnapshot) -> ClusterSnapshot:
        """The snapshot's brokers as BrokerFaults: network fault from cluster.json, throttle
        rates from the last DescribeConfigs (re-read in the background every few polls)."""
        from dataclasses import replace

        self._snapshots += 1
        due = self._snapshots % THROTTLE_EVERY == 1
        if due and (self._throttle_task is None or self._throttle_task.done()):
            ids = [b.id for b in snap.brokers if b.state in ("online", "running")]
            self._throttle_task = asyncio.ensure_future(self._refresh_throttles(ids))
        netfaults: dict[int, tuple[str | None, float | None]] = {}
        if self.capabilities.supervised and self.data_dir is not None:
            for entry in (read_cluster_json(self.data_dir) or {}).get("brokers", []):
                if "id" in entry:
                    netfaults[int(entry["id"])] = netfault_of(entry)
        brokers = []
        for b in snap.brokers:
            mode, ms = netfaults.get(b.id, (None, None))
            leader, follower = self._throttles.get(b.id, (None, None))
            brokers.append(with_faults(b, network_mode=mode, network_latency_ms=ms,
                                       leader_throttle_bps=leader,
                                       follower_throttle_bps=follower))
        return replace(snap, brokers=tuple(brokers))

    async def _refresh_throttles(self, broker_ids: list[int]) -> None:
        if self.admin is None or not broker_ids:
            return
        try:
            found = await throttle.read_all(self.admin, broker_ids)
        except Exception:
            log.debug("reading throttle rates failed", exc_info=True)
            return
        self._throttles.update(found)

    async def _basic_snapshot(self) -> ClusterSnapshot:
        """A snapshot from the protocol alone (used until/unless core.admin.poller exists)."""
        from dataclasses import replace

        admin = self.admin
        assert admin is not None
        started = time.monotonic()
        errors: list[str] = []
        md = await admin.metadata()
        tps = [(t, p.partition) for t, info in md.topics.items() for p in info.partitions]
        ends: dict[Any, Any] = {}
        starts: dict[Any, Any] = {}
        if tps:
            ends = await admin.list_offsets(tps, "latest", raise_errors=False)
            starts = await admin.list_offsets(tps, "earliest", raise_errors=False)
        topics = []
        for name in sorted(md.topics):
            info: TopicInfo = md.topics[name]
            parts = []
            for p in info.partitions:
                end = getattr(ends.get((name, p.partition)), "offset", None)
                start = getattr(starts.get((name, p.partition)), "offset", None)
                parts.append(replace(p, log_end_offset=end, high_watermark=end,
                                     log_start_offset=start))
            records = sum(x.records or 0 for x in parts)
            topics.append(replace(info, partitions=tuple(parts), records=records,
                                  under_replicated=any(x.under_replicated for x in parts)))
        quorum = None
        try:
            quorum = await admin.describe_quorum()
        except Exception as exc:
            errors.append(f"DescribeQuorum: {exc}")
        groups: list[GroupInfo] = []
        try:
            listing = await admin.list_groups()
            described = await admin.describe_groups([g.group_id for g in listing])
            for gid, g in described.items():
                try:
                    committed = await admin.list_consumer_group_offsets(gid)
                    end_map = {tp: getattr(ends.get(tp), "offset", None) for tp in committed}
                    groups.append(with_offsets(g, committed,
                                               {k: v for k, v in end_map.items()
                                                if v is not None}))
                except Exception as exc:
                    errors.append(f"group {gid}: {exc}")
                    groups.append(g)
        except Exception as exc:
            errors.append(f"groups: {exc}")
        brokers = list(md.brokers)
        if self.capabilities.supervised and self.data_dir is not None:
            brokers = self._with_supervisor_state(brokers, md.controller_id)
        led: dict[int, int] = {}
        for t in topics:
            for p in t.partitions:
                if p.leader >= 0:
                    led[p.leader] = led.get(p.leader, 0) + 1
        brokers = [replace(b, partitions_led=led.get(b.id, 0),
                           is_controller=(b.id == md.controller_id)) for b in brokers]
        return ClusterSnapshot(
            taken_at=time.time(), cluster_id=md.cluster_id, controller_id=md.controller_id,
            brokers=tuple(sorted(brokers, key=lambda b: b.id)), topics=tuple(topics),
            groups=tuple(sorted(groups, key=lambda g: g.group_id)), quorum=quorum,
            errors=tuple(errors), bootstrap=self.capabilities.bootstrap,
            poll_duration_s=time.monotonic() - started)

    def _with_supervisor_state(self, brokers: list[Any], controller: int | None) -> list[Any]:
        from dataclasses import replace

        from gui.bridge.types import BrokerInfo

        document = read_cluster_json(self.data_dir) or {}  # type: ignore[arg-type]
        known = {b.id: b for b in brokers}
        out = []
        for entry in document.get("brokers", []):
            bid = int(entry["id"])
            base = known.pop(bid, None) or BrokerInfo(
                id=bid, host=entry.get("host", "127.0.0.1"), port=int(entry.get("port", 0)),
                state="offline")
            out.append(replace(base, state=entry.get("state") or base.state,
                               pid=entry.get("pid")))
        return out + list(known.values())

    # -- admin ------------------------------------------------------------------------------

    async def create_topic(self, name: str, partitions: int, replication_factor: int,
                           configs: dict[str, str]) -> None:
        assert self.admin is not None
        await self.admin.create_topic(name, partitions, replication_factor, configs or None)

    async def delete_topic(self, name: str) -> None:
        assert self.admin is not None
        result = await self.admin.delete_topics([name])
        if result.get(name) is not None:
            raise result[name]  # type: ignore[misc]

    async def create_partitions(self, name: str, total: int) -> None:
        assert self.admin is not None
        result = await self.admin.create_partitions({name: total})
        if result.get(name) is not None:
            raise result[name]  # type: ignore[misc]

    async def describe_topic_configs(self, name: str) -> list[ConfigEntry]:
        assert self.admin is not None
        described = await self.admin.describe_topic_configs(name)
        out: dict[str, ConfigEntry] = {}
        for key, c in described.items():
            source = c.source or ""
            is_default = c.is_default or source in ("DEFAULT_CONFIG", "STATIC_BROKER_CONFIG",
                                                    "DYNAMIC_DEFAULT_BROKER_CONFIG")
            out[key] = ConfigEntry(key, c.value, is_default, source, c.read_only, c.sensitive,
                                   c.documentation or "")
        for key, d in TOPIC_CONFIGS.items():
            out.setdefault(key, ConfigEntry(key, d.default, True, "DEFAULT_CONFIG", doc=d.doc))
        return [out[k] for k in sorted(out)]

    async def alter_topic_configs(self, name: str, set_: dict[str, str],
                                  delete: list[str]) -> None:
        assert self.admin is not None
        await self.admin.incremental_alter_configs(RESOURCE_TOPIC, name, set_, delete)

    async def elect_preferred_leaders(self, topic: str, partitions: list[int] | None) -> str:
        assert self.admin is not None
        parts = partitions if partitions is not None else await self.admin.partitions_of(topic)
        results = await self.admin.elect_leaders([(topic, p) for p in parts])
        failed = {tp: e for tp, e in results.items() if e is not None}
        if failed:
            tp, err = next(iter(failed.items()))
            raise BackendError(f"{len(failed)} partition(s) could not elect their preferred "
                               f"leader; {tp[0]}-{tp[1]}: {err}")
        return f"Preferred leader election done for {len(parts)} partition(s) of {topic}"

    async def delete_group(self, group_id: str) -> None:
        assert self.admin is not None
        result = await self.admin.delete_groups([group_id])
        if result.get(group_id) is not None:
            raise result[group_id]  # type: ignore[misc]

    async def reset_offsets(self, group_id: str, topic: str, partitions: list[int] | None,
                            to: str, value: int | None) -> dict[int, int]:
        """Kafka's rule: only an inactive (Empty/Dead) group; else GroupNotInactiveError with
        kafka-consumer-groups.sh's message, naming the members. (Groups whose members are a
        running scenario's consumers go through gui.bridge.scenarios instead.)"""
        assert self.admin is not None
        from core.admin.offsets_io import reset_offsets, reset_target

        result = await reset_offsets(self.admin, group_id, topic, reset_target(to, value),
                                     partitions)
        return {p: off for (_t, p), off in result.items()}

    async def broker_action(self, action: str, broker_id: int | None) -> str:
        if self.control is None:
            raise BackendError(self.capabilities.reason or "No supervisor for this cluster.")
        try:
            response = await self.control.request(action, broker_id)
        except ClusterControlError as exc:
            raise BackendError(str(exc)) from exc
        return str(response.get("message", "done"))

    # -- faults (issue #8) ------------------------------------------------------------------

    async def network_fault(self, broker_id: int, fault: str, ms: int | None) -> str:
        """Apply (or clear) a network fault on one broker's proxy through the supervisor."""
        if self.control is None:
            raise BackendError(self.capabilities.reason or "No supervisor for this cluster.")
        if not self.capabilities.network_faults:
            raise BackendError(self.capabilities.network_reason
                               or "This cluster runs no fault proxies.")
        if fault not in (*NETWORK_FAULTS, "clear"):
            raise BackendError(f"Unknown network fault {fault!r}")
        if fault == "latency" and (ms is None or ms < 0):
            raise BackendError("Added latency needs a delay in ms (0 or more).")
        try:
            return await self.control.netfault(broker_id, fault,
                                               ms=ms if fault == "latency" else None)
        except ClusterControlError as exc:
            raise BackendError(str(exc)) from exc

    async def set_replication_throttle(self, broker_id: int, spec: ThrottleSpec) -> str:
        """Kafka's replication throttle on one broker (IncrementalAlterConfigs), read back."""
        assert self.admin is not None
        topics = await self._topics_now()
        try:
            message = await throttle.apply_throttle(self.admin, broker_id, spec, topics)
        except throttle.ThrottleError as exc:
            raise BackendError(str(exc)) from exc
        self._throttles[broker_id] = await throttle.read_throttles(self.admin, broker_id)
        return message

    async def clear_replication_throttle(self, broker_id: int) -> str:
        """Remove the broker's throttle rates (and the topics' lists once nobody is throttled)."""
        assert self.admin is not None
        md = await self.admin.metadata()
        message = await throttle.clear_throttle(
            self.admin, broker_id, [b.id for b in md.brokers], md.topics.values())
        self._throttles[broker_id] = await throttle.read_throttles(self.admin, broker_id)
        return message

    async def _topics_now(self) -> list[TopicInfo]:
        assert self.admin is not None
        return list((await self.admin.metadata()).topics.values())

    # -- data -------------------------------------------------------------------------------

    async def produce(self, spec: ProduceSpec, progress: Progress) -> ProduceReport:
        assert self.admin is not None
        report = ProduceReport(requested=spec.count)
        started = time.monotonic()
        rng = random.Random()
        # Know the topic before producing: right after CreateTopics a broker may not have it in
        # its metadata yet, and asking it to auto-create answers TOPIC_ALREADY_EXISTS.
        for _ in range(15):
            with contextlib.suppress(Exception):
                if spec.topic in (await self.admin.metadata([spec.topic])).topics:
                    break
            await asyncio.sleep(0.2)
        producer = Producer(self.admin, acks=spec.acks)
        headers = tuple((k, v.encode()) for k, v in spec.headers)
        chunk = 500 if spec.rate <= 0 else max(1, int(spec.rate / 10))
        sent = 0
        while sent < spec.count:
            n = min(chunk, spec.count - sent)
            now_ms = int(time.time() * 1000)
            records = []
            for i in range(sent, sent + n):
                key = render_template(spec.key, i, rng, now_ms)
                value = render_template(spec.value, i, rng, now_ms)
                records.append(ProducerRecord(value.encode(), key.encode() if key else None,
                                              headers, spec.partition))
            reports = await producer.send_many(spec.topic, records)
            for attempt in range(5):  # retriable errors (e.g. a just-created partition)
                moved = self._around_paused_leaders(spec, records, reports)
                retry = [i for i, r in enumerate(reports)
                         if i in moved or (not r.ok and getattr(r.error, "retriable", False)
                                           and not isinstance(r.error, BrokerUnresponsiveError))]
                if not retry:
                    break
                await asyncio.sleep(0.2 * (attempt + 1))
                with contextlib.suppress(Exception):
                    await self.admin.metadata([spec.topic])
                again = await producer.send_many(spec.topic, [records[i] for i in retry])
                for i, r in zip(retry, again, strict=True):
                    reports[i] = r
            for r in reports:
                if r.ok:
                    report.delivered += 1
                    if r.offset >= 0:
                        first, last = report.offsets.get(r.partition, (r.offset, r.offset))
                        report.offsets[r.partition] = (min(first, r.offset),
                                                       max(last, r.offset))
                else:
                    report.failed += 1
                    if len(report.errors) < 5:
                        report.errors.append(str(r.error))
            sent += n
            progress(sent, spec.count)
            if spec.rate > 0:
                ahead = sent / spec.rate - (time.monotonic() - started)
                if ahead > 0:
                    await asyncio.sleep(ahead)
        report.elapsed_s = time.monotonic() - started
        return report

    def _around_paused_leaders(self, spec: ProduceSpec, records: list[ProducerRecord],
                               reports: list[Any]) -> set[int]:
        """Records refused because their partition's leader is paused / unresponsive: a record
        the user placed nowhere (no key, no partition) moves to a partition whose leader
        answers, as Kafka's partitioner skips unavailable partitions (returned: the indexes
        to retry); others stay failed, with the reason ("broker 2 is paused: not asked")."""
        assert self.admin is not None
        md = self.admin._metadata
        topic = md.topics.get(spec.topic) if md is not None else None
        if spec.partition is not None or topic is None:
            return set()
        alive = [p.partition for p in topic.partitions
                 if p.leader >= 0 and self.admin.refusal_of(p.leader) is None]
        moved = set()
        choice = random.choice(alive) if alive else None  # sticky, as the producer's
        for i, r in enumerate(reports):
            if not r.ok and isinstance(r.error, BrokerUnresponsiveError) \
                    and records[i].key is None and choice is not None:
                old = records[i]
                records[i] = ProducerRecord(old.value, None, old.headers, choice)
                moved.add(i)
        return moved

    @staticmethod
    def _record(r: Any) -> Record:
        return Record(r.topic, r.partition, r.offset, r.timestamp, r.key, r.value,
                      tuple(r.headers))

    async def browse(self, spec: BrowseSpec) -> list[Record]:
        assert self.admin is not None
        browser = Browser(self.admin)
        start: Any = {"earliest": "earliest", "latest": ("latest_n", spec.value),
                      "offset": ("offset", spec.value),
                      "timestamp": ("timestamp", spec.value)}[spec.start]
        parts = [spec.partition] if spec.partition is not None else None
        per_partition = spec.value if spec.start == "latest" else spec.limit
        records = await browser.read(spec.topic, parts, start,
                                     limit=max(1, min(per_partition, spec.limit)))
        out = [self._record(r) for r in records]
        return out[-spec.limit:] if spec.start == "latest" else out[:spec.limit]

    async def tail(self, topic: str, partition: int | None,
                   positions: dict[int, int] | None) -> tuple[list[Record], dict[int, int]]:
        assert self.admin is not None
        browser = Browser(self.admin)
        parts = [partition] if partition is not None else await self.admin.partitions_of(topic)
        positions = dict(positions or {})
        missing = [p for p in parts if p not in positions]
        if missing:
            positions.update(await browser.start_offsets(topic, missing, "latest"))

        async def one(p: int) -> list[Any]:
            result = await browser.fetch(topic, p, positions[p], max_wait_ms=500)
            positions[p] = max(positions[p], result.next_offset)
            return result.records

        batches = await asyncio.gather(*(one(p) for p in parts), return_exceptions=True)
        records = [self._record(r) for b in batches if isinstance(b, list) for r in b]
        records.sort(key=lambda r: (r.timestamp_ms, r.partition, r.offset))
        return records, positions
