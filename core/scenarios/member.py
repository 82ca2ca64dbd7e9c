"""A classic-protocol consumer group member: JoinGroup, SyncGroup, Heartbeat, OffsetCommit and
LeaveGroup, the part of Kafka's ConsumerCoordinator the scenario consumers need.

Eager rebalancing (like Kafka's consumer with the "range" assignor): on REBALANCE_IN_PROGRESS
the member commits what it processed, rejoins, and gets a fresh assignment; the leader
computes the assignment with :func:`range_assign` (Kafka's RangeAssignor: members sorted by
member id, which starts with the client id, so a given set of members always gets the same
partitions). Heartbeats run in their own task, so a slow member (per-record processing) keeps
its session; the rebalance timeout plays max.poll.interval.ms's role.

Hand-written rather than a library consumer because kaflab's runtime dependencies carry no
Kafka client (confluent-kafka, kafka-python and aiokafka are test dependencies only, so the tests
check our brokers with clients we did not write); the runner already talks through core.admin.

Each member needs its own AdminClient (its own connections): a JoinGroup waits on the broker
until the rebalance's join phase ends, and a shared connection would hold every other request
(and other members' joins) behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from core.admin.assignment import decode_assignment, decode_subscription, encode_assignment
from core.admin.client import AdminClient
from core.admin.errors import error_for
from core.common.errors import ErrorCode, KafkaError

log = logging.getLogger(__name__)

OFFSET_COMMIT, JOIN_GROUP, HEARTBEAT, LEAVE_GROUP, SYNC_GROUP = 8, 11, 12, 13, 14
PROTOCOL_TYPE = "consumer"
ASSIGNOR = "range"
TP = tuple[str, int]

#: Errors after which the coordinator has to be found again.
COORDINATOR_ERRORS = frozenset({ErrorCode.not_coordinator, ErrorCode.coordinator_not_available,
                                ErrorCode.coordinator_load_in_progress,
                                ErrorCode.network_exception, ErrorCode.request_timed_out})


@dataclass(frozen=True, slots=True)
class MemberConfig:
    """Kafka consumer settings (names in comments); session shorter than Kafka's 45 s default
    so that members of a scenario process that died expire within seconds."""

    session_timeout_ms: int = 10_000  # session.timeout.ms
    heartbeat_interval_ms: int = 3_000  # heartbeat.interval.ms
    rebalance_timeout_ms: int = 60_000  # max.poll.interval.ms (sent as the rebalance timeout)


def encode_subscription(topics: Iterable[str]) -> bytes:
    """ConsumerProtocolSubscription v0: the subscribed topics, no user data."""
    names = sorted(set(topics))
    out = bytearray(struct.pack(">hi", 0, len(names)))
    for name in names:
        raw = name.encode()
        out += struct.pack(">h", len(raw)) + raw
    out += struct.pack(">i", -1)
    return bytes(out)


def range_assign(subscriptions: Mapping[str, Iterable[str]],
                 partitions: Mapping[str, int]) -> dict[str, dict[str, list[int]]]:
    """Kafka's RangeAssignor: per topic, its subscribers sorted by member id share the
    partitions in contiguous ranges, the first ``n % members`` getting one more."""
    plan: dict[str, dict[str, list[int]]] = {m: {} for m in subscriptions}
    topics = sorted({t for ts in subscriptions.values() for t in ts})
    for topic in topics:
        members = sorted(m for m, ts in subscriptions.items() if topic in set(ts))
        count = partitions.get(topic, 0)
        if not members or count <= 0:
            continue
        per, extra = divmod(count, len(members))
        start = 0
        for i, member in enumerate(members):
            length = per + (1 if i < extra else 0)
            if length:
                plan[member][topic] = list(range(start, start + length))
            start += length
    return plan


class GroupMember:
    """One member of a classic consumer group, driven by its consumer loop."""

    def __init__(self, admin: AdminClient, group_id: str, topics: Iterable[str], *,
                 config: MemberConfig | None = None) -> None:
        self.admin = admin
        self.group_id = group_id
        self.topics = tuple(sorted(set(topics)))
        self.config = config or MemberConfig()
        self.member_id = ""
        self.generation = -1
        self.assignment: tuple[TP, ...] = ()
        #: every member id this member has had (the console's "which members are mine")
        self.ids_used: set[str] = set()
        self.needs_rejoin = True
        self._heartbeat: asyncio.Task[None] | None = None
        self._refresh = False
        #: set by the consumer loop when it stops: join() gives up instead of retrying
        self.closing = False
        #: the leader's view of the partition counts it assigned (to notice changes)
        self.is_leader = False
        self.assigned_counts: dict[str, int] = {}
        self.assigned_counts_topics: tuple[str, ...] = ()

    # -- coordinator ---------------------------------------------------------------------
    async def _request(self, api_key: int, max_version: int, timeout: float | None = None,
                       **fields: object) -> Any:
        """Send to the group's coordinator (found again after a coordinator error)."""
        refresh, self._refresh = self._refresh, False
        try:
            node = await self.admin.find_coordinator(self.group_id, refresh=refresh)
            conn = await self.admin.connection(node)
            return await conn.request(api_key, max_version=max_version, timeout=timeout,
                                      fields=fields)
        except (KafkaError, OSError, TimeoutError):
            self._refresh = True
            raise

    def _lost_coordinator(self) -> None:
        self._refresh = True

    # -- join ----------------------------------------------------------------------------
    async def join(self) -> tuple[TP, ...]:
        """(Re)join until a generation is synced; returns this member's partitions (() when
        asked to close meanwhile)."""
        self._stop_heartbeat()
        cfg = self.config
        wait_s = cfg.rebalance_timeout_ms / 1000 + 10
        delay = 0.1
        while True:
            if self.closing:
                return ()
            try:
                joined = await self._request(
                    JOIN_GROUP, 7, timeout=wait_s, group_id=self.group_id,
                    session_timeout=cfg.session_timeout_ms,
                    rebalance_timeout=cfg.rebalance_timeout_ms, member_id=self.member_id,
                    group_instance_id=None, protocol_type=PROTOCOL_TYPE,
                    protocols=[{"name": ASSIGNOR, "metadata": encode_subscription(self.topics)}])
                err = ErrorCode(joined.error_code)
                if err == ErrorCode.none:
                    self.member_id = joined.member_id
                    self.ids_used.add(self.member_id)
                    self.generation = int(joined.generation_id)
                    synced = await self._sync(joined, wait_s)
                    if synced is not None:
                        self.assignment = synced
                        self.needs_rejoin = False
                        self._heartbeat = asyncio.ensure_future(self._heartbeats())
                        log.debug("%s joined %s generation %d: %s", self.member_id,
                                  self.group_id, self.generation, synced)
                        return synced
                    continue
                if err == ErrorCode.member_id_required:
                    self.member_id = joined.member_id
                    self.ids_used.add(self.member_id)
                    continue
                if err == ErrorCode.unknown_member_id:
                    self.member_id = ""
                    continue
                if err in COORDINATOR_ERRORS or err == ErrorCode.rebalance_in_progress:
                    self._lost_coordinator()
                else:
                    raise error_for(err, None, f"join group {self.group_id}")  # type: ignore[misc]
            except (KafkaError, OSError, TimeoutError) as exc:
                if isinstance(exc, KafkaError) and exc.code not in COORDINATOR_ERRORS \
                        and not getattr(exc, "retriable", False):
                    raise
                log.debug("join %s: %s", self.group_id, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def partition_counts(self, topics: Iterable[str], *,
                               wait_s: float = 0.0) -> dict[str, int]:
        """Partitions per topic from a fresh Metadata (waiting up to wait_s for topics that
        this broker does not know yet, e.g. just created)."""
        wanted = sorted(set(topics))
        deadline = asyncio.get_running_loop().time() + wait_s
        while True:
            md = await self.admin.metadata(wanted)
            counts = {t: len(md.topics[t].partitions) for t in wanted
                      if t in md.topics and md.topics[t].partitions}
            if len(counts) == len(wanted) or asyncio.get_running_loop().time() >= deadline:
                return counts
            await asyncio.sleep(0.2)

    async def metadata_changed(self) -> bool:
        """The leader's check (as Kafka's ConsumerCoordinator does on metadata updates): the
        subscribed topics' partition counts differ from those it assigned -> rejoin."""
        if not self.is_leader or self.needs_rejoin:
            return False
        counts = await self.partition_counts(self.assigned_counts_topics)
        if counts != self.assigned_counts:
            log.info("%s: partitions of %s changed (%s -> %s): rejoining", self.member_id,
                     self.group_id, self.assigned_counts, counts)
            self.needs_rejoin = True
            return True
        return False

    async def _sync(self, joined: Any, wait_s: float) -> tuple[TP, ...] | None:
        assignments = []
        self.is_leader = joined.leader == self.member_id
        if self.is_leader:
            subscriptions = {m.member_id: decode_subscription(bytes(m.metadata)).topics
                             for m in joined.members}
            wanted = sorted({t for ts in subscriptions.values() for t in ts})
            counts = await self.partition_counts(wanted, wait_s=3.0)
            self.assigned_counts_topics = tuple(wanted)
            self.assigned_counts = counts
            plan = range_assign(subscriptions, counts)
            assignments = [{"member_id": m, "assignment": encode_assignment(a)}
                           for m, a in sorted(plan.items())]
        synced = await self._request(
            SYNC_GROUP, 5, timeout=wait_s, group_id=self.group_id,
            generation_id=self.generation, member_id=self.member_id, group_instance_id=None,
            protocol_type=PROTOCOL_TYPE,
            protocol_name=joined.protocol_name or ASSIGNOR,
            assignments=assignments)
        err = ErrorCode(synced.error_code)
        if err == ErrorCode.none:
            return decode_assignment(bytes(synced.assignment or b""))
        if err == ErrorCode.unknown_member_id:
            self.member_id = ""
        elif err in COORDINATOR_ERRORS:
            self._lost_coordinator()
        elif err not in (ErrorCode.rebalance_in_progress, ErrorCode.illegal_generation):
            raise error_for(err, None, f"sync group {self.group_id}")  # type: ignore[misc]
        return None

    # -- heartbeats ----------------------------------------------------------------------
    async def _heartbeats(self) -> None:
        interval = self.config.heartbeat_interval_ms / 1000
        while True:
            await asyncio.sleep(interval)
            try:
                resp = await self._request(HEARTBEAT, 4, group_id=self.group_id,
                                           generation_id=self.generation,
                                           member_id=self.member_id, group_instance_id=None)
            except (KafkaError, OSError, TimeoutError) as exc:
                log.debug("heartbeat %s: %s", self.group_id, exc)
                continue
            err = ErrorCode(resp.error_code)
            if err == ErrorCode.none:
                continue
            if err == ErrorCode.rebalance_in_progress:
                self.needs_rejoin = True  # keep heartbeating until the loop rejoins
            elif err == ErrorCode.unknown_member_id:
                self.member_id, self.generation, self.needs_rejoin = "", -1, True
                return
            elif err in (ErrorCode.illegal_generation, ErrorCode.fenced_instance_id):
                self.generation, self.needs_rejoin = -1, True
                return
            elif err in COORDINATOR_ERRORS:
                self._lost_coordinator()

    def _stop_heartbeat(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            self._heartbeat = None

    # -- offsets -------------------------------------------------------------------------
    async def commit(self, offsets: Mapping[TP, int]) -> bool:
        """OffsetCommit as this generation's member; False when the group moved on (the
        member must rejoin; what it did not commit is read again: at-least-once)."""
        if not offsets:
            return True
        if self.generation < 0 or not self.member_id:
            return False
        grouped: dict[str, list[dict[str, object]]] = {}
        for (topic, partition), offset in sorted(offsets.items()):
            grouped.setdefault(topic, []).append({
                "partition_index": partition, "committed_offset": offset,
                "committed_leader_epoch": -1, "committed_metadata": "",
                "commit_timestamp": -1})
        for _attempt in range(3):
            try:
                resp = await self._request(
                    OFFSET_COMMIT, 8, group_id=self.group_id,
                    generation_id_or_member_epoch=self.generation,
                    generation_id=self.generation, member_id=self.member_id,
                    group_instance_id=None, retention_time=-1,
                    topics=[{"name": t, "partitions": ps} for t, ps in grouped.items()])
            except (KafkaError, OSError, TimeoutError) as exc:
                log.debug("commit %s: %s", self.group_id, exc)
                await asyncio.sleep(0.2)
                continue
            errors = {ErrorCode(p.error_code) for t in resp.topics
                      for p in t.partitions} - {ErrorCode.none}
            if not errors:
                return True
            if errors & COORDINATOR_ERRORS:
                self._lost_coordinator()
                await asyncio.sleep(0.2)
                continue
            if ErrorCode.unknown_member_id in errors:
                self.member_id, self.generation = "", -1
            self.needs_rejoin = True
            log.debug("commit %s refused: %s", self.group_id, errors)
            return False
        return False

    # -- leave ---------------------------------------------------------------------------
    async def leave(self) -> None:
        """LeaveGroup (the group rebalances at once instead of after the session timeout)."""
        self._stop_heartbeat()
        member, self.member_id, self.generation = self.member_id, "", -1
        self.assignment, self.needs_rejoin = (), True
        if not member:
            return
        with contextlib.suppress(KafkaError, OSError, TimeoutError):
            await asyncio.wait_for(self._request(
                LEAVE_GROUP, 4, group_id=self.group_id, member_id=member,
                members=[{"member_id": member, "group_instance_id": None}]), 10)
