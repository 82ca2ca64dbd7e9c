"""The metadata quorum on the network: a RaftNode driven by asyncio, spoken over Kafka's own
Raft messages (Vote, BeginQuorumEpoch, EndQuorumEpoch, and Fetch on `__cluster_metadata-0`).

The node is sans-IO (core.raft); this module is its I/O: a tick loop, outbound requests sent on
KafkaConnections, inbound requests answered by the handlers in core/broker/handlers (which call
`handle_inbound`), and committed entries delivered to the broker's metadata listeners. It also
implements the MetadataLog protocol the controller appends to.

Snapshots (KIP-630): the image to snapshot is the broker's (the fold its listener keeps, passed
in as `image`; without one this module folds the committed records itself) and,
once metadata.log.max.record.bytes.between.snapshots bytes of records were applied since the
last snapshot (or on demand, snapshot_now), writes the image as metadata records into
`<endOffset>-<epoch>.checkpoint` next to raft.log; the node then deletes the log before it. A
snapshot to load (at start, or fetched from the leader with FetchSnapshot) reaches the
listeners as its records, the first a SnapshotHeader that resets their image, all at offset
end_offset - 1, in one batch (batch listeners fold it into one image, so no reader sees the
image half rebuilt); committed entries arrive in one batch per poll.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kio.schema.errors import ErrorCode

from core.common.errors import KafkaError, NotControllerError
from core.metadata.image import MetadataImage
from core.metadata.log import BatchListener, Listener, Listeners, write_image_snapshot
from core.metadata.records import NoOp, decode_record
from core.network.client import KafkaConnection
from core.protocol.build import build
from core.protocol.codec import request_class
from core.raft.file_log import FileLog
from core.raft.messages import (
    BeginQuorumEpochRequest,
    BeginQuorumEpochResponse,
    EndQuorumEpochRequest,
    EndQuorumEpochResponse,
    FetchRequest,
    FetchResponse,
    FetchSnapshotRequest,
    FetchSnapshotResponse,
    RaftMessage,
    VoteRequest,
    VoteResponse,
)
from core.raft.node import NotLeader, QuorumStatus, RaftNode
from core.raft.snapshot import FileSnapshotStore, SnapshotCorruptError, SnapshotId
from core.raft.store import FileQuorumStore
from core.raft.wire import decode_entries, fetch_snapshot_response, to_kio

log = logging.getLogger(__name__)

METADATA_TOPIC = "__cluster_metadata"
TICK_S = 0.02
#: Kafka's metadata.log.max.record.bytes.between.snapshots default (20 MiB)
SNAPSHOT_BYTES_DEFAULT = 20 * 1024 * 1024
_RESPONSE_FOR = {VoteRequest: VoteResponse, BeginQuorumEpochRequest: BeginQuorumEpochResponse,
                 EndQuorumEpochRequest: EndQuorumEpochResponse, FetchRequest: FetchResponse,
                 FetchSnapshotRequest: FetchSnapshotResponse}
_VERSION = {1: 12, 52: 2, 59: 1}  # api key -> version we send (others: 0)


class RaftMetadataLog:
    """MetadataLog over a Raft quorum of the brokers listed in controller.quorum.voters."""

    def __init__(self, node_id: int, voters: dict[int, tuple[str, int]], directory: Path,
                 cluster_id: str, *, election_timeout_ms: int, fetch_timeout_ms: int,
                 election_backoff_max_ms: int = 1000,
                 snapshot_max_bytes: int = SNAPSHOT_BYTES_DEFAULT,
                 image: Callable[[], MetadataImage] | None = None) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.node_id = node_id
        self.voters = voters
        self.cluster_id = cluster_id
        self._log = FileLog(directory / "raft.log")
        self.snapshots = FileSnapshotStore(directory)
        self.snapshot_max_bytes = snapshot_max_bytes
        #: the image the listeners built from every delivered record (what a snapshot holds);
        #: None: fold the records here (no listener keeps an image)
        self._image_of_listeners = image
        self._own_image = MetadataImage()
        self._bytes_since_snapshot = 0
        self._fetched_seen = 0
        self.node = RaftNode(
            node_id, sorted(voters), self._log, FileQuorumStore(directory / "quorum-state"),
            rng=random.Random(), election_timeout_ms=election_timeout_ms,
            election_jitter_ms=election_timeout_ms, fetch_timeout_ms=fetch_timeout_ms,
            # Kafka parks an idle metadata fetch for 500 ms and relies on the follower's high
            # watermark in Fetch v17+ (KIP-1166) to answer at once when it moves; our Fetch
            # v12 cannot carry it, so a short park keeps every broker's metadata within
            # ~50 ms of the controller at the price of ~20 idle fetches/s per follower
            fetch_max_wait_ms=min(50, fetch_timeout_ms // 4),
            request_timeout_ms=fetch_timeout_ms // 4, snapshots=self.snapshots,
            election_backoff_max_ms=election_backoff_max_ms,
            pre_vote=True)  # KIP-996: an isolated voter neither bumps the epoch nor disrupts
        self._listeners = Listeners()
        self._conns: dict[int, KafkaConnection] = {}
        self._connecting: dict[int, asyncio.Lock] = {}
        #: (src, response type) -> (future of the node's answer, the request it answers)
        self._inbound: dict[tuple[int, type], tuple[asyncio.Future[RaftMessage],
                                                    RaftMessage]] = {}
        #: (last offset, epoch it was appended in, future) of appends not yet committed
        self._commit_waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None
        self._sending: set[asyncio.Task[None]] = set()
        self._started = time.monotonic()
        self._last_role: tuple[str, int, int] | None = None
        #: exclusive end of the log the listeners were handed (entries and snapshots)
        self._delivered_end = 0

    # MetadataLog ---------------------------------------------------------------------------
    def add_listener(self, listener: Listener) -> None:
        self._listeners.add(listener)

    def add_batch_listener(self, listener: BatchListener) -> None:
        """Committed entries in one call per batch (what poll_committed returned, or a
        snapshot's records): a listener folds each batch into one new image."""
        self._listeners.add_batch(listener)

    def is_leader(self) -> bool:
        return self.node.is_leader

    def leader_ready(self) -> bool:
        """This node leads and the listeners were handed every entry committed before its
        epoch began (its epoch-start entry is committed and delivered): the image the
        controller checks against is complete. False for a freshly elected leader whose
        high watermark still lags what the previous leader committed (~one fetch)."""
        start = self.node.epoch_start_offset
        return start is not None and self._delivered_end > start

    def leader_id(self) -> int:
        leader = self.node.leader_id
        return -1 if leader is None else leader

    async def append(self, entries: list[bytes]) -> int:
        result = self.node.append(entries)
        if isinstance(result, NotLeader):
            raise NotControllerError(f"not the quorum leader (leader {result.leader_id})")
        last = result + len(entries) - 1
        epoch = self.node.epoch
        self._dispatch(self.node.take_outbound())
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._commit_waiters.append((last, epoch, fut))
        self._deliver()
        try:
            await asyncio.wait_for(fut, 10.0)
        except TimeoutError:
            raise NotControllerError("metadata append not committed in 10 s") from None
        return last

    # driving the node ----------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._tick_loop())

    async def close(self) -> None:
        if self.node.is_leader:  # let the others elect at once (EndQuorumEpoch)
            self._dispatch(self.node.resign(self._now()))
            await asyncio.sleep(0.05)
        if self._task is not None:
            self._task.cancel()
        for conn in self._conns.values():
            conn.close_nowait()
        self._log.close()

    def _now(self) -> int:
        """The node's clock: monotonic ms since this log started (timeouts only)."""
        return int((time.monotonic() - self._started) * 1000)

    def quorum_status(self) -> QuorumStatus:
        """DescribeQuorum's view, each replica's last fetch / caught-up time in wall-clock
        ms (epoch ms, as Kafka reports them), converted from the node's monotonic clock."""
        return self.node.status(self._now(), int(time.time() * 1000))

    def _log_role_change(self) -> None:
        state = (self.node.role, self.node.epoch, self.leader_id())
        if state != self._last_role:
            self._last_role = state
            log.info("metadata quorum: %s in epoch %d, leader %d", *state)

    async def _tick_loop(self) -> None:
        while True:
            try:
                self._dispatch(self.node.tick(self._now()))
                self._deliver()
                self._log_role_change()
            except Exception:
                log.exception("raft tick failed")
            await asyncio.sleep(TICK_S)

    def _deliver(self) -> None:
        snapshot = self.node.poll_snapshot()
        if snapshot is not None:
            self._load_snapshot(snapshot)
        batch = [(entry.offset, entry.data) for entry in self.node.poll_committed()]
        if batch:
            if self._image_of_listeners is None:
                self._fold(batch)
            self._bytes_since_snapshot += sum(len(data) for _, data in batch)
            self._listeners.deliver(batch)
        self._delivered_end = self.node.applied_offset
        self._complete_commit_waiters()
        if self._bytes_since_snapshot >= self.snapshot_max_bytes:
            self.snapshot_now()

    def _complete_commit_waiters(self) -> None:
        """Appends whose last entry is below the high watermark: committed if the log still
        holds it in the epoch it was appended in; if not, this node lost its leadership and
        the next leader replaced it, so the append failed (NotControllerError), though an
        entry now committed at its offset would otherwise have answered it."""
        hw = self.node.high_watermark
        remaining = []
        for offset, epoch, fut in self._commit_waiters:
            if fut.done():
                continue
            if offset >= hw:
                remaining.append((offset, epoch, fut))
            elif self.node.log.epoch_at(offset) == epoch:
                fut.set_result(None)
            else:
                fut.set_exception(NotControllerError(
                    f"metadata appended at {offset} in epoch {epoch} was replaced by another "
                    "leader's entries"))
        self._commit_waiters = remaining

    # snapshots -------------------------------------------------------------------------------
    @property
    def image(self) -> MetadataImage:
        """The metadata image at the last delivered entry."""
        provider = self._image_of_listeners
        return provider() if provider is not None else self._own_image

    def _fold(self, batch: list[tuple[int, bytes]]) -> None:
        records = []
        for _, data in batch:
            try:
                records.append(decode_record(data))
            except ValueError:
                records.append(NoOp())  # the broker skips it too (and logs it)
        self._own_image = self._own_image.apply_batch(records, batch[-1][0])

    def _load_snapshot(self, snapshot_id: SnapshotId) -> None:
        """Hand a snapshot's records to the listeners (they rebuild their image from it)."""
        try:
            records = self.snapshots.read_records(snapshot_id)
        except (KeyError, OSError, SnapshotCorruptError) as exc:
            log.error("cannot load metadata snapshot %s: %r", snapshot_id, exc)
            return
        fetched = self.node.stats["snapshots_fetched"]
        source = "snapshot fetched from the leader" if fetched > self._fetched_seen \
            else "local snapshot"
        self._fetched_seen = fetched
        offset = snapshot_id.end_offset - 1
        batch = [(offset, data) for data in records]  # the SnapshotHeader resets the image
        if batch:
            if self._image_of_listeners is None:
                self._fold(batch)
            self._listeners.deliver(batch)
        self._bytes_since_snapshot = 0
        log.info("metadata loaded from %s %s (%d records, %d topics)", source,
                 snapshot_id, len(records), len(self.image.topics))

    def snapshot_now(self) -> SnapshotId | None:
        """Snapshot the image at the applied offset and delete the log before it (also what
        the byte threshold triggers); None when nothing was applied since the last one."""
        node = self.node
        end = min(node.applied_offset, node.high_watermark)
        latest = self.snapshots.latest()
        if end <= node.log.start_offset() or (latest is not None and end <= latest.end_offset):
            return None
        epoch = node.log.epoch_at(end - 1)
        assert epoch is not None
        image = self.image
        if image.offset >= end:  # the listeners are ahead of the log: not this snapshot's state
            log.error("metadata image at %d is past the snapshot end %d", image.offset, end)
            return None
        self._bytes_since_snapshot = 0
        return write_image_snapshot(image, end, epoch,
                                    lambda records: node.create_snapshot(end, records),
                                    node.log.start_offset)

    def _dispatch(self, outbound: list[Any]) -> None:
        loop = asyncio.get_running_loop()
        for out in outbound:
            message = out.message
            if type(message) in _RESPONSE_FOR:
                task = loop.create_task(self._send_request(out.dest, message))
                self._sending.add(task)
                task.add_done_callback(self._sending.discard)
            else:
                waiting = self._inbound.pop((out.dest, type(message)), None)
                if waiting is not None and not waiting[0].done():
                    waiting[0].set_result(message)

    async def _connection(self, dest: int) -> KafkaConnection:
        conn = self._conns.get(dest)
        if conn is not None and not conn.closed:
            return conn
        lock = self._connecting.setdefault(dest, asyncio.Lock())
        async with lock:
            conn = self._conns.get(dest)
            if conn is not None and not conn.closed:
                return conn
            host, port = self.voters[dest]
            conn = await KafkaConnection.connect(host, port, client_id=f"raft-{self.node_id}",
                                                 timeout=1.0)
            self._conns[dest] = conn
            return conn

    async def _send_request(self, dest: int, message: RaftMessage) -> None:
        if dest not in self.voters:
            return
        api_key, body = self._to_wire(message)
        timeout = self.node.request_timeout_ms / 1000
        if isinstance(message, FetchRequest):
            timeout += message.max_wait_ms / 1000
        try:
            conn = await self._connection(dest)
            raw = await conn.send(body, version=_VERSION.get(api_key, 0), timeout=timeout)
            response = self._from_wire_response(message, raw)
        except (TimeoutError, KafkaError, OSError) as exc:
            log.debug("raft %s to %d failed: %r", type(message).__name__, dest, exc)
            self._drop_connection(dest)
            return
        except Exception:  # a malformed answer must not kill the quorum's I/O silently
            log.exception("raft %s to %d: bad response", type(message).__name__, dest)
            self._drop_connection(dest)
            return
        if response is not None:
            self._dispatch(self.node.receive(self._now(), dest, response))
            self._deliver()

    def _drop_connection(self, dest: int) -> None:
        conn = self._conns.pop(dest, None)
        if conn is not None:
            conn.close_nowait()

    async def handle_inbound(self, src: int, message: RaftMessage) -> RaftMessage:
        """Feed a request from `src` to the node and wait for its response (long-polled
        fetches included). Never raises: a request the node does not answer in time, or one
        superseded by a newer request of the same kind from `src`, gets REQUEST_TIMED_OUT,
        so the connection keeps answering in order."""
        expected = _RESPONSE_FOR[type(message)]
        fut: asyncio.Future[RaftMessage] = asyncio.get_running_loop().create_future()
        old = self._inbound.get((src, expected))
        if old is not None and not old[0].done():
            old[0].set_result(self._timed_out(old[1]))
        self._inbound[(src, expected)] = (fut, message)
        self._dispatch(self.node.receive(self._now(), src, message))
        self._deliver()
        timeout = self.node.request_timeout_ms / 1000
        if isinstance(message, FetchRequest):
            timeout += message.max_wait_ms / 1000
        try:
            return await asyncio.wait_for(asyncio.shield(fut), timeout)
        except TimeoutError:
            return self._timed_out(message)
        finally:
            current = self._inbound.get((src, expected))
            if current is not None and current[0] is fut:
                del self._inbound[(src, expected)]

    def _timed_out(self, request: RaftMessage) -> RaftMessage:
        """The answer to a request the node did not answer: REQUEST_TIMED_OUT with what this
        node knows of the current epoch and leader."""
        code = ErrorCode.request_timed_out
        leader, epoch = self.leader_id(), self.node.epoch
        if isinstance(request, FetchRequest):
            return FetchResponse(error_code=code, leader_id=leader, leader_epoch=epoch,
                                 high_watermark=self.node.high_watermark,
                                 fetch_offset=request.fetch_offset,
                                 last_fetched_epoch=request.last_fetched_epoch)
        if isinstance(request, FetchSnapshotRequest):
            return FetchSnapshotResponse(code, leader, epoch, request.snapshot_end_offset,
                                         request.snapshot_epoch, -1, request.position)
        if isinstance(request, VoteRequest):
            return VoteResponse(code, leader, epoch, False)
        if isinstance(request, BeginQuorumEpochRequest):
            return BeginQuorumEpochResponse(code, leader, epoch)
        return EndQuorumEpochResponse(code, leader, epoch)

    # wire format (kio entities) ------------------------------------------------------------
    def _partition(self, **fields: Any) -> list[dict[str, Any]]:
        return [dict(topic_name=METADATA_TOPIC, partitions=[dict(partition_index=0, **fields)])]

    def _to_wire(self, m: RaftMessage) -> tuple[int, Any]:
        if isinstance(m, VoteRequest):  # Vote v2: KIP-996 pre_vote
            return 52, to_kio(m, cluster_id=self.cluster_id)
        if isinstance(m, BeginQuorumEpochRequest):
            return 53, build(request_class(53, 0), cluster_id=self.cluster_id,
                             topics=self._partition(leader_id=m.leader_id,
                                                    leader_epoch=m.leader_epoch))
        if isinstance(m, EndQuorumEpochRequest):
            return 54, build(request_class(54, 0), cluster_id=self.cluster_id,
                             topics=self._partition(leader_id=m.leader_id,
                                                    leader_epoch=m.leader_epoch,
                                                    preferred_successors=list(
                                                        m.preferred_successors)))
        if isinstance(m, FetchSnapshotRequest):
            return 59, to_kio(m, cluster_id=self.cluster_id)
        assert isinstance(m, FetchRequest)
        return 1, build(request_class(1, 12), cluster_id=self.cluster_id,
                        replica_id=m.replica_id, max_wait=m.max_wait_ms, min_bytes=0,
                        max_bytes=8 * 1024 * 1024, isolation_level=0, session_id=0,
                        session_epoch=-1, forgotten_topics_data=[], rack_id="",
                        topics=[dict(topic=METADATA_TOPIC, partitions=[dict(
                            partition=0, current_leader_epoch=m.current_leader_epoch,
                            fetch_offset=m.fetch_offset, last_fetched_epoch=m.last_fetched_epoch,
                            log_start_offset=-1, partition_max_bytes=8 * 1024 * 1024)])])

    def _from_wire_response(self, request: RaftMessage, raw: Any) -> RaftMessage | None:
        if isinstance(request, FetchSnapshotRequest):
            return fetch_snapshot_response(raw)
        if isinstance(request, FetchRequest):
            if raw.error_code or not raw.responses:
                return None
            p = raw.responses[0].partitions[0]
            leader = p.current_leader
            diverging = p.diverging_epoch
            snapshot = getattr(p, "snapshot_id", None)
            return FetchResponse(
                error_code=ErrorCode(p.error_code),
                leader_id=leader.leader_id if leader else -1,
                leader_epoch=leader.leader_epoch if leader else -1,
                high_watermark=p.high_watermark, fetch_offset=request.fetch_offset,
                last_fetched_epoch=request.last_fetched_epoch,
                records=decode_entries(p.records or b""),
                diverging_epoch=diverging.epoch if diverging else -1,
                diverging_end_offset=diverging.end_offset if diverging else -1,
                snapshot_end_offset=snapshot.end_offset if snapshot else -1,
                snapshot_epoch=snapshot.epoch if snapshot else -1)
        if raw.error_code or not raw.topics:
            return None
        p = raw.topics[0].partitions[0]
        if isinstance(request, VoteRequest):
            return VoteResponse(ErrorCode(p.error_code), p.leader_id, p.leader_epoch,
                                p.vote_granted)
        if isinstance(request, BeginQuorumEpochRequest):
            return BeginQuorumEpochResponse(ErrorCode(p.error_code), p.leader_id, p.leader_epoch)
        return EndQuorumEpochResponse(ErrorCode(p.error_code), p.leader_id, p.leader_epoch)
