"""Fetch (1): consumers and follower replicas, with delayed fetch and fetch sessions.

Record bytes are read from the log as whole batches and passed through untouched. No batch is
served unless its CRC32C was checked in this process: bytes this process appended were checked
at append (at or above LogSegment.opened_size); bytes found on disk (a segment from an earlier
run, a compacted segment) are read at their first fetch and every batch checked (damage is
withheld and reported), and the checked ranges of each segment file are remembered. A read of
a range known good is read without a second CRC pass, or, when it is large and the client is
not on a loopback address (or always, with ``KAFLAB_SENDFILE=1`` in the broker's environment),
not read at all: it goes into the response as a FileRegion that the listener sends from the
segment file to the socket with os.sendfile.
"""

from __future__ import annotations

import asyncio
import bisect
import ipaddress
import logging
import os
import time
import weakref
from dataclasses import dataclass
from typing import Any

from kio.schema.errors import ErrorCode

from core.broker.api import RequestContext, api
from core.broker.fetch_sessions import FINAL_EPOCH, INITIAL_EPOCH, CachedPartition
from core.broker.handlers.raft_apis import METADATA_TOPIC, handle_metadata_fetch
from core.common.errors import CorruptRecordError, KafkaError
from core.common.types import TopicPartition
from core.network.server import HAVE_SENDFILE, FileRegion
from core.protocol.build import build, timedelta_to_ms
from core.protocol.codec import SPLICE_MIN_BYTES, response_class
from core.records.batch import intact_prefix

log = logging.getLogger(__name__)

#: serve known-good record ranges of at least SPLICE_MIN_BYTES with sendfile. KAFLAB_SENDFILE:
#: "auto" (default) for clients on a real network interface only: over loopback, the only path
#: measured here, read + copy of a known-good range costs the broker ~15-20% less CPU per record
#: at the same consume rate (docs/benchmarks.md, "Hot path"), while on a NIC sendfile spares the
#: copy through Python that Kafka's zero-copy design avoids; "1" always, "0" never.
SENDFILE_MODE = os.environ.get("KAFLAB_SENDFILE", "auto") if HAVE_SENDFILE else "0"


def sendfile_for(client_host: str) -> bool:
    """Whether Fetch answers to a client at this address carry FileRegions (sendfile)."""
    if SENDFILE_MODE == "1":
        return True
    if SENDFILE_MODE != "auto":
        return False
    try:
        return not ipaddress.ip_address(client_host.split("%")[0]).is_loopback
    except ValueError:
        return False
#: file regions in one response at most (each holds a file descriptor until it is sent);
#: partitions past that are read and copied
MAX_REGIONS = 64


class CheckedRanges:
    """Byte ranges of segment files whose batches passed their CRC32C check in this process.

    Per file object (weakly: a closed and dropped segment takes its ranges with it), a short
    sorted list of disjoint [start, end) ranges; sequential reads merge into one. A file whose
    list grows past ``max_ranges`` (random reads) starts over.
    """

    def __init__(self, max_ranges: int = 64) -> None:
        self._ranges: weakref.WeakKeyDictionary[Any, list[list[int]]] = \
            weakref.WeakKeyDictionary()
        self._max = max_ranges

    def covers(self, file: Any, start: int, size: int) -> bool:
        """Whether [start, start + size) lies inside one checked range of ``file``."""
        ranges = self._ranges.get(file)
        if not ranges:
            return False
        i = bisect.bisect_right(ranges, [start, 1 << 62]) - 1
        return i >= 0 and ranges[i][0] <= start and start + size <= ranges[i][1]

    def add(self, file: Any, start: int, size: int) -> None:
        """Remember that [start, start + size) of ``file`` was checked."""
        end = start + size
        ranges = self._ranges.setdefault(file, [])
        i = bisect.bisect_left(ranges, [start, start])
        if i > 0 and ranges[i - 1][1] >= start:  # touches the range before: extend it
            i -= 1
            ranges[i][1] = max(ranges[i][1], end)
        else:
            ranges.insert(i, [start, end])
        here = ranges[i]
        while i + 1 < len(ranges) and ranges[i + 1][0] <= here[1]:  # swallow what it reaches
            here[1] = max(here[1], ranges.pop(i + 1)[1])
        if len(ranges) > self._max:
            ranges[:] = [here]


#: the broker process's checked ranges (one event loop: no locking needed)
CHECKED = CheckedRanges()


@dataclass(slots=True)
class _Want:
    topic: str
    partition: int
    fetch_offset: int
    max_bytes: int
    current_leader_epoch: int
    last_fetched_epoch: int


@api(key=1, min_version=4, max_version=12)
async def handle_fetch(ctx: RequestContext, request: Any) -> Any:
    broker = ctx.broker
    if request.topics and request.topics[0].topic == METADATA_TOPIC:
        return await handle_metadata_fetch(ctx, request)
    replica_id = getattr(request, "replica_id", -1)
    session_id = getattr(request, "session_id", 0)
    session_epoch = getattr(request, "session_epoch", FINAL_EPOCH)
    cls = response_class(1, ctx.version)

    session = None
    incremental = False
    try:
        if session_id == 0 and session_epoch == INITIAL_EPOCH:
            session = broker.fetch_sessions.create()
        elif session_id != 0 and session_epoch == FINAL_EPOCH:
            broker.fetch_sessions.remove(session_id)
        elif session_id != 0:
            session = broker.fetch_sessions.get(session_id, session_epoch)
            incremental = True
    except KafkaError as exc:
        return build(cls, throttle_time=0, error_code=exc.code, session_id=0, responses=[])

    wants = _merge_session(request, session, incremental)
    deadline = time.monotonic() + max(0, timedelta_to_ms(request.max_wait)) / 1000.0
    min_bytes = request.min_bytes
    max_bytes = getattr(request, "max_bytes", 0x7FFFFFFF)
    read_committed = getattr(request, "isolation_level", 0) == 1
    # KIP-903: the follower's incarnation as of this request's arrival (our image's epoch for
    # it; Fetch v15's ReplicaState.ReplicaEpoch is not served): a delayed read that completes
    # after the image moved to a new incarnation must not count for the new one
    replica_epoch = _replica_epoch(broker, replica_id)
    while True:
        responses, total, events = _read_all(ctx, wants, replica_id, max_bytes, read_committed,
                                             replica_epoch)
        remaining = deadline - time.monotonic()
        if total >= min_bytes or remaining <= 0 or not events or any(
                r["error_code"] for r in responses):
            break
        waiters = [asyncio.ensure_future(e.wait()) for e in events]
        done, pending = await asyncio.wait(waiters, timeout=remaining,
                                           return_when=asyncio.FIRST_COMPLETED)
        for w in pending:
            w.cancel()
        if not done:
            responses, total, _ = _read_all(ctx, wants, replica_id, max_bytes, read_committed,
                                            replica_epoch)
            break

    if session is not None:
        responses = _filter_for_session(session, responses, incremental)
        session.epoch += 1
    by_topic: dict[str, list[dict[str, Any]]] = {}
    for r in responses:
        by_topic.setdefault(r.pop("topic"), []).append(r)
    for topic, parts in by_topic.items():
        broker.metrics.bytes_out.labels(topic).inc(sum(len(p["records"] or b"") for p in parts))
    return build(cls, throttle_time=0, error_code=0,
                 session_id=session.session_id if session else 0,
                 responses=[dict(topic=t, partitions=p) for t, p in by_topic.items()])


def _replica_epoch(broker: Any, replica_id: int) -> int:
    """A follower's broker epoch in our metadata image (-1: a consumer, or not registered)."""
    if replica_id < 0:
        return -1
    registration = broker.image.brokers.get(replica_id)
    return registration.epoch if registration is not None else -1


def _merge_session(request: Any, session: Any, incremental: bool) -> list[_Want]:
    """The partitions to read: the request's, or the session's after applying the request."""
    requested: dict[tuple[str, int], _Want] = {}
    for t in request.topics:
        for p in t.partitions:
            requested[(t.topic, p.partition)] = _Want(
                t.topic, p.partition, p.fetch_offset, p.partition_max_bytes,
                getattr(p, "current_leader_epoch", -1), getattr(p, "last_fetched_epoch", -1))
    if session is None:
        return list(requested.values())
    if not incremental:
        session.partitions.clear()
    for key, want in requested.items():
        cached = session.partitions.get(key)
        if cached is None:
            session.partitions[key] = CachedPartition(want.fetch_offset, want.max_bytes,
                                                      want.current_leader_epoch,
                                                      want.last_fetched_epoch)
        else:
            cached.fetch_offset = want.fetch_offset
            cached.max_bytes = want.max_bytes
            cached.current_leader_epoch = want.current_leader_epoch
            cached.last_fetched_epoch = want.last_fetched_epoch
    for forgotten in getattr(request, "forgotten_topics_data", None) or ():
        for p in forgotten.partitions:
            session.partitions.pop((forgotten.topic, p), None)
    return [_Want(t, p, c.fetch_offset, c.max_bytes, c.current_leader_epoch,
                  c.last_fetched_epoch) for (t, p), c in session.partitions.items()]


def _filter_for_session(session: Any, responses: list[dict[str, Any]],
                        incremental: bool) -> list[dict[str, Any]]:
    """Record what the client now knows; in incremental mode drop unchanged partitions."""
    kept = []
    for r in responses:
        cached = session.partitions.get((r["topic"], r["partition_index"]))
        changed = True
        if cached is not None:
            changed = (bool(r["records"]) or r["error_code"] != 0
                       or cached.high_watermark != r["high_watermark"]
                       or cached.last_stable_offset != r["last_stable_offset"]
                       or cached.log_start_offset != r["log_start_offset"])
            cached.high_watermark = r["high_watermark"]
            cached.last_stable_offset = r["last_stable_offset"]
            cached.log_start_offset = r["log_start_offset"]
        if changed or not incremental:
            kept.append(r)
    return kept


def _read_all(ctx: RequestContext, wants: list[_Want], replica_id: int, max_bytes: int,
              read_committed: bool, replica_epoch: int = -1,
              ) -> tuple[list[dict[str, Any]], int, list[asyncio.Event]]:
    broker = ctx.broker
    responses: list[dict[str, Any]] = []
    events: list[asyncio.Event] = []
    total = 0
    regions = 0
    use_sendfile = sendfile_for(ctx.client_host)
    for want in wants:
        response, size, event = _read_one(broker, want, replica_id, max(0, max_bytes - total),
                                          total == 0, read_committed,
                                          use_sendfile and regions < MAX_REGIONS,
                                          replica_epoch)
        regions += type(response["records"]) is FileRegion
        responses.append(response)
        total += size
        if event is not None:
            events.append(event)
    return responses, total, events


def _appended_here(log: Any, piece: Any) -> bool:
    """Whether the slice lies in bytes this process appended to its segment (at or above the
    segment's ``opened_size``): Log CRC-checks every batch it appends, leader or follower."""
    segment = log.active_segment
    if segment.file is not piece.file:
        segment = next((s for s in log.segments if s.file is piece.file), None)
        if segment is None:
            return False
    return piece.position >= getattr(segment, "opened_size", 1 << 62)


def _records(tp: TopicPartition, offset: int, piece: Any, region_ok: bool, log: Any = None
             ) -> bytes | FileRegion:
    """The slice's batches. Known good (appended by this process, or checked at an earlier
    read): read as they are, or with sendfile on and large enough, by reference to the file
    (a FileRegion). Otherwise read, CRC-checked, and remembered as checked."""
    known = CHECKED.covers(piece.file, piece.position, piece.size)
    if not known and log is not None and _appended_here(log, piece):
        CHECKED.add(piece.file, piece.position, piece.size)  # no segment lookup next time
        known = True
    if known:
        if region_ok and piece.size >= SPLICE_MIN_BYTES:
            return FileRegion(piece.fileno(), piece.position, piece.size)
        return piece.read_bytes()  # known good: no second CRC pass
    data = _intact(tp, offset, piece.read_bytes())
    if len(data) == piece.size:
        CHECKED.add(piece.file, piece.position, piece.size)
    return data


def _intact(tp: TopicPartition, offset: int, data: bytes) -> bytes:
    """Serve only batches whose checksum still matches; damage on disk is an error, never
    data (Kafka's broker trusts its disk here; consumers with check.crcs=false would not)."""
    good, damaged = intact_prefix(data)
    if not damaged:
        return data
    log.error("%s: record batch after offset %d (byte %d of the read) fails its CRC32C: "
              "the segment is corrupt on disk", tp, offset, good)
    if good == 0:
        raise CorruptRecordError(f"{tp}: stored record batch at offset {offset} is corrupt")
    return data[:good]


def _read_one(broker: Any, want: _Want, replica_id: int, budget: int, first: bool,
              read_committed: bool, region_ok: bool = True, replica_epoch: int = -1,
              ) -> tuple[dict[str, Any], int, asyncio.Event | None]:
    tp = TopicPartition(want.topic, want.partition)
    base = dict(topic=want.topic, partition_index=want.partition, high_watermark=-1,
                last_stable_offset=-1, log_start_offset=-1, aborted_transactions=None,
                preferred_read_replica=-1, records=b"")
    try:
        partition = broker.replicas.leader_partition(tp, broker.image)
        partition.check_leader_epoch(want.current_leader_epoch)
        log = partition.log
        is_follower = replica_id >= 0
        if is_follower and want.last_fetched_epoch >= 0:
            epoch, end = log.end_offset_for_epoch(want.last_fetched_epoch)
            if epoch != want.last_fetched_epoch or end < want.fetch_offset:
                return dict(base, error_code=0, high_watermark=log.high_watermark,
                            last_stable_offset=log.high_watermark,
                            log_start_offset=log.log_start_offset,
                            diverging_epoch=dict(epoch=epoch, end_offset=end)), 0, None
        if is_follower:
            partition.record_follower_fetch(replica_id, want.fetch_offset, replica_epoch)
        lso = log.last_stable_offset
        limit = None if is_follower else (lso if read_committed else log.high_watermark)
        data: bytes | FileRegion = b""
        aborted = None
        if want.fetch_offset != (limit if limit is not None else log.log_end_offset):
            piece = log.read(want.fetch_offset, min(want.max_bytes, budget), max_offset=limit,
                             min_one_batch=first)
            data = (_records(tp, want.fetch_offset, piece, region_ok, log) if piece.size
                    else b"")
            if is_follower:  # leader-side replication throttle (KIP-73)
                data = partition.throttle_replica_read(replica_id, data)
            if read_committed and data:
                aborted = [dict(producer_id=pid, first_offset=first_offset)
                           for pid, first_offset in log.aborted_transactions(
                               want.fetch_offset, piece.next_offset)]
        hw = log.high_watermark
        response = dict(base, error_code=0, high_watermark=hw, last_stable_offset=lso,
                        log_start_offset=log.log_start_offset, records=data,
                        aborted_transactions=(aborted or []) if read_committed else None)
        return response, len(data), None if data else partition.data_event
    except KafkaError as exc:
        response = dict(base, error_code=exc.code)
        if exc.code in (ErrorCode.not_leader_or_follower, ErrorCode.fenced_leader_epoch):
            reg = broker.image.partition(tp)
            if reg is not None:
                response["current_leader"] = dict(leader_id=reg.leader,
                                                  leader_epoch=reg.leader_epoch)
        if exc.code == ErrorCode.offset_out_of_range:
            partition = broker.replicas.partitions.get(tp)
            if partition is not None:
                response["high_watermark"] = partition.log.high_watermark
                response["log_start_offset"] = partition.log.log_start_offset
        return response, 0, None
