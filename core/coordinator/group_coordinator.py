"""The classic group coordinator: JoinGroup/SyncGroup/Heartbeat/LeaveGroup, committed offsets,
and their persistence in __consumer_offsets (Kafka's GroupCoordinator + GroupMetadataManager).

Everything runs on the broker's event loop; there are no locks, so every state check after an
`await` re-validates what it relies on. Delayed operations (join phase, heartbeats, pending
syncs) are deadlines in a DelayedOperations, fired by `tick()`: `start()` runs a task that ticks
on the real clock, tests advance a fake clock and call `tick()` themselves.

The coordinator of a group is the leader of partition `partition_for(group_id)`; the broker
calls `on_elected` / `on_resigned` as that leadership comes and goes. Requests for groups whose
partition this broker does not lead get NOT_COORDINATOR, and COORDINATOR_LOAD_IN_PROGRESS while
the partition is being read back.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from kio.schema.errors import ErrorCode

from core.common.config import BrokerConfig
from core.common.errors import CorruptRecordError, KafkaError
from core.common.types import TopicPartition
from core.coordinator import records as rec
from core.coordinator.consumer_protocol import decode_assignment
from core.coordinator.group import Group, GroupState, InFlightCommit, Member
from core.coordinator.offsets import CommittedOffset, expired_offsets, partition_for
from core.coordinator.results import (
    GroupDescription,
    GroupView,
    JoinResult,
    LeaveResult,
    ListedGroup,
    MemberDescription,
    MemberView,
    OffsetDeleteResult,
    OffsetFetchResult,
    PartitionOffset,
    PartitionResult,
    SyncResult,
)
from core.coordinator.store import OffsetsStore
from core.coordinator.timer import DelayedOperations
from core.protocol.build import timedelta_to_ms
from core.records.batch import build_batch, iter_records, read_header

log = logging.getLogger(__name__)

E = ErrorCode
NEW_MEMBER_JOIN_TIMEOUT_MS = 5 * 60 * 1000
DEFAULT_OFFSET_METADATA_MAX_BYTES = 4096
#: DescribeGroups authorized_operations with no ACLs: READ, DELETE, DESCRIBE
ALL_GROUP_OPERATIONS = (1 << 3) | (1 << 6) | (1 << 8)
_LOADING, _LOADED = "loading", "loaded"

# Kafka's mapping of log append errors to what group / offset requests answer.
_APPEND_UNAVAILABLE = {E.unknown_topic_or_partition, E.not_enough_replicas,
                       E.not_enough_replicas_after_append, E.request_timed_out}
_APPEND_NOT_COORDINATOR = {E.not_leader_or_follower, E.kafka_storage_error}
_APPEND_TOO_LARGE = {E.message_too_large, E.record_list_too_large, E.invalid_fetch_size}


def _group_append_error(code: ErrorCode) -> ErrorCode:
    if code in _APPEND_UNAVAILABLE:
        return E.coordinator_not_available
    if code in _APPEND_NOT_COORDINATOR:
        return E.not_coordinator
    if code == E.none:
        return code
    return E.unknown_server_error


def _offset_append_error(code: ErrorCode) -> ErrorCode:
    if code in _APPEND_UNAVAILABLE:
        return E.coordinator_not_available
    if code in _APPEND_NOT_COORDINATOR:
        return E.not_coordinator
    if code in _APPEND_TOO_LARGE:
        return E.invalid_commit_offset_size
    return code


def _ms(value: Any, default: int) -> int:
    if value is None:
        return default
    return timedelta_to_ms(value)


class GroupCoordinator:
    """Consumer groups and committed offsets for the __consumer_offsets partitions we lead."""

    def __init__(self, *, node_id: int, config: BrokerConfig, store: OffsetsStore,
                 clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self.node_id = node_id
        self.config = config
        self._store = store
        self._clock = clock
        self._wall_clock = wall_clock
        self.num_partitions: int = config["offsets.topic.num.partitions"]
        self._partitions: dict[int, str] = {}
        self._groups: dict[str, Group] = {}
        self._timers = DelayedOperations()
        #: groups whose join phase is the initial delayed one (group.initial.rebalance.delay.ms)
        self._initial_join: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        #: where transactional offset commits are appended (with origin "coordinator", so
        #: without sequence checks); the broker sets it, `_store` otherwise
        self.txn_store: OffsetsStore | None = None
        #: group id -> producer id -> offsets committed in a transaction not yet ended
        self._pending_txn: dict[str, dict[int, dict[TopicPartition, CommittedOffset]]] = {}
        #: __consumer_offsets partition being loaded -> partitions deleted meanwhile, whose
        #: offsets are removed once the load completes
        self._deleted_while_loading: dict[int, set[TopicPartition]] = {}
        self._next_expiry_check_ms = self._now() + self._retention_check_ms

    # ------------------------------------------------------------------ config & clocks

    def _now(self) -> int:
        return int(self._clock() * 1000)

    def _wall(self) -> int:
        return int(self._wall_clock() * 1000)

    @property
    def _retention_check_ms(self) -> int:
        return int(self.config["offsets.retention.check.interval.ms"])

    @property
    def _retention_ms(self) -> int:
        return int(self.config["offsets.retention.minutes"]) * 60 * 1000

    @property
    def _initial_delay_ms(self) -> int:
        return int(self.config["group.initial.rebalance.delay.ms"])

    @property
    def _max_metadata_bytes(self) -> int:
        return int(self.config.get("offset.metadata.max.bytes")
                   or DEFAULT_OFFSET_METADATA_MAX_BYTES)

    # ------------------------------------------------------------------ lifecycle

    def partition_for(self, group_id: str) -> int:
        """The __consumer_offsets partition of `group_id` (Kafka's hash, so same as Kafka's)."""
        return partition_for(group_id, self.num_partitions)

    @property
    def owned_partitions(self) -> dict[int, str]:
        """Partition -> "loading" | "loaded", for the partitions this broker leads."""
        return dict(self._partitions)

    async def start(self) -> None:
        """Start firing timers (heartbeat expiry, rebalance timeouts, offset retention)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="group-timers")

    async def stop(self) -> None:
        """Stop the timers and answer every waiting JoinGroup/SyncGroup with NOT_COORDINATOR."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for partition in list(self._partitions):
            await self.on_resigned(partition)

    async def _run(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:  # a bug in one callback must not stop every timer
                log.exception("group coordinator tick failed")
            next_deadline = self._timers.next_deadline()
            wait_ms = 100 if next_deadline is None else next_deadline - self._now()
            await asyncio.sleep(min(max(wait_ms, 5), 100) / 1000)

    async def tick(self) -> None:
        """Fire every delayed operation that is due; run the offset retention check if due."""
        now = self._now()
        for callback in self._timers.pop_due(now):
            result = callback()
            if inspect.isawaitable(result):
                await result
        if now >= self._next_expiry_check_ms:
            self._next_expiry_check_ms = now + self._retention_check_ms
            await self.expire_offsets()

    async def on_elected(self, partition: int) -> None:
        """This broker now leads `partition`: read its groups and offsets back from the store."""
        if self._partitions.get(partition) is not None:
            return
        self._partitions[partition] = _LOADING
        self._deleted_while_loading.pop(partition, None)
        group_values: dict[str, rec.GroupValue | None] = {}
        offsets: dict[str, dict[TopicPartition, CommittedOffset]] = {}
        open_txns: dict[int, list[Any]] = {}
        #: (group, partition) -> position of its last offset tombstone
        removed: dict[tuple[str, TopicPartition], int] = {}
        for count, batch in enumerate(self._store.read(partition), 1):
            header = read_header(batch)
            if header.is_transactional:
                self._replay_txn(header, batch, open_txns, group_values, offsets, removed)
                continue
            for record in iter_records(batch):
                self._replay(record, group_values, offsets, removed)
            if count % 64 == 0:
                await asyncio.sleep(0)
                if self._partitions.get(partition) != _LOADING:
                    return  # resigned while loading
        if self._partitions.get(partition) != _LOADING:
            return
        now = self._now()
        for group_id in set(group_values) | set(offsets):
            value = group_values.get(group_id)
            group_offsets = offsets.get(group_id, {})
            if value is None and not group_offsets:
                continue
            group = Group(group_id, partition, offsets=group_offsets)
            if value is not None:
                self._load_group_value(group, value, now)
            self._groups[group_id] = group
        self._load_open_txns(partition, open_txns)
        self._partitions[partition] = _LOADED
        log.info("loaded __consumer_offsets-%d: %d groups", partition,
                 sum(1 for g in self._groups.values() if g.partition == partition))
        deleted = self._deleted_while_loading.pop(partition, None)
        if deleted:
            await self._write_tombstones(self._remove_offsets(deleted, {partition}), deleted)

    def _replay(self, record: Any, group_values: dict[str, rec.GroupValue | None],
                offsets: dict[str, dict[TopicPartition, CommittedOffset]],
                removed: dict[tuple[str, TopicPartition], int]) -> None:
        if record.key is None:
            return
        try:
            key = rec.decode_key(bytes(record.key))
            if isinstance(key, rec.OffsetKey):
                tp = TopicPartition(key.topic, key.partition)
                group_offsets = offsets.setdefault(key.group, {})
                if record.value is None:
                    group_offsets.pop(tp, None)
                    removed[(key.group, tp)] = record.offset
                else:
                    v = rec.decode_offset_value(bytes(record.value))
                    group_offsets[tp] = CommittedOffset(
                        v.offset, v.leader_epoch, v.metadata, v.commit_timestamp,
                        v.expire_timestamp, record.offset)
            else:
                group_values[key.group] = (None if record.value is None
                                           else rec.decode_group_value(bytes(record.value)))
        except (CorruptRecordError, UnicodeDecodeError) as exc:
            log.warning("skipping unreadable __consumer_offsets record at %s: %s",
                        record.offset, exc)

    def _replay_txn(self, header: Any, batch: bytes, open_txns: dict[int, list[Any]],
                    group_values: dict[str, rec.GroupValue | None],
                    offsets: dict[str, dict[TopicPartition, CommittedOffset]],
                    removed: dict[tuple[str, TopicPartition], int]) -> None:
        """A transactional batch while loading: offsets wait for their producer's marker."""
        pid = header.producer_id
        if not header.is_control:
            open_txns.setdefault(pid, []).extend(iter_records(batch))
            return
        pending = open_txns.pop(pid, [])
        commit = False
        for record in iter_records(batch):
            key = bytes(record.key or b"")
            commit = len(key) >= 4 and key[3] == 1 and key[2] == 0
        if not commit:
            return
        for record in pending:
            try:
                key = rec.decode_key(bytes(record.key)) if record.key is not None else None
            except (CorruptRecordError, UnicodeDecodeError):
                continue
            if isinstance(key, rec.OffsetKey):
                tp = TopicPartition(key.topic, key.partition)
                existing = offsets.get(key.group, {}).get(tp)
                if existing is not None and existing.record_offset > record.offset:
                    continue  # a later non-transactional commit wins
                if removed.get((key.group, tp), -1) > record.offset:
                    continue  # removed after it was written (its partition was deleted)
            self._replay(record, group_values, offsets, removed)

    def _load_open_txns(self, partition: int, open_txns: dict[int, list[Any]]) -> None:
        """Transactions still open at the end of the log: their offsets stay pending."""
        for pid, records in open_txns.items():
            for record in records:
                if record.key is None or record.value is None:
                    continue
                try:
                    key = rec.decode_key(bytes(record.key))
                    if not isinstance(key, rec.OffsetKey):
                        continue
                    v = rec.decode_offset_value(bytes(record.value))
                except (CorruptRecordError, UnicodeDecodeError):
                    continue
                self._pending_txn.setdefault(key.group, {}).setdefault(pid, {})[
                    TopicPartition(key.topic, key.partition)] = CommittedOffset(
                        v.offset, v.leader_epoch, v.metadata, v.commit_timestamp, None,
                        record.offset)

    def _load_group_value(self, group: Group, value: rec.GroupValue, now: int) -> None:
        group.protocol_type = value.protocol_type or None
        group.generation_id = value.generation
        group.protocol_name = value.protocol
        group.state_timestamp_ms = (value.current_state_timestamp
                                    if value.current_state_timestamp >= 0 else None)
        for m in value.members:
            protocols = [(value.protocol, m.subscription)] if value.protocol else []
            member = Member(m.member_id, m.group_instance_id, m.client_id, m.client_host,
                            m.rebalance_timeout, m.session_timeout, value.protocol_type,
                            protocols, assignment=m.assignment)
            group.add(member)
            self._schedule_heartbeat(group, member, now=now)
        group.leader_id = value.leader if value.leader in group.members else group.leader_id
        group.state = GroupState.STABLE if group.members else GroupState.EMPTY

    async def on_resigned(self, partition: int) -> None:
        """This broker no longer leads `partition`: drop its groups, answer waiters."""
        self._partitions.pop(partition, None)
        self._deleted_while_loading.pop(partition, None)
        for group in [g for g in self._groups.values() if g.partition == partition]:
            self._unload(group)
        for group_id in [g for g in self._pending_txn if self.partition_for(g) == partition]:
            del self._pending_txn[group_id]

    def _unload(self, group: Group) -> None:
        for member in group.members.values():
            if member.awaiting_join:
                member.join_future.set_result(JoinResult(E.not_coordinator, member.member_id))
            if member.awaiting_sync:
                member.sync_future.set_result(SyncResult(E.not_coordinator))
            self._timers.cancel(("heartbeat", group.group_id, member.member_id))
        for member_id in group.pending_members:
            self._timers.cancel(("pending", group.group_id, member_id))
        self._timers.cancel(("join", group.group_id))
        self._timers.cancel(("sync", group.group_id))
        self._initial_join.discard(group.group_id)
        group.state = GroupState.DEAD
        if self._groups.get(group.group_id) is group:
            del self._groups[group.group_id]

    # ------------------------------------------------------------------ validation

    def _group_error(self, group_id: str | None, *, allow_empty: bool = False) -> ErrorCode | None:
        """Kafka's validateGroupStatus: bad id, not ours, or still loading."""
        if group_id is None or (not allow_empty and group_id == ""):
            return E.invalid_group_id
        status = self._partitions.get(self.partition_for(group_id))
        if status is None:
            return E.not_coordinator
        if status == _LOADING:
            return E.coordinator_load_in_progress
        return None

    @staticmethod
    def _member_error(group: Group, member_id: str, instance_id: str | None) -> ErrorCode | None:
        """Kafka's validateCurrentMember: static fencing, then membership."""
        if instance_id is not None:
            current = group.static_member_id(instance_id)
            if current is None:
                return E.unknown_member_id
            if current != member_id:
                return E.fenced_instance_id
        if not group.has(member_id):
            return E.unknown_member_id
        return None

    def _new_group(self, group_id: str) -> Group:
        group = Group(group_id, self.partition_for(group_id))
        self._groups[group_id] = group
        return group

    def _maybe_drop_unused(self, group: Group) -> None:
        """Forget a group created by a request that then failed, if it holds nothing."""
        if (self._holds_nothing(group) and group.generation_id == 0
                and self._groups.get(group.group_id) is group):
            del self._groups[group.group_id]

    def _holds_nothing(self, group: Group) -> bool:
        """Empty, and without members, offsets, commits being written or offsets of open
        transactions: what Kafka's GroupCoordinator removes (a group in that state dies)."""
        return (group.is_(GroupState.EMPTY) and not group.members and not group.pending_members
                and not group.offsets and not group.pending_commits
                and not any(self._pending_txn.get(group.group_id, {}).values()))

    def _retire_if_unused(self, group: Group, now: int) -> list[tuple[bytes, None, list[Any]]]:
        """Remove `group` if it holds nothing; returns its group tombstone (only a group that
        ever had a generation wrote its metadata: one used only for offsets never did)."""
        if not self._holds_nothing(group):
            return []
        generation = group.generation_id
        group.transition_to(GroupState.DEAD, now)
        self._unload(group)
        self._pending_txn.pop(group.group_id, None)
        log.info("group %s removed: empty and without offsets", group.group_id)
        return [(rec.encode_group_key(group.group_id), None, [])] if generation > 0 else []

    # ------------------------------------------------------------------ JoinGroup

    async def join_group(self, request: Any, version: int, client_id: str,
                         client_host: str) -> JoinResult:
        """JoinGroup v0-9; waits (asynchronously) until the join phase of the rebalance ends."""
        group_id = request.group_id
        member_id = request.member_id or ""
        instance_id = getattr(request, "group_instance_id", None)
        session_timeout = _ms(request.session_timeout, 0)
        rebalance_timeout = session_timeout
        if version >= 1:
            rebalance_timeout = _ms(getattr(request, "rebalance_timeout", None), session_timeout)
            if rebalance_timeout < 0:
                rebalance_timeout = session_timeout
        protocols = [(p.name, bytes(p.metadata)) for p in request.protocols]
        protocol_type = request.protocol_type

        error = self._group_error(group_id)
        if error is not None:
            return JoinResult(error, member_id)
        if not (self.config["group.min.session.timeout.ms"] <= session_timeout
                <= self.config["group.max.session.timeout.ms"]):
            return JoinResult(E.invalid_session_timeout, member_id)

        group = self._groups.get(group_id)
        if group is None:
            if member_id:
                return JoinResult(E.unknown_member_id, member_id)
            group = self._new_group(group_id)
        if not self._accept_joining_member(group, member_id):
            self._maybe_drop_unused(group)
            return JoinResult(E.group_max_size_reached, member_id)

        if group.is_(GroupState.DEAD):
            # the group was just deleted or unloaded: let the client find its coordinator again
            return JoinResult(E.coordinator_not_available, member_id)
        if not group.supports_protocols(protocol_type, [name for name, _ in protocols]):
            self._maybe_drop_unused(group)
            return JoinResult(E.inconsistent_group_protocol, member_id)

        args = (rebalance_timeout, session_timeout, protocol_type, protocols)
        if not member_id:
            outcome = await self._join_unknown_member(group, instance_id, version >= 4,
                                                      client_id or "", client_host, *args)
        else:
            outcome = await self._join_known_member(group, member_id, instance_id,
                                                    client_id or "", client_host, *args)
        if isinstance(outcome, JoinResult):
            if outcome.error not in (E.none, E.member_id_required):
                self._maybe_drop_unused(group)
            return outcome
        if group.is_(GroupState.PREPARING_REBALANCE):
            await self._try_complete_join(group)
        return await outcome

    def _accept_joining_member(self, group: Group, member_id: str) -> bool:
        limit = self.config["group.max.size"]
        if group.state in (GroupState.EMPTY, GroupState.DEAD):
            return True
        if group.is_(GroupState.PREPARING_REBALANCE):
            awaiting = sum(1 for m in group.members.values() if m.awaiting_join)
            return (group.has(member_id) and group.get(member_id).awaiting_join) or \
                awaiting < limit
        return group.has(member_id) or len(group.members) < limit

    async def _join_unknown_member(self, group: Group, instance_id: str | None,
                                   require_known_id: bool, client_id: str, client_host: str,
                                   rebalance_timeout: int, session_timeout: int,
                                   protocol_type: str, protocols: list[tuple[str, bytes]],
                                   ) -> JoinResult | asyncio.Future[JoinResult]:
        new_id = f"{instance_id or client_id}-{uuid.uuid4()}"
        if instance_id is not None:
            if group.static_member_id(instance_id) is not None:
                return await self._rejoin_static_member(
                    group, instance_id, new_id, client_id, client_host, rebalance_timeout,
                    session_timeout, protocols)
            return await self._add_member_and_rebalance(
                group, new_id, instance_id, client_id, client_host, rebalance_timeout,
                session_timeout, protocol_type, protocols)
        if require_known_id:
            # KIP-394: hand out the id, remember it as pending, let the client come back with it
            group.pending_members.add(new_id)
            self._timers.schedule(("pending", group.group_id, new_id),
                                  self._now() + session_timeout,
                                  lambda: self._expire_pending_member(group, new_id))
            return JoinResult(E.member_id_required, new_id)
        return await self._add_member_and_rebalance(
            group, new_id, None, client_id, client_host, rebalance_timeout, session_timeout,
            protocol_type, protocols)

    async def _join_known_member(self, group: Group, member_id: str, instance_id: str | None,
                                 client_id: str, client_host: str, rebalance_timeout: int,
                                 session_timeout: int, protocol_type: str,
                                 protocols: list[tuple[str, bytes]],
                                 ) -> JoinResult | asyncio.Future[JoinResult]:
        if member_id in group.pending_members:
            if instance_id is not None:
                return JoinResult(E.unknown_member_id, member_id)
            self._timers.cancel(("pending", group.group_id, member_id))
            return await self._add_member_and_rebalance(
                group, member_id, None, client_id, client_host, rebalance_timeout,
                session_timeout, protocol_type, protocols)
        error = self._member_error(group, member_id, instance_id)
        if error is not None:
            return JoinResult(error, member_id)
        member = group.get(member_id)
        state = group.state
        if state is GroupState.PREPARING_REBALANCE:
            return await self._update_member_and_rebalance(
                group, member, protocols, rebalance_timeout, session_timeout)
        if state is GroupState.COMPLETING_REBALANCE:
            if member.matches(protocols):
                # a retry of a join that already completed: answer it again
                is_leader = group.is_leader(member_id)
                return self._current_join_result(group, member_id, leader_members=is_leader)
            return await self._update_member_and_rebalance(
                group, member, protocols, rebalance_timeout, session_timeout)
        if state is GroupState.STABLE:
            if group.is_leader(member_id) or not member.matches(protocols):
                # the leader rejoining means it wants a new assignment (e.g. metadata changed)
                return await self._update_member_and_rebalance(
                    group, member, protocols, rebalance_timeout, session_timeout)
            self._schedule_heartbeat(group, member)
            return self._current_join_result(group, member_id, leader_members=False)
        return JoinResult(E.unknown_member_id, member_id)

    def _current_join_result(self, group: Group, member_id: str, *, leader_members: bool,
                             skip_assignment: bool = False) -> JoinResult:
        return JoinResult(
            E.none, member_id, group.generation_id, group.protocol_type, group.protocol_name,
            group.leader_id or "", skip_assignment,
            tuple(group.current_member_metadata()) if leader_members else ())

    def _set_join_future(self, member: Member) -> asyncio.Future[JoinResult]:
        if member.awaiting_join:
            # a duplicate JoinGroup (client retry): the older request is superseded
            member.join_future.set_result(JoinResult(E.rebalance_in_progress, member.member_id))
        future: asyncio.Future[JoinResult] = asyncio.get_running_loop().create_future()
        member.join_future = future
        return future

    async def _add_member_and_rebalance(self, group: Group, member_id: str,
                                        instance_id: str | None, client_id: str,
                                        client_host: str, rebalance_timeout: int,
                                        session_timeout: int, protocol_type: str,
                                        protocols: list[tuple[str, bytes]],
                                        ) -> asyncio.Future[JoinResult]:
        member = Member(member_id, instance_id, client_id, client_host, rebalance_timeout,
                        session_timeout, protocol_type, protocols, is_new=True)
        future = self._set_join_future(member)
        if group.is_(GroupState.PREPARING_REBALANCE) and group.generation_id == 0:
            group.new_member_added = True
        group.add(member)
        # a new member waiting in JoinGroup is dropped if the join phase takes over 5 minutes
        self._schedule_heartbeat(group, member, timeout_ms=NEW_MEMBER_JOIN_TIMEOUT_MS)
        await self._maybe_prepare_rebalance(group, f"member {member_id} joined")
        return future

    async def _update_member_and_rebalance(self, group: Group, member: Member,
                                           protocols: list[tuple[str, bytes]],
                                           rebalance_timeout: int, session_timeout: int,
                                           ) -> asyncio.Future[JoinResult]:
        group.update_member(member, protocols, rebalance_timeout, session_timeout)
        future = self._set_join_future(member)
        await self._maybe_prepare_rebalance(group, f"member {member.member_id} rejoined")
        return future

    async def _rejoin_static_member(self, group: Group, instance_id: str, new_id: str,
                                    client_id: str, client_host: str, rebalance_timeout: int,
                                    session_timeout: int, protocols: list[tuple[str, bytes]],
                                    ) -> JoinResult | asyncio.Future[JoinResult]:
        """KIP-345: a known group.instance.id joins with a fresh member id; the old one is fenced.

        In a Stable group whose protocol would not change, this causes no rebalance: the member
        keeps its assignment (the leader gets skip_assignment, JoinGroup v9).
        """
        old_id = group.static_member_id(instance_id)
        assert old_id is not None
        old = group.get(old_id)
        if old.awaiting_join:
            old.join_future.set_result(JoinResult(E.fenced_instance_id, old_id))
        if old.awaiting_sync:
            old.sync_future.set_result(SyncResult(E.fenced_instance_id))
        self._timers.cancel(("heartbeat", group.group_id, old_id))
        saved = (list(old.protocols), old.rebalance_timeout_ms, old.session_timeout_ms,
                 old.client_id, old.client_host)
        member = group.replace_static_member(instance_id, old_id, new_id)
        group.update_member(member, protocols, rebalance_timeout, session_timeout)
        member.client_id, member.client_host = client_id, client_host
        future = self._set_join_future(member)
        self._schedule_heartbeat(group, member)

        if group.is_(GroupState.STABLE):
            if group.protocol_name == group.select_protocol():
                generation = group.generation_id
                assignment = {m.member_id: m.assignment for m in group.members.values()}
                error = await self._store_group(group, assignment)
                if future.done():
                    return future
                if error != E.none:
                    if group.static_member_id(instance_id) == new_id and group.has(new_id):
                        group.replace_static_member(instance_id, new_id, old_id)
                        group.update_member(member, saved[0], saved[1], saved[2])
                        member.client_id, member.client_host = saved[3], saved[4]
                        self._timers.cancel(("heartbeat", group.group_id, new_id))
                        self._schedule_heartbeat(group, member)
                    future.set_result(JoinResult(error, ""))
                elif group.generation_id == generation and group.has(new_id):
                    is_leader = group.is_leader(new_id)
                    future.set_result(self._current_join_result(
                        group, new_id, leader_members=is_leader, skip_assignment=is_leader))
                return future
            await self._maybe_prepare_rebalance(
                group, f"static member {instance_id} rejoined with a protocol change")
        elif group.is_(GroupState.COMPLETING_REBALANCE):
            # the leader may already be assigning to the old member id: start over
            await self._prepare_rebalance(group, f"static member {instance_id} rejoined")
        return future

    # ------------------------------------------------------------------ rebalance

    async def _maybe_prepare_rebalance(self, group: Group, reason: str) -> None:
        if group.can_rebalance():
            await self._prepare_rebalance(group, reason)

    async def _prepare_rebalance(self, group: Group, reason: str) -> None:
        if group.is_(GroupState.COMPLETING_REBALANCE):
            self._reset_and_propagate_assignment_error(group, E.rebalance_in_progress)
        self._timers.cancel(("sync", group.group_id))
        was_empty = group.is_(GroupState.EMPTY)
        group.transition_to(GroupState.PREPARING_REBALANCE, self._wall())
        log.info("preparing to rebalance group %s (generation %d): %s",
                 group.group_id, group.generation_id, reason)
        delay = self._initial_delay_ms
        if was_empty and delay > 0:
            group.new_member_added = False
            self._initial_join.add(group.group_id)
            remaining = max(group.max_rebalance_timeout_ms() - delay, 0)
            self._schedule_initial_join(group, delay, remaining)
        else:
            self._initial_join.discard(group.group_id)
            self._timers.schedule(("join", group.group_id),
                                  self._now() + group.max_rebalance_timeout_ms(),
                                  lambda: self._expire_join(group))
            await self._try_complete_join(group)

    def _schedule_initial_join(self, group: Group, delay: int, remaining: int) -> None:
        self._timers.schedule(("join", group.group_id), self._now() + delay,
                              lambda: self._expire_initial_join(group, delay, remaining))

    async def _expire_initial_join(self, group: Group, delay: int, remaining: int) -> None:
        if self._groups.get(group.group_id) is not group:
            return
        if group.new_member_added and remaining != 0:
            # members keep arriving: wait another delay, within the rebalance timeout
            group.new_member_added = False
            next_delay = min(self._initial_delay_ms, remaining)
            self._schedule_initial_join(group, next_delay, max(remaining - delay, 0))
            return
        self._initial_join.discard(group.group_id)
        await self._complete_join(group)

    async def _expire_join(self, group: Group) -> None:
        if self._groups.get(group.group_id) is group:
            await self._complete_join(group)

    async def _try_complete_join(self, group: Group) -> None:
        """End the join phase now if every member has rejoined (not during the initial delay)."""
        if (group.is_(GroupState.PREPARING_REBALANCE)
                and group.group_id not in self._initial_join
                and group.all_members_joined()):
            await self._complete_join(group)

    async def _complete_join(self, group: Group) -> None:
        """Kafka's onCompleteJoin: drop who did not rejoin, start the next generation."""
        if not group.is_(GroupState.PREPARING_REBALANCE):
            return
        self._timers.cancel(("join", group.group_id))
        self._initial_join.discard(group.group_id)
        for member in group.not_yet_rejoined():
            if not member.is_static:
                log.info("removing member %s of group %s: it did not rejoin in time",
                         member.member_id, group.group_id)
                self._drop_member(group, member)
        if not group.maybe_elect_new_joined_leader() and group.members:
            # nobody rejoined: wait again until session timeouts remove the silent members
            self._timers.schedule(("join", group.group_id),
                                  self._now() + group.max_rebalance_timeout_ms(),
                                  lambda: self._expire_join(group))
            return
        group.init_next_generation(self._wall())
        if group.is_(GroupState.EMPTY):
            log.info("group %s with generation %d is now empty", group.group_id,
                     group.generation_id)
            error = await self._store_group(group, {})
            if error != E.none:
                log.warning("failed to store empty group %s: %s", group.group_id, error.name)
            return
        log.info("stabilized group %s generation %d (protocol %s, %d members)",
                 group.group_id, group.generation_id, group.protocol_name, len(group.members))
        for member in group.members.values():
            is_leader = group.is_leader(member.member_id)
            if member.awaiting_join:
                member.join_future.set_result(
                    self._current_join_result(group, member.member_id, leader_members=is_leader))
            self._schedule_heartbeat(group, member)
            member.is_new = False
            group.pending_sync.add(member.member_id)
        generation = group.generation_id
        self._timers.schedule(("sync", group.group_id),
                              self._now() + group.max_rebalance_timeout_ms(),
                              lambda: self._expire_pending_sync(group, generation))

    async def _expire_pending_sync(self, group: Group, generation: int) -> None:
        """Members that got their JoinGroup answer but never synced are removed (Kafka 3.x)."""
        if self._groups.get(group.group_id) is not group or group.generation_id != generation:
            return
        if group.state not in (GroupState.COMPLETING_REBALANCE, GroupState.STABLE):
            return
        if not group.pending_sync:
            return
        for member_id in list(group.pending_sync):
            member = group.members.get(member_id)
            if member is not None:
                log.info("removing member %s of group %s: no SyncGroup in time",
                         member_id, group.group_id)
                self._drop_member(group, member)
        group.pending_sync.clear()
        await self._prepare_rebalance(group, "members did not sync in time")

    def _reset_and_propagate_assignment_error(self, group: Group, error: ErrorCode) -> None:
        for member in group.members.values():
            member.assignment = b""
        self._propagate_assignment(group, error)

    def _propagate_assignment(self, group: Group, error: ErrorCode) -> None:
        for member in group.members.values():
            if member.awaiting_sync:
                member.sync_future.set_result(SyncResult(
                    error, group.protocol_type, group.protocol_name,
                    member.assignment if error == E.none else b""))
                self._schedule_heartbeat(group, member)

    # ------------------------------------------------------------------ heartbeats & removal

    def _schedule_heartbeat(self, group: Group, member: Member, *, now: int | None = None,
                            timeout_ms: int | None = None) -> None:
        """Record a heartbeat and arm the session timeout (Kafka's
        completeAndScheduleNextHeartbeatExpiration)."""
        now = self._now() if now is None else now
        member.last_heartbeat_ms = now
        timeout = member.session_timeout_ms if timeout_ms is None else timeout_ms
        member_id = member.member_id
        self._timers.schedule(("heartbeat", group.group_id, member_id), now + timeout,
                              lambda: self._expire_heartbeat(group, member_id))

    async def _expire_heartbeat(self, group: Group, member_id: str) -> None:
        if self._groups.get(group.group_id) is not group:
            return
        member = group.members.get(member_id)
        if member is None:
            return
        now = self._now()
        if member.awaiting_join:
            keep = not member.is_new or \
                member.last_heartbeat_ms + NEW_MEMBER_JOIN_TIMEOUT_MS > now
        else:
            keep = member.awaiting_sync
        if keep:
            timeout = NEW_MEMBER_JOIN_TIMEOUT_MS if member.is_new else member.session_timeout_ms
            self._timers.schedule(("heartbeat", group.group_id, member_id), now + timeout,
                                  lambda: self._expire_heartbeat(group, member_id))
            return
        log.info("member %s of group %s has failed (session timeout)", member_id,
                 group.group_id)
        await self._remove_member_and_update_group(group, member)

    def _drop_member(self, group: Group, member: Member) -> None:
        """Remove a member, answering any request it is waiting in with UNKNOWN_MEMBER_ID."""
        if member.awaiting_join:
            member.join_future.set_result(JoinResult(E.unknown_member_id, member.member_id))
        if member.awaiting_sync:
            member.sync_future.set_result(SyncResult(E.unknown_member_id))
        group.remove(member.member_id)
        self._timers.cancel(("heartbeat", group.group_id, member.member_id))

    async def _remove_member_and_update_group(self, group: Group, member: Member) -> None:
        self._drop_member(group, member)
        if group.state in (GroupState.STABLE, GroupState.COMPLETING_REBALANCE):
            await self._maybe_prepare_rebalance(group, f"member {member.member_id} left")
        elif group.is_(GroupState.PREPARING_REBALANCE):
            await self._try_complete_join(group)

    async def _expire_pending_member(self, group: Group, member_id: str) -> None:
        if self._groups.get(group.group_id) is not group:
            return
        if member_id in group.pending_members:
            group.pending_members.discard(member_id)
            if group.is_(GroupState.PREPARING_REBALANCE):
                await self._try_complete_join(group)
            self._maybe_drop_unused(group)

    # ------------------------------------------------------------------ SyncGroup

    async def sync_group(self, request: Any, version: int) -> SyncResult:
        """SyncGroup v0-5: the leader brings the assignment; everyone waits for theirs."""
        group_id = request.group_id
        member_id = request.member_id
        generation = request.generation_id
        instance_id = getattr(request, "group_instance_id", None)
        protocol_type = getattr(request, "protocol_type", None)
        protocol_name = getattr(request, "protocol_name", None)
        error = self._group_error(group_id)
        if error is not None:
            return SyncResult(error)
        group = self._groups.get(group_id)
        if group is None:
            return SyncResult(E.unknown_member_id)
        if group.is_(GroupState.DEAD):
            return SyncResult(E.coordinator_not_available)
        error = self._member_error(group, member_id, instance_id)
        if error is None and generation != group.generation_id:
            error = E.illegal_generation
        if error is None and protocol_type is not None and protocol_type != group.protocol_type:
            error = E.inconsistent_group_protocol
        if error is None and protocol_name is not None and protocol_name != group.protocol_name:
            error = E.inconsistent_group_protocol
        if error is not None:
            return SyncResult(error)
        if group.is_(GroupState.EMPTY):
            return SyncResult(E.unknown_member_id)
        if group.is_(GroupState.PREPARING_REBALANCE):
            return SyncResult(E.rebalance_in_progress)
        member = group.get(member_id)
        group.pending_sync.discard(member_id)
        if group.is_(GroupState.STABLE):
            self._schedule_heartbeat(group, member)
            return SyncResult(E.none, group.protocol_type, group.protocol_name, member.assignment)

        # CompletingRebalance
        if member.awaiting_sync:
            member.sync_future.set_result(SyncResult(E.rebalance_in_progress))
        future: asyncio.Future[SyncResult] = asyncio.get_running_loop().create_future()
        member.sync_future = future
        if group.is_leader(member_id):
            assignment = {a.member_id: bytes(a.assignment) for a in request.assignments}
            for other in group.members:
                assignment.setdefault(other, b"")
            error = await self._store_group(group, assignment)
            if group.is_(GroupState.COMPLETING_REBALANCE) and group.generation_id == generation:
                if error != E.none:
                    self._reset_and_propagate_assignment_error(group, error)
                    await self._maybe_prepare_rebalance(group, f"storing group failed: {error}")
                else:
                    for mid, member_assignment in assignment.items():
                        if mid in group.members:
                            group.members[mid].assignment = member_assignment
                    self._propagate_assignment(group, E.none)
                    group.transition_to(GroupState.STABLE, self._wall())
                    log.info("group %s generation %d is stable", group_id, generation)
        return await future

    # ------------------------------------------------------------------ Heartbeat, LeaveGroup

    async def heartbeat(self, request: Any, version: int) -> ErrorCode:
        """Heartbeat v0-4: REBALANCE_IN_PROGRESS tells a member to rejoin."""
        group_id = request.group_id
        member_id = request.member_id
        instance_id = getattr(request, "group_instance_id", None)
        error = self._group_error(group_id)
        if error is not None:
            return error
        group = self._groups.get(group_id)
        if group is None:
            return E.unknown_member_id
        if group.is_(GroupState.DEAD):
            return E.coordinator_not_available
        error = self._member_error(group, member_id, instance_id)
        if error is not None:
            return error
        if request.generation_id != group.generation_id:
            return E.illegal_generation
        if group.is_(GroupState.EMPTY):
            return E.unknown_member_id
        self._schedule_heartbeat(group, group.get(member_id))
        if group.is_(GroupState.PREPARING_REBALANCE):
            return E.rebalance_in_progress
        return E.none

    async def leave_group(self, request: Any, version: int) -> LeaveResult:
        """LeaveGroup v0-5 (v3+: a batch of members, by member id and/or group.instance.id)."""
        group_id = request.group_id
        if version >= 3:
            leaving = [(m.member_id or "", m.group_instance_id) for m in request.members]
        else:
            leaving = [(request.member_id, None)]
        error = self._group_error(group_id)
        if error is not None:
            return LeaveResult(error, tuple((m, i, error) for m, i in leaving))
        group = self._groups.get(group_id)
        if group is None:
            return LeaveResult(E.none, tuple((m, i, E.unknown_member_id) for m, i in leaving))
        if group.is_(GroupState.DEAD):
            return LeaveResult(E.coordinator_not_available,
                               tuple((m, i, E.coordinator_not_available) for m, i in leaving))
        results = []
        for member_id, instance_id in leaving:
            results.append((member_id, instance_id,
                            await self._leave_one(group, member_id, instance_id)))
        return LeaveResult(E.none, tuple(results))

    async def _leave_one(self, group: Group, member_id: str,
                         instance_id: str | None) -> ErrorCode:
        if instance_id is not None:
            current = group.static_member_id(instance_id)
            if current is None:
                return E.unknown_member_id
            if member_id and member_id != current:
                return E.fenced_instance_id
            member_id = current
        elif member_id in group.pending_members:
            group.pending_members.discard(member_id)
            self._timers.cancel(("pending", group.group_id, member_id))
            if group.is_(GroupState.PREPARING_REBALANCE):
                await self._try_complete_join(group)
            return E.none
        member = group.members.get(member_id)
        if member is None:
            return E.unknown_member_id
        log.info("member %s leaves group %s", member_id, group.group_id)
        await self._remove_member_and_update_group(group, member)
        return E.none

    # ------------------------------------------------------------------ OffsetCommit

    async def commit_offsets(self, request: Any, version: int) -> list[PartitionResult]:
        """OffsetCommit v2-9, for group members and for simple consumers (generation -1)."""
        group_id = request.group_id
        generation = getattr(request, "generation_id_or_member_epoch", -1)
        member_id = request.member_id or ""
        instance_id = getattr(request, "group_instance_id", None)
        retention = -1
        if 2 <= version <= 4:
            retention = _ms(getattr(request, "retention_time", None), -1)
        wanted = [(t.name, p) for t in request.topics for p in t.partitions]

        def everyone(err: ErrorCode) -> list[PartitionResult]:
            return [PartitionResult(t, p.partition_index, err) for t, p in wanted]

        error = self._group_error(group_id, allow_empty=True)
        if error is not None:
            return everyone(error)
        group = self._groups.get(group_id)
        if group is None:
            if generation >= 0:
                # a member of a generation this coordinator does not know
                return everyone(E.illegal_generation)
            group = self._new_group(group_id)  # a simple consumer: offsets only
        if group.is_(GroupState.DEAD):
            return everyone(E.coordinator_not_available)
        if generation >= 0 or member_id or instance_id is not None:
            error = self._member_error(group, member_id, instance_id)
            if error is None and generation != group.generation_id:
                error = E.illegal_generation
        elif not group.is_(GroupState.EMPTY):
            error = E.unknown_member_id  # only members may commit for a non-empty group
        if error is None and group.is_(GroupState.COMPLETING_REBALANCE):
            error = E.rebalance_in_progress
        if error is not None:
            self._maybe_drop_unused(group)
            return everyone(error)
        if group.has(member_id):
            self._schedule_heartbeat(group, group.get(member_id))
        return await self._store_offsets(group, wanted, retention)

    async def _store_offsets(self, group: Group, wanted: list[tuple[str, Any]],
                             retention_ms: int) -> list[PartitionResult]:
        now = self._wall()
        expire = None if retention_ms < 0 else now + retention_ms
        results: dict[tuple[str, int], ErrorCode] = {}
        records: list[tuple[bytes, bytes, list[Any]]] = []
        values: list[tuple[TopicPartition, CommittedOffset]] = []
        max_metadata = self._max_metadata_bytes
        for topic, p in wanted:
            metadata = p.committed_metadata if p.committed_metadata is not None else ""
            if len(metadata.encode("utf-8")) > max_metadata:
                results[(topic, p.partition_index)] = E.offset_metadata_too_large
                continue
            epoch = int(getattr(p, "committed_leader_epoch", -1))
            value = rec.OffsetValue(int(p.committed_offset), metadata, now, epoch, expire)
            records.append((rec.encode_offset_key(group.group_id, topic, p.partition_index),
                            rec.encode_offset_value(value), []))
            values.append((TopicPartition(topic, p.partition_index),
                           CommittedOffset(value.offset, epoch, metadata, now, expire)))
        if records:
            tps = [tp for tp, _ in values]
            group.pending_commits.update(tps)
            in_flight = InFlightCommit(frozenset(tps))
            group.commits_in_flight.append(in_flight)
            try:
                code, base = await self._append(group.partition, records)
            finally:
                group.pending_commits.subtract(tps)
                group.pending_commits += Counter()
                group.commits_in_flight.remove(in_flight)
            deleted = in_flight.deleted
            code = _offset_append_error(code)
            if code == E.none and self._groups.get(group.group_id) is group \
                    and not group.is_(GroupState.DEAD):
                for i, (tp, committed) in enumerate(values):
                    if tp in deleted:
                        continue  # its partition was deleted while this commit was written
                    previous = group.offsets.get(tp)
                    record_offset = base + i
                    if previous is None or previous.record_offset <= record_offset:
                        group.offsets[tp] = CommittedOffset(
                            committed.offset, committed.leader_epoch, committed.metadata,
                            committed.commit_timestamp, committed.expire_timestamp,
                            record_offset)
            for tp, _ in values:
                results[(tp.topic, tp.partition)] = code
        self._maybe_drop_unused(group)
        return [PartitionResult(t, p.partition_index, results[(t, p.partition_index)])
                for t, p in wanted]

    # ------------------------------------------------------------------ TxnOffsetCommit

    async def txn_commit_offsets(self, request: Any, version: int) -> list[PartitionResult]:
        """TxnOffsetCommit v0-3: offsets written with the producer's id as a transactional
        batch; they stay pending (invisible) until the transaction's marker commits them."""
        group_id = request.group_id
        producer_id = int(request.producer_id)
        producer_epoch = int(request.producer_epoch)
        generation = int(getattr(request, "generation_id", -1))
        member_id = getattr(request, "member_id", "") or ""
        instance_id = getattr(request, "group_instance_id", None)
        wanted = [(t.name, p) for t in request.topics for p in t.partitions]

        def everyone(err: ErrorCode) -> list[PartitionResult]:
            return [PartitionResult(t, p.partition_index, err) for t, p in wanted]

        error = self._group_error(group_id)
        if error is not None:
            return everyone(error)
        group = self._groups.get(group_id)
        if group is None:
            if generation >= 0:
                return everyone(E.illegal_generation)
            group = self._new_group(group_id)
        if group.is_(GroupState.DEAD):
            return everyone(E.coordinator_not_available)
        if instance_id is not None:
            current = group.static_member_id(instance_id)
            if current is not None and current != member_id:
                return everyone(E.fenced_instance_id)
        if member_id and not group.has(member_id):
            return everyone(E.unknown_member_id)
        if generation >= 0 and generation != group.generation_id:
            return everyone(E.illegal_generation)
        now = self._wall()
        results: dict[tuple[str, int], ErrorCode] = {}
        records: list[tuple[bytes, bytes, list[Any]]] = []
        values: list[tuple[TopicPartition, CommittedOffset]] = []
        for topic, p in wanted:
            metadata = p.committed_metadata if p.committed_metadata is not None else ""
            if len(metadata.encode("utf-8")) > self._max_metadata_bytes:
                results[(topic, p.partition_index)] = E.offset_metadata_too_large
                continue
            epoch = int(getattr(p, "committed_leader_epoch", -1))
            value = rec.OffsetValue(int(p.committed_offset), metadata, now, epoch)
            records.append((rec.encode_offset_key(group_id, topic, p.partition_index),
                            rec.encode_offset_value(value), []))
            values.append((TopicPartition(topic, p.partition_index),
                           CommittedOffset(value.offset, epoch, metadata, now)))
        if records:
            code, base = await self._append(group.partition, records,
                                            producer=(producer_id, producer_epoch))
            code = _offset_append_error(code)
            if code == E.none and self._partitions.get(group.partition) == _LOADED:
                pending = self._pending_txn.setdefault(group_id, {}).setdefault(producer_id, {})
                for i, (tp, committed) in enumerate(values):
                    pending[tp] = CommittedOffset(
                        committed.offset, committed.leader_epoch, committed.metadata,
                        committed.commit_timestamp, None, base + i)
            for tp, _ in values:
                results[(tp.topic, tp.partition)] = code
        return [PartitionResult(t, p.partition_index, results[(t, p.partition_index)])
                for t, p in wanted]

    async def complete_txn(self, producer_id: int, partitions: Sequence[int],
                           commit: bool) -> None:
        """A transaction marker was written to these __consumer_offsets partitions: make the
        producer's pending offsets visible (commit) or drop them (abort)."""
        wanted = set(partitions)
        for group_id in list(self._pending_txn):
            if self.partition_for(group_id) not in wanted:
                continue
            by_producer = self._pending_txn[group_id]
            offsets = by_producer.pop(producer_id, None)
            if not by_producer:
                del self._pending_txn[group_id]
            if not commit or not offsets:
                continue
            group = self._groups.get(group_id)
            if group is None or group.is_(GroupState.DEAD):
                group = self._new_group(group_id)
            for tp, committed in offsets.items():
                previous = group.offsets.get(tp)
                if previous is None or previous.record_offset <= committed.record_offset:
                    group.offsets[tp] = committed

    def pending_transactional_offsets(self, group_id: str,
                                      ) -> dict[int, dict[TopicPartition, CommittedOffset]]:
        """Producer id -> offsets committed in still-open transactions (diagnostics)."""
        return {pid: dict(o) for pid, o in self._pending_txn.get(group_id, {}).items()}

    # ------------------------------------------------------------------ OffsetFetch

    async def fetch_offsets(self, group_id: str,
                            topics: Sequence[tuple[str, Sequence[int]]] | None,
                            require_stable: bool = False) -> OffsetFetchResult:
        """OffsetFetch for one group; `topics` None means every committed partition.

        With `require_stable`, partitions with a transactional commit still pending answer
        UNSTABLE_OFFSET_COMMIT (KIP-447), so that the client retries.
        """
        error = self._group_error(group_id, allow_empty=True)
        if error is not None:
            return OffsetFetchResult(error)
        group = self._groups.get(group_id)
        offsets = {} if group is None or group.is_(GroupState.DEAD) else group.offsets
        unstable: set[TopicPartition] = set()
        if require_stable:
            for pending in self._pending_txn.get(group_id, {}).values():
                unstable.update(pending)
        if unstable and topics is not None:
            partitions = [PartitionOffset(t, i, error=E.unstable_offset_commit)
                          if TopicPartition(t, i) in unstable else None
                          for t, indexes in topics for i in indexes]
            if any(p is not None for p in partitions):
                stable = [(t, [i for i in indexes if TopicPartition(t, i) not in unstable])
                          for t, indexes in topics]
                result = await self.fetch_offsets(group_id, stable, False)
                fetched = iter(result.partitions)
                return OffsetFetchResult(E.none, tuple(
                    p if p is not None else next(fetched) for p in partitions))
        partitions = []
        if topics is None:
            for tp, committed in sorted(offsets.items()):
                partitions.append(PartitionOffset(tp.topic, tp.partition, committed.offset,
                                                  committed.leader_epoch, committed.metadata))
        else:
            for topic, indexes in topics:
                for index in indexes:
                    committed = offsets.get(TopicPartition(topic, index))
                    if committed is None:
                        partitions.append(PartitionOffset(topic, index))
                    else:
                        partitions.append(PartitionOffset(
                            topic, index, committed.offset, committed.leader_epoch,
                            committed.metadata))
        return OffsetFetchResult(E.none, tuple(partitions))

    # ------------------------------------------------------------------ admin APIs

    def list_groups(self, states: Iterable[str] = (), types: Iterable[str] = (),
                    ) -> tuple[ErrorCode, list[ListedGroup]]:
        """ListGroups: every group this broker coordinates, filtered by state / type."""
        state_filter = {s.lower() for s in states}
        type_filter = {t.lower() for t in types}
        loading = any(s == _LOADING for s in self._partitions.values())
        listed = []
        for group in self._groups.values():
            if group.is_(GroupState.DEAD):
                continue
            if state_filter and group.state.value.lower() not in state_filter:
                continue
            if type_filter and "classic" not in type_filter:
                continue
            listed.append(ListedGroup(group.group_id, group.protocol_type or "",
                                      group.state.value))
        return (E.coordinator_load_in_progress if loading else E.none), listed

    def describe_group(self, group_id: str) -> GroupDescription:
        """DescribeGroups for one group (a missing group is described as Dead, as Kafka does)."""
        error = self._group_error(group_id, allow_empty=True)
        if error is not None:
            return GroupDescription(group_id, error, state="")
        group = self._groups.get(group_id)
        if group is None or group.is_(GroupState.DEAD):
            return GroupDescription(group_id)
        stable = group.is_(GroupState.STABLE)
        protocol = group.protocol_name or "" if stable else ""
        members = tuple(
            MemberDescription(m.member_id, m.group_instance_id, m.client_id, m.client_host,
                              m.metadata(protocol) if stable else b"",
                              m.assignment if stable else b"")
            for m in group.members.values())
        return GroupDescription(group_id, E.none, group.state.value, group.protocol_type or "",
                                protocol, members)

    async def delete_groups(self, group_ids: Iterable[str]) -> list[tuple[str, ErrorCode]]:
        """DeleteGroups: only Empty groups go (with their offsets); tombstones are written."""
        results = []
        for group_id in group_ids:
            error = self._group_error(group_id, allow_empty=True)
            if error is None:
                error = await self._delete_group(group_id)
            results.append((group_id, error))
        return results

    async def _delete_group(self, group_id: str) -> ErrorCode:
        group = self._groups.get(group_id)
        if group is None or group.is_(GroupState.DEAD):
            return E.group_id_not_found
        if not group.is_(GroupState.EMPTY) or group.pending_members:
            return E.non_empty_group
        group.transition_to(GroupState.DEAD, self._wall())
        records = [(rec.encode_offset_key(group_id, tp.topic, tp.partition), None, [])
                   for tp in group.offsets]
        records.append((rec.encode_group_key(group_id), None, []))
        self._unload(group)
        code, _ = await self._append(group.partition, records)
        return _group_append_error(code)

    async def delete_offsets(self, group_id: str,
                             topics: Sequence[tuple[str, Sequence[int]]]) -> OffsetDeleteResult:
        """OffsetDelete: drop committed offsets of partitions the group does not consume."""
        error = self._group_error(group_id, allow_empty=True)
        if error is not None:
            return OffsetDeleteResult(error)
        group = self._groups.get(group_id)
        if group is None or group.is_(GroupState.DEAD):
            return OffsetDeleteResult(E.group_id_not_found)
        requested = [TopicPartition(t, p) for t, parts in topics for p in parts]
        errors = dict.fromkeys(requested, E.none)
        if group.is_(GroupState.EMPTY):
            eligible = requested
        elif group.is_consumer_group():
            eligible = []
            for tp in requested:
                if group.is_subscribed_to(tp.topic):
                    errors[tp] = E.group_subscribed_to_topic
                else:
                    eligible.append(tp)
        else:
            return OffsetDeleteResult(E.non_empty_group)
        removed = [tp for tp in eligible if tp in group.offsets]
        if removed:
            for tp in removed:
                del group.offsets[tp]
            records = [(rec.encode_offset_key(group_id, tp.topic, tp.partition), None, [])
                       for tp in removed]
            code, _ = await self._append(group.partition, records)
            code = _group_append_error(code)
            if code != E.none:
                return OffsetDeleteResult(code)
        return OffsetDeleteResult(E.none, tuple(
            PartitionResult(tp.topic, tp.partition, err) for tp, err in errors.items()))

    # ------------------------------------------------------------------ deleted partitions

    async def on_partitions_deleted(self, partitions: Iterable[TopicPartition]) -> int:
        """Partitions were deleted (their topic left the metadata image): every group this
        broker coordinates loses its committed offsets for them, as Kafka's
        GroupCoordinator.onPartitionsDeleted / GroupMetadataManager.cleanupGroupMetadata.

        In memory first, before this coroutine first suspends: the committed offsets, the
        offsets of commits still being written and those of transactions not yet ended.
        Then tombstones go to __consumer_offsets, so that a restart or a new coordinator
        does not read them back. As in Kafka's cleanup, every Empty group left without
        offsets then goes (Dead, unloaded; a group tombstone if it ever had a generation).
        Groups of partitions still loading are cleaned once loaded. Returns how many
        offsets (committed, or pending in a transaction) were removed.
        """
        deleted = set(partitions)
        if not deleted:
            return 0
        for partition, status in self._partitions.items():
            if status == _LOADING:
                self._deleted_while_loading.setdefault(partition, set()).update(deleted)
        loaded = {p for p, status in self._partitions.items() if status == _LOADED}
        return await self._write_tombstones(self._remove_offsets(deleted, loaded), deleted)

    def _remove_offsets(self, deleted: set[TopicPartition], partitions: set[int],
                        ) -> list[tuple[int, int, list[tuple[bytes, None, list[Any]]]]]:
        """Drop `deleted`'s offsets from the groups of `partitions` (Kafka's removeOffsets,
        then Empty groups without offsets die); per group that changed, (its
        __consumer_offsets partition, offsets removed, tombstones to write)."""
        #: offsets of transactions not yet ended also get a tombstone: it follows their
        #: records in the log, so a reload after the commit marker does not apply them
        pending_removed: dict[str, set[TopicPartition]] = {}
        for group_id, by_producer in self._pending_txn.items():
            if self.partition_for(group_id) in partitions:
                for pending in by_producer.values():
                    for tp in [tp for tp in pending if tp in deleted]:
                        del pending[tp]
                        pending_removed.setdefault(group_id, set()).add(tp)
        now = self._wall()
        result: list[tuple[int, int, list[tuple[bytes, None, list[Any]]]]] = []
        for group in list(self._groups.values()):
            if group.partition not in partitions or group.is_(GroupState.DEAD):
                continue
            removed = [tp for tp in group.offsets if tp in deleted]
            for tp in removed:
                del group.offsets[tp]
            removed += sorted(pending_removed.get(group.group_id, set()).difference(removed))
            for in_flight in group.commits_in_flight:
                in_flight.deleted.update(in_flight.partitions & deleted)
            records = [(rec.encode_offset_key(group.group_id, tp.topic, tp.partition), None, [])
                       for tp in removed]
            records += self._retire_if_unused(group, now)
            if records:
                result.append((group.partition, len(removed), records))
        return result

    async def _write_tombstones(
            self, removed: list[tuple[int, int, list[tuple[bytes, None, list[Any]]]]],
            deleted: set[TopicPartition]) -> int:
        """Append the tombstones (_append_per_group) and log what went; returns how many
        offsets were removed."""
        await self._append_per_group([(partition, records) for partition, _, records in removed],
                                     "of deleted partitions")
        total = sum(count for _, count, _ in removed)
        if total:
            topics = sorted({tp.topic for tp in deleted})
            log.info("removed %d offsets of deleted partitions of %s", total,
                     ", ".join(topics))
        return total

    # ------------------------------------------------------------------ retention

    async def expire_offsets(self) -> int:
        """Kafka's offsets retention check: drop expired offsets, then empty offset-less groups.

        Returns how many offsets expired.
        """
        now = self._wall()
        batches: list[tuple[int, list[tuple[bytes, None, list[Any]]]]] = []
        expired_total = 0
        for group in list(self._groups.values()):
            if self._partitions.get(group.partition) != _LOADED or group.is_(GroupState.DEAD):
                continue
            expired = self._expired(group, now)
            for tp in expired:
                del group.offsets[tp]
            records = [(rec.encode_offset_key(group.group_id, tp.topic, tp.partition), None, [])
                       for tp in expired]
            records += self._retire_if_unused(group, now)
            expired_total += len(expired)
            if records:
                batches.append((group.partition, records))
        await self._append_per_group(batches, "of expired offsets")
        return expired_total

    async def _append_per_group(self, batches: list[tuple[int, list[tuple[bytes, None,
                                                                          list[Any]]]]],
                                what: str) -> None:
        """Append tombstones, one batch per group (as Kafka: a batch of every group's could
        outgrow message.max.bytes and be refused, and the offsets would come back on
        reload), all at once so that each lands in its log before a later commit can."""
        codes = await asyncio.gather(*(self._append(partition, records)
                                       for partition, records in batches))
        for (partition, _), (code, _) in zip(batches, codes, strict=True):
            if code != E.none:
                log.warning("failed to write tombstones %s to __consumer_offsets-%d: %s",
                            what, partition, code.name)

    def _expired(self, group: Group, now: int) -> list[TopicPartition]:
        common = {"now_ms": now, "retention_ms": self._retention_ms,
                  "pending": list(group.pending_commits)}
        if group.protocol_type is not None and group.is_(GroupState.EMPTY):
            return expired_offsets(group.offsets, base_timestamp_ms=group.state_timestamp_ms,
                                   **common)
        if group.is_consumer_group() and group.is_(GroupState.STABLE):
            topics = group.subscribed_topics()
            if topics is not None:
                return expired_offsets(group.offsets, base_timestamp_ms=None,
                                       subscribed_topics=topics, **common)
            return []
        if group.protocol_type is None:
            return expired_offsets(group.offsets, base_timestamp_ms=None, **common)
        return []

    # ------------------------------------------------------------------ persistence

    async def _store_group(self, group: Group, assignment: dict[str, bytes]) -> ErrorCode:
        """Write the group's GroupMetadataValue (Kafka's storeGroup); returns the mapped error."""
        protocol = group.protocol_name
        value = rec.GroupValue(
            group.protocol_type or "", group.generation_id, protocol, group.leader_id,
            group.state_timestamp_ms if group.state_timestamp_ms is not None else -1,
            tuple(rec.MemberValue(
                m.member_id, m.client_id, m.client_host, m.session_timeout_ms,
                m.rebalance_timeout_ms, m.metadata(protocol or ""),
                assignment.get(m.member_id, b""), m.group_instance_id)
                for m in group.members.values()))
        try:
            encoded = rec.encode_group_value(value)
        except ValueError:
            return E.unknown_server_error
        code, _ = await self._append(group.partition,
                                     [(rec.encode_group_key(group.group_id), encoded, [])])
        return _group_append_error(code)

    async def _append(self, partition: int,
                      records: list[tuple[bytes, bytes | None, list[Any]]],
                      producer: tuple[int, int] | None = None,
                      ) -> tuple[ErrorCode, int]:
        """Append records to __consumer_offsets-`partition`; (raw error, base offset).

        With `producer` (id, epoch) the batch is transactional (TxnOffsetCommit).
        """
        store = self._store
        try:
            if producer is None:
                batch = build_batch(records, timestamp_ms=self._wall())
            else:
                batch = build_batch(records, timestamp_ms=self._wall(),
                                    producer_id=producer[0], producer_epoch=producer[1],
                                    is_transactional=True)
                store = self.txn_store or self._store
        except Exception:
            log.exception("cannot build a __consumer_offsets batch")
            return E.unknown_server_error, -1
        limit = self.config.get("message.max.bytes")
        if limit is not None and len(batch) > int(limit):
            return E.record_list_too_large, -1
        try:
            base = await store.append(partition, batch)
        except KafkaError as exc:
            return exc.code, -1
        except Exception:
            log.exception("append to __consumer_offsets-%d failed", partition)
            return E.unknown_server_error, -1
        return E.none, int(base)

    # ------------------------------------------------------------------ console

    def groups_overview(self) -> list[GroupView]:
        """Every live group this broker coordinates: state, members with decoded assignments,
        committed offsets (for the console; the admin client gets the same over the wire)."""
        views = []
        for group in sorted(self._groups.values(), key=lambda g: g.group_id):
            if group.is_(GroupState.DEAD):
                continue
            members = tuple(
                MemberView(m.member_id, m.group_instance_id, m.client_id, m.client_host,
                           decode_assignment(m.assignment) if group.is_consumer_group() else {})
                for m in group.members.values())
            views.append(GroupView(
                group.group_id, group.state.value, group.protocol_type or "",
                group.protocol_name or "", group.generation_id, group.leader_id, members,
                {(tp.topic, tp.partition): c.offset for tp, c in sorted(group.offsets.items())}))
        return views

    def group(self, group_id: str) -> Group | None:
        """The live Group object (tests and diagnostics)."""
        return self._groups.get(group_id)
