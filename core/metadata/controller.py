"""The quorum controller: turns admin and broker requests into metadata records.

Like Kafka's QuorumController it is single-threaded (one asyncio lock serialises operations);
each operation reads the committed image, validates, appends records to the metadata log, and
returns once they are committed and applied. It only acts while its node leads the quorum
and, as Kafka's controller claims leadership only once it has replayed the log up to its
epoch's start, only once its image holds every record committed before (ready()): a freshly
elected leader defers operations until then, briefly, and refuses them with NOT_CONTROLLER
if that takes too long.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from kio.schema.errors import ErrorCode

from core.common.config import BrokerConfig, validate_topic_configs
from core.common.errors import (
    InvalidPartitionsError,
    InvalidReplicationFactorError,
    InvalidRequestError,
    InvalidTopicError,
    KafkaError,
    NotControllerError,
    PolicyViolationError,
    TopicAlreadyExistsError,
    UnknownTopicOrPartitionError,
)
from core.common.topics import colliding_topic, validate_topic_name
from core.metadata.image import NO_LEADER, MetadataImage, PartitionRegistration
from core.metadata.log import MetadataLog
from core.metadata.placement import place_replicas
from core.metadata.records import (
    ConfigChanged,
    FenceBroker,
    MetadataRecord,
    PartitionChanged,
    PartitionCreated,
    ProducerIdsAllocated,
    RegisterBroker,
    TopicCreated,
    TopicRemoved,
    UnfenceBroker,
)

log = logging.getLogger(__name__)

PRODUCER_ID_BLOCK = 1000
#: Kafka refuses one operation that would write more metadata records than this
MAX_RECORDS_PER_OPERATION = 10000
#: a new leader normally applies the previous epoch's committed records within one fetch
#: (~50 ms); operations wait this long for it before answering NOT_CONTROLLER
LEADER_READY_TIMEOUT_S = 3.0
READY_POLL_S = 0.005


#: a member epoch of -1 in an ISR proposal: not checked (AlterPartition v0-2 carry none)
NO_BROKER_EPOCH = -1


@dataclass(frozen=True, slots=True)
class IsrProposal:
    """One partition of an AlterPartition request: the leader's view of the partition
    (leader and partition epochs) and the ISR it wants, each member with the broker epoch
    the leader knows for it (KIP-903's NewIsrWithEpochs; NO_BROKER_EPOCH: not checked)."""

    topic: str
    partition: int
    leader_epoch: int
    partition_epoch: int
    new_isr: tuple[tuple[int, int], ...]

    @property
    def isr(self) -> list[int]:
        return [b for b, _ in self.new_isr]


#: a manual replica assignment: partition -> replicas, or (partition, replicas) pairs
Assignments = Mapping[int, Sequence[int]] | Sequence[tuple[int, Sequence[int]]]


@dataclass(frozen=True, slots=True)
class CreatedTopic:
    name: str
    topic_id: str
    num_partitions: int
    replication_factor: int
    configs: dict[str, str]


class QuorumController:
    """Validates and applies metadata changes while this node is the active controller."""

    def __init__(self, node_id: int, config: BrokerConfig, metadata_log: MetadataLog,
                 image: Callable[[], MetadataImage]) -> None:
        self.node_id = node_id
        self.config = config
        self._log = metadata_log
        self._image = image
        self._lock = asyncio.Lock()
        self._last_heartbeat: dict[int, float] = {}
        self._applied_waiters: list[tuple[int, asyncio.Future[None]]] = []
        #: how long an operation waits for a freshly elected leader to apply the committed
        #: metadata before it is refused with NOT_CONTROLLER (_wait_ready)
        self.ready_timeout_s = LEADER_READY_TIMEOUT_S

    # plumbing ----------------------------------------------------------------------------
    def is_active(self) -> bool:
        """This node leads the metadata quorum (requests for the controller come here); it
        acts on them once it is also ready (ready())."""
        return self._log.is_leader()

    def ready(self) -> bool:
        """Active, and the image holds every record committed before this leadership began
        (MetadataLog.leader_ready; a log without that notion, a single voter, always is)."""
        leader_ready = getattr(self._log, "leader_ready", None)
        return self._log.is_leader() if leader_ready is None else leader_ready()

    async def _wait_ready(self) -> None:
        """Wait (at most ready_timeout_s) until ready(): a freshly elected leader may not
        have applied what the previous controller committed last (its high watermark lags
        by about one fetch), and checks against that image could pass wrongly (a topic
        created twice, a producer id block handed out twice, a partition epoch going
        back). Kafka's QuorumController does not claim leadership before it has replayed
        up to the new epoch's start; requests meanwhile get NOT_CONTROLLER. Waiting briefly
        instead keeps the routing as it is (this node is the quorum leader, so brokers and
        forwarding send here); NotControllerError (NOT_CONTROLLER, retried by brokers and
        clients) when it does not happen in time or this node is not the leader."""
        if self.ready():
            return
        deadline = time.monotonic() + self.ready_timeout_s
        while not self.ready():
            if not self._log.is_leader():
                raise NotControllerError("This node is not the active controller")
            if time.monotonic() >= deadline:
                raise NotControllerError(
                    "The controller has not yet applied the committed metadata of the "
                    "previous leader")
            await asyncio.sleep(READY_POLL_S)

    @contextlib.asynccontextmanager
    async def _acting(self) -> AsyncIterator[None]:
        """The controller's lock, taken once its image is complete (_wait_ready), checked
        again under the lock (leadership may have moved while waiting for it)."""
        await self._wait_ready()
        async with self._lock:
            await self._wait_ready()
            yield

    async def _commit(self, records: list[MetadataRecord]) -> None:
        if not records:
            return
        if not self.ready():
            raise NotControllerError("This node is not the active controller")
        offset = await self._log.append([r.encode() for r in records])
        await self.wait_applied(offset)

    async def wait_applied(self, offset: int, timeout: float = 10.0) -> None:
        """Wait until the broker's image includes metadata offset `offset`."""
        if self._image().offset >= offset:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._applied_waiters.append((offset, fut))
        try:
            await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            raise NotControllerError(
                f"metadata offset {offset} not applied within {timeout:.0f}s") from None

    def notify_applied(self) -> None:
        """Called by the broker (on the event loop) after it applied committed records."""
        applied = self._image().offset
        waiting = []
        for offset, fut in self._applied_waiters:
            if fut.done():
                continue
            if offset <= applied:
                fut.set_result(None)
            else:
                waiting.append((offset, fut))
        self._applied_waiters = waiting

    # topics ------------------------------------------------------------------------------
    async def create_topic(self, name: str, num_partitions: int, replication_factor: int,
                           assignments: Assignments | None = None,
                           configs: dict[str, str] | None = None,
                           validate_only: bool = False) -> CreatedTopic:
        """Create a topic as Kafka's CreateTopics does; -1 means the broker default.

        Checked here, under the controller's lock and against its image (which holds every
        topic this controller created before, earlier topics of the same request included),
        in Kafka's order (ReplicationControlManager.createTopics / createTopic): a legal name
        (INVALID_TOPIC_EXCEPTION), no collision with an existing topic after '.'/'_' folding
        (INVALID_TOPIC_EXCEPTION), not existing (TOPIC_ALREADY_EXISTS), the configs
        (INVALID_CONFIG), then a manual assignment (INVALID_REPLICA_ASSIGNMENT). Checking
        here rather than on the broker that received the request means two colliding
        creates in quick succession cannot both pass a lagging broker's image.
        `assignments`: partition -> replicas, or (partition, replicas) pairs as the request
        lists them (a partition listed twice is refused).
        """
        async with self._acting():
            image = self._image()
            validate_topic_name(name)
            _check_collision(image, name)
            if name in image.topics:
                raise TopicAlreadyExistsError(f"Topic '{name}' already exists.")
            configs = dict(configs or {})
            validate_topic_configs(configs)
            pairs = list(assignments.items()) if isinstance(assignments, Mapping) \
                else list(assignments or ())
            if pairs:
                replica_lists = _check_manual_assignment(image, pairs)
            else:
                if num_partitions == -1:
                    num_partitions = self.config["num.partitions"]
                if replication_factor == -1:
                    replication_factor = self.config["default.replication.factor"]
                if num_partitions <= 0:
                    raise InvalidPartitionsError("Number of partitions must be larger than 0.")
                _check_batch_size(num_partitions)
                if replication_factor <= 0:
                    raise InvalidReplicationFactorError(
                        "Replication factor must be larger than 0.")
                live = [b.broker_id for b in image.live_brokers()]
                replica_lists = place_replicas(live, num_partitions, replication_factor)
            min_isr = int(configs.get("min.insync.replicas",
                                      self._effective_config(image)["min.insync.replicas"]))
            rf = len(replica_lists[0])
            if min_isr > rf:
                log.info("topic %s: min.insync.replicas %d > replication factor %d",
                         name, min_isr, rf)
            topic_id = str(uuid.uuid4())
            result = CreatedTopic(name, topic_id, len(replica_lists), rf, configs)
            if validate_only:
                return result
            records: list[MetadataRecord] = [TopicCreated(name, topic_id)]
            records += [ConfigChanged("topic", name, k, v) for k, v in configs.items()]
            for p, replicas in enumerate(replica_lists):
                live_isr = [b for b in replicas if self._is_live(image, b)] or replicas[:1]
                leader = live_isr[0] if self._is_live(image, live_isr[0]) else NO_LEADER
                records.append(PartitionCreated(name, p, replicas, live_isr, leader))
            await self._commit(records)
            log.info("created topic %s: %d partitions, replication factor %d", name,
                     result.num_partitions, result.replication_factor)
            return result

    async def delete_topic(self, name: str) -> str:
        async with self._acting():
            topic = self._image().topics.get(name)
            if topic is None:
                raise UnknownTopicOrPartitionError(
                    "This server does not host this topic-partition.")
            await self._commit([TopicRemoved(name)])
            return topic.topic_id

    async def create_partitions(self, name: str, count: int,
                                assignments: list[list[int]] | None = None,
                                validate_only: bool = False) -> None:
        async with self._acting():
            image = self._image()
            topic = image.topics.get(name)
            if topic is None:
                raise UnknownTopicOrPartitionError(f"The topic '{name}' does not exist.")
            current = len(topic.partitions)
            if count < current:
                raise InvalidPartitionsError(
                    f"Topic currently has {current} partitions, which is higher than the "
                    f"requested {count}.")
            if count == current:
                raise InvalidPartitionsError(f"Topic already has {current} partitions.")
            rf = len(topic.partitions[0].replicas)
            _check_batch_size(count - current)
            if assignments:
                if len(assignments) != count - current:
                    raise InvalidRequestError("Assignment count does not match new partitions.")
                new = assignments
            else:
                live = [b.broker_id for b in image.live_brokers()]
                new = place_replicas(live, count - current, rf, first_partition=current)
            if validate_only:
                return
            records: list[MetadataRecord] = []
            for i, replicas in enumerate(new):
                live_isr = [b for b in replicas if self._is_live(image, b)] or replicas[:1]
                leader = live_isr[0] if self._is_live(image, live_isr[0]) else NO_LEADER
                records.append(PartitionCreated(name, current + i, list(replicas), live_isr,
                                                leader))
            await self._commit(records)

    async def alter_configs(self, resource_type: str, resource_name: str,
                            changes: dict[str, str | None], *, replace_all: bool = False,
                            validate_only: bool = False) -> None:
        """Set (value) or delete (None) configs; `replace_all` is the legacy AlterConfigs."""
        async with self._acting():
            image = self._image()
            if resource_type == "topic":
                topic = image.topics.get(resource_name)
                if topic is None:
                    raise UnknownTopicOrPartitionError(
                        f"The topic '{resource_name}' does not exist.")
                validate_topic_configs({k: v for k, v in changes.items() if v is not None})
                current = dict(topic.configs)
            else:
                current = dict(image.broker_configs.get(resource_name, {}))
            if replace_all:
                changes = {**{k: None for k in current if k not in changes}, **changes}
            if validate_only:
                return
            await self._commit([ConfigChanged(resource_type, resource_name, k, v)
                                for k, v in changes.items()])

    # brokers -----------------------------------------------------------------------------
    async def register_broker(self, broker_id: int, host: str, port: int, rack: str | None,
                              incarnation_id: str) -> int:
        async with self._acting():
            old = self._image().brokers.get(broker_id)
            epoch = (old.epoch + 1) if old else 1
            self._last_heartbeat[broker_id] = time.monotonic()
            await self._commit([RegisterBroker(broker_id, host, port, rack, epoch,
                                               incarnation_id)])
            return epoch

    async def heartbeat(self, broker_id: int, epoch: int, *, want_fence: bool,
                        want_shutdown: bool) -> tuple[bool, bool]:
        """Returns (is_fenced, should_shut_down). epoch -1 with want_fence is the supervisor
        telling us the process died: fence it at once."""
        async with self._acting():
            image = self._image()
            broker = image.brokers.get(broker_id)
            if broker is None:
                raise KafkaError("Broker is not registered", ErrorCode.broker_id_not_registered)
            if epoch != -1 and epoch != broker.epoch:
                raise KafkaError("Stale broker epoch", ErrorCode.stale_broker_epoch)
            if epoch != -1:
                self._last_heartbeat[broker_id] = time.monotonic()
            if want_fence or want_shutdown:
                records = self._move_leadership_away(image, broker_id)
                after = image
                for record in records:
                    after = after.apply(record, after.offset)
                # as KRaft does: a broker whose controlled shutdown is complete is fenced, so
                # the brokers still running stop counting on it at once
                done = want_shutdown and not self._leads_any(after, broker_id)
                if (want_fence or done) and not broker.fenced:
                    records.append(FenceBroker(broker_id, broker.epoch))
                await self._commit(records)
                return True, done
            if broker.fenced:
                records = [UnfenceBroker(broker_id, broker.epoch)]
                after = image.apply(records[0], image.offset)
                records += self._elect_offline(after)
                await self._commit(records)
            return False, False

    async def fence_expired(self, session_timeout_s: float) -> None:
        """Fence brokers whose heartbeats stopped (broker.session.timeout.ms)."""
        if not self.ready():  # the image may lack brokers' latest registrations
            return
        now = time.monotonic()
        for broker in self._image().live_brokers():
            last = self._last_heartbeat.setdefault(broker.broker_id, now)
            if now - last > session_timeout_s and broker.broker_id != self.node_id:
                log.warning("fencing broker %d: no heartbeat for %.1fs", broker.broker_id,
                            now - last)
                try:
                    await self.heartbeat(broker.broker_id, -1, want_fence=True,
                                         want_shutdown=False)
                except KafkaError as exc:
                    log.warning("could not fence broker %d: %s", broker.broker_id, exc)

    def mark_heartbeat(self, broker_id: int) -> None:
        self._last_heartbeat[broker_id] = time.monotonic()

    # partitions --------------------------------------------------------------------------
    async def alter_partitions(self, broker_id: int, broker_epoch: int,
                               proposals: Sequence[IsrProposal],
                               ) -> list[PartitionRegistration | KafkaError]:
        """ISR changes proposed by partition leaders (AlterPartition), as Kafka's
        ReplicationControlManager.alterPartition decides them.

        The sender must be registered at exactly `broker_epoch` (ClusterControlManager
        .checkBrokerEpoch: -1 is no exemption, an unregistered sender is stale too), else
        the whole request fails with STALE_BROKER_EPOCH (raised) and nothing changes. Then
        each partition is decided on its own: its error, or its registration after the
        change. Every member of a proposed ISR must be eligible (KIP-903): registered, not
        fenced (a broker whose controlled shutdown completes is fenced in the same commit)
        and, when the proposal names an epoch for it, registered at that epoch; otherwise
        INELIGIBLE_REPLICA and that partition is left as it is.

        The other refusals, in the order of Kafka's validateAlterPartitionData: a leader or
        partition epoch newer than the controller's -> NOT_CONTROLLER; an older leader epoch
        -> FENCED_LEADER_EPOCH; a sender that is not the leader -> INVALID_REQUEST; an older
        partition epoch -> INVALID_UPDATE_VERSION; an ISR outside the replicas, with
        duplicates or without the leader -> INVALID_REQUEST. A change that completes a
        reassignment and moves the leadership away from the sender is committed and answered
        NEW_LEADER_ELECTED.
        """
        async with self._acting():
            image = self._image()
            self._check_broker_epoch(image, broker_id, broker_epoch)
            after = image
            decided: list[PartitionChanged | KafkaError] = []
            for proposal in proposals:
                try:
                    record = self._isr_change(after, broker_id, proposal)
                except KafkaError as exc:
                    log.info("AlterPartition from broker %d for %s-%d refused: %s (%s)",
                             broker_id, proposal.topic, proposal.partition, exc,
                             exc.code.name)
                    decided.append(exc)
                    continue
                # a later proposal for the same partition sees this one's epoch
                after = after.apply(record, after.offset)
                decided.append(record)
            await self._commit([r for r in decided if isinstance(r, PartitionChanged)])
            now = self._image()
            results: list[PartitionRegistration | KafkaError] = []
            for record in decided:
                if isinstance(record, KafkaError):
                    results.append(record)
                    continue
                if record.replicas is not None:
                    log.info("reassignment of %s-%d complete: replicas %s", record.topic,
                             record.partition, record.replicas)
                if record.leader is not None and record.leader != broker_id:
                    # committed, but the completed reassignment moved the leadership: the
                    # sender must learn the new state from metadata (Kafka: v2+)
                    results.append(KafkaError(
                        f"The ISR change of {record.topic}-{record.partition} completed its "
                        f"reassignment and broker {record.leader} now leads it",
                        ErrorCode.new_leader_elected))
                    continue
                result = now.partition(_tp(record.topic, record.partition))
                assert result is not None
                results.append(result)
            return results

    def _isr_change(self, image: MetadataImage, leader_id: int,
                    proposal: IsrProposal) -> PartitionChanged:
        """The record for one proposed ISR change, or the KafkaError refusing it."""
        topic, partition = proposal.topic, proposal.partition
        new_isr = proposal.isr
        part = image.partition(_tp(topic, partition))
        if part is None:
            raise UnknownTopicOrPartitionError()
        # epochs newer than ours: this node is likely no longer the active controller (its
        # image lags the one the leader saw); NOT_CONTROLLER sends the leader to find it
        if proposal.leader_epoch > part.leader_epoch:
            raise KafkaError(f"Leader epoch {proposal.leader_epoch} is newer than the "
                             f"controller's {part.leader_epoch}", ErrorCode.not_controller)
        if proposal.partition_epoch > part.partition_epoch:
            raise KafkaError(f"Partition epoch {proposal.partition_epoch} is newer than the "
                             f"controller's {part.partition_epoch}", ErrorCode.not_controller)
        if proposal.leader_epoch < part.leader_epoch:
            raise KafkaError(f"Leader epoch {proposal.leader_epoch} is older than the current "
                             f"{part.leader_epoch}", ErrorCode.fenced_leader_epoch)
        if part.leader != leader_id:
            raise KafkaError(f"Broker {leader_id} is not the leader (the leader is "
                             f"{part.leader})", ErrorCode.invalid_request)
        if proposal.partition_epoch < part.partition_epoch:
            raise KafkaError(f"Partition epoch {proposal.partition_epoch} is older than the "
                             f"current {part.partition_epoch}", ErrorCode.invalid_update_version)
        if any(b not in part.replicas for b in new_isr) or len(set(new_isr)) != len(new_isr):
            raise KafkaError(f"Invalid ISR {new_isr} for replicas {list(part.replicas)}",
                             ErrorCode.invalid_request)
        if leader_id not in new_isr:
            raise KafkaError(f"The ISR {new_isr} does not include the leader {leader_id}",
                             ErrorCode.invalid_request)
        ineligible = _ineligible_replicas(image, proposal.new_isr)
        if ineligible:
            raise KafkaError(f"Ineligible replicas {ineligible} in the new ISR {new_isr}",
                             ErrorCode.ineligible_replica)
        # a reassignment completes when its last target replica joins the ISR (KIP-455)
        completion = self._complete_reassignment(image, topic, partition, part, new_isr)
        return completion or PartitionChanged(topic, partition, isr=list(new_isr))

    async def elect_leaders(self, partitions: Iterable[tuple[str, int]], *,
                            unclean: bool = False) -> dict[tuple[str, int], ErrorCode]:
        """Preferred (or unclean) leader election for the given partitions."""
        async with self._acting():
            image = self._image()
            results: dict[tuple[str, int], ErrorCode] = {}
            records: list[MetadataRecord] = []
            for topic, p in partitions:
                part = image.partition(_tp(topic, p))
                if part is None:
                    results[(topic, p)] = ErrorCode.unknown_topic_or_partition
                    continue
                if unclean:
                    if part.leader != NO_LEADER:
                        results[(topic, p)] = ErrorCode.election_not_needed
                        continue
                    live = [b for b in part.replicas if self._is_live(image, b)]
                    if not live:
                        results[(topic, p)] = ErrorCode.eligible_leaders_not_available
                        continue
                    records.append(PartitionChanged(topic, p, leader=live[0], isr=[live[0]]))
                    results[(topic, p)] = ErrorCode.none
                    continue
                preferred = part.replicas[0]
                if part.leader == preferred:
                    results[(topic, p)] = ErrorCode.election_not_needed
                elif preferred in part.isr and self._is_live(image, preferred):
                    records.append(PartitionChanged(topic, p, leader=preferred))
                    results[(topic, p)] = ErrorCode.none
                else:
                    results[(topic, p)] = ErrorCode.preferred_leader_not_available
            await self._commit(records)
            return results

    async def auto_rebalance(self) -> None:
        """auto.leader.rebalance.enable: move leadership back to preferred replicas."""
        if not self.ready():
            return
        image = self._image()
        candidates = [(t.name, p) for t in image.topics.values()
                      for p, part in t.partitions.items()
                      if part.leader != part.replicas[0] and part.replicas[0] in part.isr
                      and self._is_live(image, part.replicas[0])]
        if candidates:
            await self.elect_leaders(candidates)

    # reassignments (KIP-455) -----------------------------------------------------------
    async def alter_reassignments(
            self, items: Iterable[tuple[str, int, list[int] | None]],
    ) -> dict[tuple[str, int], KafkaError | None]:
        """Start (target replicas), replace, or cancel (None) partition reassignments.

        Target replicas not yet hosting the partition are added (adding_replicas) and catch up
        as followers; when every target replica is in the ISR the controller drops the
        removed ones, moving leadership into the target set if needed. Returns per-partition
        None or the error (UNKNOWN_TOPIC_OR_PARTITION, INVALID_REPLICA_ASSIGNMENT,
        NO_REASSIGNMENT_IN_PROGRESS).
        """
        async with self._acting():
            image = self._image()
            results: dict[tuple[str, int], KafkaError | None] = {}
            records: list[MetadataRecord] = []
            for topic, p, target in items:
                try:
                    record = self._reassignment_change(image, topic, p, target)
                except KafkaError as exc:
                    results[(topic, p)] = exc
                    continue
                results[(topic, p)] = None
                if record is not None:
                    records.append(record)
            _check_batch_size(len(records))
            await self._commit(records)
            for record in records:
                assert isinstance(record, PartitionChanged)
                log.info("reassignment of %s-%d: replicas %s, adding %s, removing %s",
                         record.topic, record.partition, record.replicas,
                         record.adding_replicas, record.removing_replicas)
            return results

    def ongoing_reassignments(self, partitions: Iterable[tuple[str, int]] | None = None,
                              ) -> dict[tuple[str, int], PartitionRegistration]:
        """Partitions with a reassignment in progress (all, or among those given)."""
        image = self._image()
        if partitions is None:
            wanted = [(t.name, p) for t in image.topics.values() for p in t.partitions]
        else:
            wanted = list(partitions)
        out: dict[tuple[str, int], PartitionRegistration] = {}
        for topic, p in wanted:
            part = image.partition(_tp(topic, p))
            if part is not None and part.is_reassigning:
                out[(topic, p)] = part
        return out

    def _reassignment_change(self, image: MetadataImage, topic: str, p: int,
                             target: list[int] | None) -> PartitionChanged | None:
        part = image.partition(_tp(topic, p))
        if part is None:
            raise UnknownTopicOrPartitionError(
                f"The partition {topic}-{p} does not exist.")
        if target is None:
            if not part.is_reassigning:
                raise KafkaError(f"No reassignment is in progress for {topic}-{p}.",
                                 ErrorCode.no_reassignment_in_progress)
            return self._revert_reassignment(image, topic, p, part)
        target = [int(b) for b in target]
        if not target or len(set(target)) != len(target):
            raise KafkaError("The manual partition assignment includes an empty replica "
                             "list or duplicate replicas.", ErrorCode.invalid_replica_assignment)
        for b in target:
            if b not in image.brokers:
                raise KafkaError(f"The manual partition assignment includes broker {b}, but "
                                 "no such broker is registered.",
                                 ErrorCode.invalid_replica_assignment)
            if image.brokers[b].fenced:
                raise KafkaError(f"The manual partition assignment includes broker {b}, "
                                 "which is fenced (not running).",
                                 ErrorCode.invalid_replica_assignment)
        if target == list(part.replicas) and not part.is_reassigning:
            return None
        original = list(part.original_replicas)
        adding = [b for b in target if b not in original]
        removing = [b for b in original if b not in target]
        isr = [b for b in part.isr if b in target or b in original]
        done = self._completion(image, topic, p, part, target, isr)
        if done is not None:
            return done
        replicas = target + removing
        leader = self._leader_within(image, part.leader, replicas, isr)
        return PartitionChanged(topic, p, replicas=replicas,
                                isr=isr if isr != list(part.isr) else None, leader=leader,
                                adding_replicas=adding, removing_replicas=removing)

    def _complete_reassignment(self, image: MetadataImage, topic: str, p: int,
                               part: PartitionRegistration,
                               new_isr: list[int]) -> PartitionChanged | None:
        if not part.is_reassigning:
            return None
        return self._completion(image, topic, p, part, list(part.target_replicas), new_isr)

    def _completion(self, image: MetadataImage, topic: str, p: int,
                    part: PartitionRegistration, target: list[int],
                    isr: list[int]) -> PartitionChanged | None:
        """The record finishing a reassignment to `target`, or None while a target replica
        is still out of the ISR (or no target replica can lead)."""
        if any(b not in isr for b in target):
            return None
        new_isr = [b for b in target if b in isr]
        leader = self._leader_within(image, part.leader, target, new_isr)
        if leader == NO_LEADER:
            return None
        return PartitionChanged(topic, p, replicas=target, isr=new_isr, leader=leader,
                                adding_replicas=[], removing_replicas=[])

    def _revert_reassignment(self, image: MetadataImage, topic: str, p: int,
                             part: PartitionRegistration) -> PartitionChanged:
        original = list(part.original_replicas)
        isr = [b for b in part.isr if b in original]
        if not isr:
            raise KafkaError(f"Cannot cancel the reassignment of {topic}-{p}: no original "
                             "replica is in sync.", ErrorCode.invalid_replica_assignment)
        leader = self._leader_within(image, part.leader, original, isr)
        return PartitionChanged(topic, p, replicas=original, isr=isr, leader=leader,
                                adding_replicas=[], removing_replicas=[])

    def _leader_within(self, image: MetadataImage, current: int, allowed: list[int],
                       isr: list[int]) -> int | None:
        """None when `current` may stay leader; otherwise the first live in-sync replica of
        `allowed` (NO_LEADER when there is none)."""
        if current in allowed and current in isr:
            return None
        candidates = [b for b in allowed if b in isr and self._is_live(image, b)]
        return candidates[0] if candidates else NO_LEADER

    @staticmethod
    def _check_broker_epoch(image: MetadataImage, broker_id: int, broker_epoch: int) -> None:
        """Kafka's ClusterControlManager.checkBrokerEpoch: the sender must be registered, at
        exactly ``broker_epoch`` (-1 included: no exception), else STALE_BROKER_EPOCH."""
        registration = image.brokers.get(broker_id)
        if registration is None:
            raise KafkaError(f"No broker registration found for broker id {broker_id}",
                             ErrorCode.stale_broker_epoch)
        if registration.epoch != broker_epoch:
            raise KafkaError(f"Expected broker epoch {registration.epoch}, but got broker "
                             f"epoch {broker_epoch}", ErrorCode.stale_broker_epoch)

    async def allocate_producer_ids(self, broker_id: int, broker_epoch: int) -> tuple[int, int]:
        """The next block of producer ids for a broker at its registered epoch (Kafka's
        ProducerIdControlManager checks the epoch first: STALE_BROKER_EPOCH otherwise)."""
        async with self._acting():
            self._check_broker_epoch(self._image(), broker_id, broker_epoch)
            start = self._image().next_producer_id
            await self._commit([ProducerIdsAllocated(broker_id, start + PRODUCER_ID_BLOCK)])
            return start, PRODUCER_ID_BLOCK

    # election helpers --------------------------------------------------------------------
    @staticmethod
    def _is_live(image: MetadataImage, broker_id: int) -> bool:
        broker = image.brokers.get(broker_id)
        return broker is not None and not broker.fenced

    @staticmethod
    def _leads_any(image: MetadataImage, broker_id: int) -> bool:
        return any(part.leader == broker_id for t in image.topics.values()
                   for part in t.partitions.values() if len(part.replicas) > 1)

    def _move_leadership_away(self, image: MetadataImage,
                              broker_id: int) -> list[MetadataRecord]:
        """Records that take `broker_id` out of every ISR and re-elect where it led."""
        records: list[MetadataRecord] = []
        for topic in image.topics.values():
            for p, part in topic.partitions.items():
                if broker_id not in part.isr and part.leader != broker_id:
                    continue
                isr = [b for b in part.isr if b != broker_id]
                if part.leader != broker_id:
                    if isr:
                        records.append(PartitionChanged(topic.name, p, isr=isr))
                    continue
                candidates = [b for b in part.replicas if b in isr and self._is_live(image, b)]
                if candidates:
                    records.append(PartitionChanged(topic.name, p, isr=isr,
                                                    leader=candidates[0]))
                else:  # no eligible leader: keep the last ISR member recorded, go offline
                    records.append(PartitionChanged(topic.name, p, leader=NO_LEADER))
        return records

    def _effective_config(self, image: MetadataImage) -> BrokerConfig:
        """This node's config with the dynamic broker configs of the image laid over it
        (cluster default "", then this node's own), as the brokers resolve theirs."""
        return self.config.resolve(image.broker_configs.get("", {}),
                                   image.broker_configs.get(str(self.node_id), {}))

    def _elect_offline(self, image: MetadataImage) -> list[MetadataRecord]:
        """Elect leaders for leaderless partitions whose ISR has a live broker."""
        records: list[MetadataRecord] = []
        unclean_default: bool | None = None  # resolved when first needed: rarely
        for topic in image.topics.values():
            for p, part in topic.partitions.items():
                if part.leader != NO_LEADER:
                    continue
                live_isr = [b for b in part.replicas if b in part.isr
                            and self._is_live(image, b)]
                if live_isr:
                    records.append(PartitionChanged(topic.name, p, leader=live_isr[0]))
                    continue
                unclean = topic.configs.get("unclean.leader.election.enable")
                if unclean is None and unclean_default is None:
                    unclean_default = bool(
                        self._effective_config(image)["unclean.leader.election.enable"])
                if (unclean == "true") if unclean is not None else unclean_default:
                    live = [b for b in part.replicas if self._is_live(image, b)]
                    if live:
                        records.append(PartitionChanged(topic.name, p, leader=live[0],
                                                        isr=[live[0]]))
        return records


def isr_ineligibility(image: MetadataImage, broker_id: int, epoch: int) -> str | None:
    """Why `broker_id`, known at broker epoch `epoch`, may not be in an ISR (None: it may):
    not registered, fenced, or registered at another epoch (NO_BROKER_EPOCH: not compared).
    The controller's rule (Kafka's ineligibleReplicasForIsr); a leader checks the same before
    it proposes an expansion (isReplicaIsrEligible / isBrokerEpochIsrEligible)."""
    registration = image.brokers.get(broker_id)
    if registration is None:
        return "not registered"
    if registration.fenced:
        return "fenced"
    if epoch != NO_BROKER_EPOCH and epoch != registration.epoch:
        return f"broker epoch {epoch}, registered {registration.epoch}"
    return None


def _ineligible_replicas(image: MetadataImage,
                         new_isr: Iterable[tuple[int, int]]) -> list[str]:
    """Members of a proposed ISR the controller refuses, each with the reason."""
    reasons = ((broker_id, isr_ineligibility(image, broker_id, epoch))
               for broker_id, epoch in new_isr)
    return [f"{broker_id} ({why})" for broker_id, why in reasons if why is not None]


def _check_collision(image: MetadataImage, name: str) -> None:
    """Kafka's ReplicationControlManager.validateNewTopicNames: a new name that differs from
    an existing topic's only by '.' versus '_' is INVALID_TOPIC_EXCEPTION (their metric
    names would collide)."""
    if name in image.topics:
        return
    other = colliding_topic(name, image.topics)
    if other is not None:
        raise InvalidTopicError(f"Topic '{name}' collides with existing topic: {other}")


def _check_manual_assignment(image: MetadataImage,
                             assignments: Sequence[tuple[int, Sequence[int]]]) -> list[list[int]]:
    """Kafka's checks of a manual assignment (ReplicationControlManager.createTopic and
    validateManualPartitionAssignment), in its order, all INVALID_REPLICA_ASSIGNMENT; the
    replica lists in partition order."""
    def invalid(message: str) -> KafkaError:
        return KafkaError(message, ErrorCode.invalid_replica_assignment)

    by_partition: dict[int, list[int]] = {}
    rf: int | None = None
    for partition, replicas in assignments:
        if partition in by_partition:
            raise invalid(f"Found multiple manual partition assignments for partition "
                          f"{partition}")
        if not replicas:
            raise invalid("The manual partition assignment includes an empty replica list.")
        previous = None
        for broker_id in sorted(replicas):
            if broker_id not in image.brokers:
                raise invalid(f"The manual partition assignment includes broker {broker_id}, "
                              "but no such broker is registered.")
            if broker_id == previous:
                raise invalid(f"The manual partition assignment includes the broker "
                              f"{broker_id} more than once.")
            previous = broker_id
        if rf is not None and len(replicas) != rf:
            raise invalid(f"The manual partition assignment includes a partition with "
                          f"{len(replicas)} replica(s), but this is not consistent with "
                          f"previous partitions, which have {rf} replica(s).")
        rf = len(replicas)
        by_partition[partition] = list(replicas)
    if set(by_partition) != set(range(len(by_partition))):
        raise invalid("partitions should be a consecutive 0-based integer sequence")
    return [by_partition[p] for p in range(len(by_partition))]


def _check_batch_size(partitions: int) -> None:
    if partitions > MAX_RECORDS_PER_OPERATION:
        raise PolicyViolationError("Unable to perform excessively large batch operation.")


def _tp(topic: str, partition: int):  # small local alias, keeps call sites short
    from core.common.types import TopicPartition
    return TopicPartition(topic, partition)
