"""BrokerServer: the composition root that wires one broker together.

Storage (LogManager), the metadata log and image, the controller (when this node leads the
quorum), the replica manager, the group coordinator, the listener, metrics and periodic
maintenance. Request handlers reach everything through `ctx.broker`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kio.schema.errors import ErrorCode
from kio.schema.index import api_key_map

from core.broker import handlers  # noqa: F401 - importing registers every API handler
from core.broker.api import REGISTRY, RequestContext
from core.broker.metrics import BrokerMetrics, ReplicationQuotaCollector, StateCollector
from core.broker.quorum import propose_isr
from core.common.config import BrokerConfig
from core.common.errors import KafkaError, TopicAlreadyExistsError
from core.common.topics import validate_topic_name
from core.common.types import TopicPartition
from core.metadata.controller import QuorumController
from core.metadata.image import MetadataImage
from core.metadata.log import LocalMetadataLog
from core.metadata.records import decode_record
from core.network.client import KafkaConnection
from core.network.server import KafkaListener
from core.protocol.build import build
from core.protocol.codec import (
    API_VERSIONS_KEY,
    FrameError,
    decode_body,
    decode_header,
    encode_response,
    encode_response_parts,
    response_class,
)
from core.replication.fetcher import ReplicaFetcherManager
from core.replication.replica_manager import ReplicaManager
from core.storage.log_manager import LogManager

log = logging.getLogger(__name__)

OFFSETS_TOPIC = "__consumer_offsets"


def parse_listener(listeners: str) -> tuple[str, int]:
    """`PLAINTEXT://127.0.0.1:9092` -> ("127.0.0.1", 9092)."""
    first = listeners.split(",")[0].strip()
    _, _, address = first.rpartition("://")
    host, _, port = address.rpartition(":")
    return host or "127.0.0.1", int(port)


def parse_voters(voters: str) -> dict[int, tuple[str, int]]:
    """controller.quorum.voters `1@host:port,2@host:port` -> {1: (host, port), ...}."""
    result: dict[int, tuple[str, int]] = {}
    for item in filter(None, (v.strip() for v in voters.split(","))):
        node, _, address = item.partition("@")
        host, _, port = address.rpartition(":")
        result[int(node)] = (host, int(port))
    return result


class BrokerServer:
    """One broker: call `await start()`, then `await stop()` for a clean shutdown."""

    def __init__(self, config: BrokerConfig) -> None:
        self.config = config
        self.node_id: int = config["node.id"]
        self.host, self.port = parse_listener(config["listeners"])
        advertised = config["advertised.listeners"]
        self.advertised_host, self.advertised_port = (
            parse_listener(advertised) if advertised else (self.host, self.port))
        self.data_dir = Path(str(config["log.dirs"]).split(",")[0])
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.voters = parse_voters(config["controller.quorum.voters"] or "")
        self.cluster_id = self._cluster_id()
        self.image = MetadataImage()
        self.metrics = BrokerMetrics()
        self.logs = LogManager(self.data_dir, config.topic_defaults())
        self.replicas = ReplicaManager(self.node_id, config, self.logs)
        self.metadata_log: Any = None
        self.controller: QuorumController | None = None
        self.group_coordinator: Any = None
        self.transaction_coordinator: Any = None
        self.producer_ids: Any = None
        self.fetch_sessions: Any = None
        self.listener: KafkaListener | None = None
        self.metrics_port: int | None = None
        self.started_at = time.time()
        self.incarnation_id = uuid.uuid4()
        self.broker_epoch = -1
        self.shutting_down = False
        self.controller_conns: dict[int, Any] = {}
        self.fetchers = ReplicaFetcherManager(
            self.node_id, self._connect_broker,
            max_bytes=config["replica.fetch.max.bytes"],
            max_wait_ms=config["replica.fetch.wait.max.ms"],
            quota=self.replicas.quotas.follower, backoff_ms=config["replica.fetch.backoff.ms"])
        self.replicas.role_listeners.append(self._on_role_for_fetchers)
        self.replicas.removal_listeners.append(self.fetchers.unfollow)
        self._tasks: list[asyncio.Task[Any]] = []
        self._image_dirty = False
        self._stopping = False
        #: group coordinator clean-ups of deleted topics still writing their tombstones
        self._deletion_tasks: set[asyncio.Task[Any]] = set()

    # identity ----------------------------------------------------------------------------
    def _cluster_id(self) -> str:
        if self.config.raw.get("cluster.id"):
            return self.config.raw["cluster.id"]
        if len(self.voters) > 1:  # every broker of one cluster derives the same id
            digest = hashlib.sha256(self.config["controller.quorum.voters"].encode()).digest()
            return str(uuid.UUID(bytes=digest[:16]))
        meta = self.data_dir / "meta.properties"
        if meta.exists():
            for line in meta.read_text().splitlines():
                if line.startswith("cluster.id="):
                    return line.split("=", 1)[1]
        cluster_id = str(uuid.uuid4())
        meta.write_text(f"version=1\ncluster.id={cluster_id}\nnode.id={self.node_id}\n")
        return cluster_id

    # lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        self.logs.load_all()
        self._start_metadata()
        self._start_services()
        if self.group_coordinator is not None:
            await self.group_coordinator.start()
        if self.transaction_coordinator is not None:
            await self.transaction_coordinator.start()
        self.listener = KafkaListener(
            self.host, self.port, self.dispatch,
            max_request_bytes=self.config["socket.request.max.bytes"],
            idle_timeout_s=self.config["connections.max.idle.ms"] / 1000.0)
        await self.listener.start()
        self.port = self.listener.port
        if not self.config.raw.get("advertised.listeners"):
            self.advertised_port = self.port
        await self._register()
        self.metrics.add_collector(StateCollector(self._metrics_state))
        self.metrics.add_collector(ReplicationQuotaCollector(self.replicas.quotas))
        metrics_port = self.config["metrics.port"]
        if metrics_port is not None and metrics_port >= 0:
            self.metrics_port = self.metrics.serve(metrics_port)
        self._tasks.append(asyncio.create_task(self._maintenance_loop()))
        log.info("broker %d listening on %s:%d (cluster %s)", self.node_id, self.host,
                 self.port, self.cluster_id)

    def _start_metadata(self) -> None:
        others = [v for v in self.voters if v != self.node_id]
        if others:
            from core.broker.quorum import start_raft_metadata
            self.metadata_log = start_raft_metadata(self)
        else:
            self.metadata_log = LocalMetadataLog(
                self.data_dir / "__cluster_metadata.log", self.node_id,
                snapshot_max_bytes=self.config["metadata.log.max.record.bytes.between.snapshots"],
                image=lambda: self.image)
        self.metadata_log.add_batch_listener(self._on_metadata_entries)
        self.controller = QuorumController(self.node_id, self.config, self.metadata_log,
                                           lambda: self.image)
        if isinstance(self.metadata_log, LocalMetadataLog):
            self.metadata_log.replay()
            self._apply_image()

    def _start_services(self) -> None:
        from core.broker.fetch_sessions import FetchSessionCache
        from core.broker.producer_ids import ProducerIdManager
        self.fetch_sessions = FetchSessionCache()
        self.producer_ids = ProducerIdManager(self)
        self.group_coordinator = _make_group_coordinator(self)
        if self.group_coordinator is not None:
            self.replicas.role_listeners.append(self._on_partition_role)
            # partitions recovered from the local metadata log before we listened
            for partition in list(self.replicas.partitions.values()):
                if partition.is_leader:
                    self._on_partition_role(partition, True)
        from core.broker.txn_store import make_transaction_coordinator, on_partition_role
        self.transaction_coordinator = make_transaction_coordinator(self)
        self.replicas.role_listeners.append(
            lambda partition, is_leader: on_partition_role(self, partition, is_leader))
        for partition in list(self.replicas.partitions.values()):
            if partition.is_leader:
                on_partition_role(self, partition, True)

    async def _register(self) -> None:
        """Register with the controller and get unfenced (single voter: directly)."""
        if isinstance(self.metadata_log, LocalMetadataLog):
            assert self.controller is not None
            epoch = await self.controller.register_broker(
                self.node_id, self.advertised_host, self.advertised_port, None,
                uuid.uuid4().hex)
            self.broker_epoch = epoch  # AlterPartition carries it (checked by the controller)
            await self.controller.heartbeat(self.node_id, epoch, want_fence=False,
                                            want_shutdown=False)
        else:
            from core.broker.quorum import register_with_controller
            await register_with_controller(self)

    async def stop(self) -> None:
        """Controlled shutdown: move leadership away, stop serving, flush and close logs."""
        if self._stopping:
            return
        self._stopping = True
        try:
            await asyncio.wait_for(self._controlled_shutdown(), 10)
        except Exception as exc:  # shutting down anyway; say why it was not graceful
            log.warning("controlled shutdown incomplete: %r", exc)
        for task in self._tasks:
            task.cancel()
        await self._bounded("replica fetchers", self.fetchers.close())
        for conn in self.controller_conns.values():
            conn.close_nowait()
        if self._deletion_tasks:  # offsets of deleted topics: let their tombstones land
            pending = list(self._deletion_tasks)
            await self._bounded("removal of deleted topics' offsets",
                                asyncio.gather(*pending, return_exceptions=True))
            for task in pending:
                task.cancel()
        for name, service in (("transaction coordinator", self.transaction_coordinator),
                              ("group coordinator", self.group_coordinator)):
            if service is not None:
                await self._bounded(name, service.stop())
        if self.listener:
            await self._bounded("listener", self.listener.stop())
        try:
            self.logs.checkpoint()
        except OSError as exc:  # e.g. a full disk: the logs below are still flushed
            log.error("cannot write checkpoints at shutdown: %s", exc)
        self.logs.close()
        close = getattr(self.metadata_log, "close", None)
        if close:
            result = close()
            if asyncio.iscoroutine(result):
                await self._bounded("metadata log", result)
        log.info("broker %d stopped", self.node_id)

    @staticmethod
    async def _bounded(name: str, step: Any, timeout_s: float = 5.0) -> None:
        """Run one shutdown step; a step that hangs or fails is logged, not fatal."""
        try:
            await asyncio.wait_for(step, timeout_s)
        except TimeoutError:
            log.warning("shutdown: %s did not stop within %.0fs", name, timeout_s)
        except Exception:
            log.exception("shutdown: stopping %s failed", name)

    async def _controlled_shutdown(self) -> None:
        if isinstance(self.metadata_log, LocalMetadataLog):
            return
        from core.broker.quorum import controlled_shutdown
        await controlled_shutdown(self)

    # metadata ----------------------------------------------------------------------------
    def _on_metadata_entries(self, entries: Sequence[tuple[int, bytes]]) -> None:
        """Fold a batch of committed metadata entries into one new image (linear in the
        batch: MetadataImage.apply_batch); readers only ever see whole batches applied."""
        records = []
        for offset, entry in entries:
            try:
                records.append(decode_record(entry))
            except ValueError:
                log.error("skipping undecodable metadata record at offset %d", offset)
                records.append(_NOOP)
        previous = self.image
        self.image = self.image.apply_batch(records, entries[-1][0])
        self._on_topics_deleted(previous, self.image)
        if not self._image_dirty:
            self._image_dirty = True
            try:
                asyncio.get_running_loop().call_soon(self._apply_image)
            except RuntimeError:  # replay before the loop runs: start() applies it
                self._image_dirty = False

    def _on_topics_deleted(self, previous: MetadataImage, image: MetadataImage) -> None:
        """Topics gone from the image (by topic id: one deleted and recreated under the same
        name counts) lose their committed offsets in the groups this broker coordinates, as
        Kafka's BrokerMetadataPublisher calls GroupCoordinator.onPartitionsDeleted."""
        coordinator = self.group_coordinator
        if coordinator is None or previous.topics is image.topics:
            return
        deleted = []
        for name, topic in previous.topics.items():
            current = image.topics.get(name)
            if current is None or current.topic_id != topic.topic_id:
                deleted += [TopicPartition(name, p) for p in topic.partitions]
        if not deleted:
            return
        try:
            task = asyncio.get_running_loop().create_task(
                coordinator.on_partitions_deleted(deleted))
        except RuntimeError:  # replay before the loop runs: no group is loaded yet
            return
        self._deletion_tasks.add(task)
        task.add_done_callback(self._deletion_done)

    def _deletion_done(self, task: asyncio.Task[Any]) -> None:
        self._deletion_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("removing offsets of deleted topics failed", exc_info=task.exception())

    def _apply_image(self) -> None:
        self._image_dirty = False
        try:
            self.replicas.apply_image(self.image)
        except Exception:  # one bad partition must not stop metadata from flowing
            log.exception("applying metadata offset %d failed", self.image.offset)
        finally:
            if self.controller is not None:
                self.controller.notify_applied()

    def _on_role_for_fetchers(self, partition: Any, is_leader: bool) -> None:
        if is_leader:
            self.fetchers.unfollow(partition.tp)
        else:
            self.fetchers.follow(partition, partition.registration.leader)

    async def _connect_broker(self, broker_id: int) -> KafkaConnection:
        """A replication connection to another broker, found in the metadata image."""
        registration = self.image.brokers.get(broker_id)
        if registration is None:
            raise KafkaError(f"broker {broker_id} is not registered",
                             ErrorCode.broker_not_available)
        return await KafkaConnection.connect(registration.host, registration.port,
                                             client_id=f"replica-fetcher-{self.node_id}",
                                             timeout=5.0)

    def _on_partition_role(self, partition: Any, is_leader: bool) -> None:
        if partition.tp.topic != OFFSETS_TOPIC or self.group_coordinator is None:
            return
        coordinator = self.group_coordinator
        if is_leader:
            asyncio.get_running_loop().create_task(coordinator.on_elected(partition.tp.partition))
        else:
            asyncio.get_running_loop().create_task(
                coordinator.on_resigned(partition.tp.partition))

    @property
    def controller_id(self) -> int:
        return self.metadata_log.leader_id() if self.metadata_log else -1

    # requests ----------------------------------------------------------------------------
    async def dispatch(self, frame: memoryview, peer: tuple[str, int]
                       ) -> bytes | list[Any] | None:
        """Decode one request frame, run its handler, encode the response."""
        try:
            header, pos = decode_header(frame)
        except FrameError as exc:
            raise ConnectionAbortedError(str(exc)) from None
        spec = REGISTRY.get(header.api_key)
        if spec is None or not spec.min_version <= header.api_version <= spec.max_version:
            if header.api_key == API_VERSIONS_KEY:
                return self._api_versions_fallback(header.correlation_id)
            name = api_key_map.get(header.api_key, "unknown")
            raise ConnectionAbortedError(
                f"unsupported api {header.api_key} ({name}) version {header.api_version}")
        try:
            request = decode_body(header, frame, pos)
        except FrameError as exc:
            raise ConnectionAbortedError(str(exc)) from None
        ctx = RequestContext(header=header, client_host=peer[0], client_port=peer[1],
                             broker=self)
        started = time.perf_counter()
        response = await spec.handler(ctx, request)
        name = api_key_map[header.api_key]
        self.metrics.requests.labels(name).inc()
        self.metrics.request_latency.labels(name).observe(
            (time.perf_counter() - started) * 1000)
        if ctx.no_response:
            return None
        # Fetch records (and any large bytes) are passed by reference, not copied into one
        # buffer: the listener writes the parts in order
        return encode_response_parts(header.api_key, header.api_version, header.correlation_id,
                                     response)

    def _api_versions_fallback(self, correlation_id: int) -> bytes:
        """An ApiVersions version we don't know: answer v0 with UNSUPPORTED_VERSION."""
        body = build(response_class(API_VERSIONS_KEY, 0),
                     error_code=ErrorCode.unsupported_version,
                     api_keys=[dict(api_key=s.key, min_version=s.min_version,
                                    max_version=s.max_version) for s in REGISTRY.values()])
        return encode_response(API_VERSIONS_KEY, 0, correlation_id, body)

    # services for handlers ---------------------------------------------------------------
    async def forward_to_controller(self, ctx: RequestContext, request: Any) -> Any:
        """Send an admin request to the active controller and return its response."""
        from core.broker.quorum import forward
        return await forward(self, ctx, request)

    def is_controller(self) -> bool:
        return self.controller is not None and self.controller.is_active()

    async def auto_create_topic(self, name: str) -> None:
        """auto.create.topics.enable: create with the broker defaults (as Kafka does)."""
        validate_topic_name(name)
        try:
            await self.create_topic(name, -1, -1, {})
        except KafkaError as exc:  # created meanwhile by someone else: not an error here
            if exc.code != ErrorCode.topic_already_exists:
                raise
            # the controller has it; give our metadata image a moment to catch up
            deadline = time.monotonic() + 1.0
            while name not in self.image.topics and time.monotonic() < deadline:
                await asyncio.sleep(0.01)

    async def create_topic(self, name: str, partitions: int, rf: int,
                           configs: dict[str, str]) -> None:
        if self.is_controller():
            assert self.controller is not None
            await self.controller.create_topic(name, partitions, rf, None, configs)
            return
        from core.broker.quorum import create_topic_via_controller
        await create_topic_via_controller(self, name, partitions, rf, configs)

    async def ensure_offsets_topic(self) -> None:
        if OFFSETS_TOPIC in self.image.topics:
            return
        live = len(self.image.live_brokers())
        rf = max(1, min(self.config["offsets.topic.replication.factor"], live))
        try:
            await self.create_topic(OFFSETS_TOPIC, self.config["offsets.topic.num.partitions"],
                                    rf, {"cleanup.policy": "compact",
                                         "segment.bytes": "104857600",
                                         "compression.type": "producer"})
        except TopicAlreadyExistsError:
            pass

    async def coordinator_for(self, key_type: int, key: str) -> tuple[int, int, str, int]:
        """FindCoordinator: (error_code, node_id, host, port) for a group (key_type 0)."""
        if key_type != 0 or self.group_coordinator is None:
            return int(ErrorCode.coordinator_not_available), -1, "", -1
        try:
            await self.ensure_offsets_topic()
        except KafkaError as exc:
            log.warning("cannot create %s: %s", OFFSETS_TOPIC, exc)
            return int(ErrorCode.coordinator_not_available), -1, "", -1
        partition = self.group_coordinator.partition_for(key)
        reg = self.image.partition(TopicPartition(OFFSETS_TOPIC, partition))
        if reg is None or reg.leader < 0 or reg.leader not in self.image.brokers:
            return int(ErrorCode.coordinator_not_available), -1, "", -1
        broker = self.image.brokers[reg.leader]
        return 0, broker.broker_id, broker.host, broker.port

    # maintenance -------------------------------------------------------------------------
    async def _maintenance_loop(self) -> None:
        last_retention = last_checkpoint = last_revive = time.monotonic()
        checkpoint_interval = max(1.0, self.config["log.flush.offset.checkpoint.interval.ms"]
                                  / 1000)
        while True:
            await asyncio.sleep(0.5)
            now = time.monotonic()
            try:
                await self._maintain_isr()
                if now - last_revive >= 2.0:
                    last_revive = now
                    self.replicas.revive_offline()
                if now - last_checkpoint >= checkpoint_interval:
                    last_checkpoint = now
                    self.logs.checkpoint()
                # read-only in Kafka (not a dynamic broker config): server.properties' value
                retention_interval = self.replicas.config["log.retention.check.interval.ms"]
                if now - last_retention >= retention_interval / 1000:
                    last_retention = now
                    await asyncio.to_thread(self.logs.run_maintenance, int(time.time() * 1000))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("maintenance step failed")

    async def _maintain_isr(self) -> None:
        lag_max = self.config["replica.lag.time.max.ms"]
        for partition in list(self.replicas.partitions.values()):
            new_isr = partition.isr_candidates(lag_max)
            if new_isr is None:
                continue
            await propose_isr(self, partition, new_isr)

    def _metrics_state(self) -> dict[str, Any]:
        partitions = []
        leaders = 0
        for p in list(self.replicas.partitions.values()):
            lg = p.log
            info: dict[str, Any] = {
                "topic": p.tp.topic, "partition": p.tp.partition,
                "log_end_offset": lg.log_end_offset, "log_start_offset": lg.log_start_offset,
                "high_watermark": lg.high_watermark, "size": lg.size_bytes}
            if p.is_leader:
                leaders += 1
                info["replica_lag"] = {b: max(0, lg.log_end_offset - max(0, s.log_end_offset))
                                       for b, s in p.followers.items()}
            partitions.append(info)
        offline = sum(1 for t in self.image.topics.values()
                      for part in t.partitions.values() if part.leader < 0)
        return {"active_controller": 1 if self.is_controller() else 0,
                "under_replicated": len(self.replicas.under_replicated()),
                "partition_count": len(partitions), "leader_count": leaders,
                "offline_partitions": offline if self.is_controller() else 0,
                "partitions": partitions}


def _make_group_coordinator(broker: BrokerServer) -> Any:
    try:
        from core.broker.offsets_store import make_group_coordinator
    except ImportError:  # the coordinator lands separately; the broker still serves the rest
        log.warning("group coordinator unavailable")
        return None
    return make_group_coordinator(broker)


_NOOP = decode_record(b'{"type":"noop"}')
