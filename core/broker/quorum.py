"""How a broker talks to the active controller: registration, heartbeats, ISR proposals,
forwarding of admin requests and producer-id blocks.

On a single-voter cluster these are local calls; otherwise they travel as Kafka requests
(BrokerRegistration, BrokerHeartbeat, AlterPartition, CreateTopics, AllocateProducerIds) to the
current quorum leader, found through the metadata log.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from kio.schema.errors import ErrorCode

from core.broker.peer_watch import PeerWatch
from core.common.errors import KafkaError, NotControllerError
from core.metadata.controller import NO_BROKER_EPOCH, IsrProposal, isr_ineligibility
from core.network.client import KafkaConnection
from core.protocol.build import build
from core.protocol.codec import request_class, response_class

log = logging.getLogger(__name__)

CONTROLLER_TIMEOUT_S = 10.0
ISR_RETRY_BACKOFF_MS = 2000.0
#: AlterPartition refusals that say this leader's view of the partition is out of date (or,
#: NEW_LEADER_ELECTED, that the change was made and moved the leadership): the change is given
#: up until new metadata for the partition arrives (Kafka's Partition
#: .handleAlterPartitionError: "awaiting the latest metadata"), at most ISR_METADATA_WAIT_MS
AWAIT_METADATA_ERRORS = frozenset({
    ErrorCode.unknown_topic_or_partition, ErrorCode.unknown_topic_id,
    ErrorCode.fenced_leader_epoch, ErrorCode.invalid_update_version,
    ErrorCode.invalid_request, ErrorCode.new_leader_elected})
ISR_METADATA_WAIT_MS = 10000.0


# --- the metadata quorum -------------------------------------------------------------------
def start_raft_metadata(broker: Any) -> Any:
    """The metadata log of a multi-voter cluster: a Raft quorum over the Kafka protocol."""
    from core.broker.raft_io import RaftMetadataLog
    config = broker.config
    metadata_log = RaftMetadataLog(
        broker.node_id, broker.voters, broker.data_dir / "metadata-quorum",
        broker.cluster_id,
        election_timeout_ms=config["controller.quorum.election.timeout.ms"],
        fetch_timeout_ms=config["controller.quorum.fetch.timeout.ms"],
        election_backoff_max_ms=config["controller.quorum.election.backoff.max.ms"],
        snapshot_max_bytes=broker.config["metadata.log.max.record.bytes.between.snapshots"],
        image=lambda: broker.image)
    metadata_log.start()
    return metadata_log


# --- the controller connection -------------------------------------------------------------
#: how often a request waiting on the controller looks whether the quorum has another leader
LEADER_WATCH_S = 0.05
#: the pause before asking again after a failed attempt (no answer, NOT_CONTROLLER)
RESEND_BACKOFF_S = 0.1


class ControllerMoved(Exception):
    """The broker learnt of another active controller while waiting on the previous one."""

    def __init__(self, old: int, new: int) -> None:
        super().__init__(f"the active controller moved from {old} to {new}")
        self.old, self.new = old, new


def _known_leader(broker: Any) -> int | None:
    leader = broker.metadata_log.leader_id()
    return leader if leader is not None and leader >= 0 else None


async def _unless_moved(broker: Any, controller: int, awaitable: Any) -> Any:
    """Await `awaitable` (I/O with controller `controller`), but as soon as this broker's view
    of the quorum names another leader, cancel it and raise ControllerMoved (as Kafka's
    NodeToControllerChannelManager re-sends pending requests to the new active controller).
    The connection to the old controller is closed: every other request still waiting on it
    fails at once and is re-sent too. An unknown leader (an election under way) does not
    count as a move."""
    task = asyncio.ensure_future(awaitable)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=LEADER_WATCH_S)
            if done:
                return task.result()
            leader = _known_leader(broker)
            if leader is not None and leader != controller:
                task.cancel()
                _drop_connection(broker, controller)
                raise ControllerMoved(controller, leader)
    finally:
        if not task.done():
            task.cancel()


def _drop_connection(broker: Any, controller: int) -> None:
    """Close (and forget) the connection to a controller that is no longer the active one."""
    stale = broker.controller_conns.pop(controller, None)
    if stale is not None:
        stale.close_nowait()


async def _controller_conn(broker: Any, timeout: float) -> tuple[int, KafkaConnection]:
    """The current active controller's id and a connection to it, waiting (bounded) for one
    to exist; NotControllerError when none is reachable in time."""
    deadline = time.monotonic() + timeout
    while True:
        leader = _known_leader(broker)
        address = broker.voters.get(leader) if leader is not None else None
        if leader is not None and address is not None:
            cached = broker.controller_conns.get(leader)
            if cached is not None and not cached.closed:
                return leader, cached
            try:
                conn = await _unless_moved(broker, leader, KafkaConnection.connect(
                    address[0], address[1], client_id=f"broker-{broker.node_id}",
                    timeout=max(0.1, min(2.0, deadline - time.monotonic()))))
                cached = broker.controller_conns.get(leader)
                if cached is not None and not cached.closed:
                    # another request connected while this one did (all re-send at once
                    # after a move): share its connection, do not leak this one
                    conn.close_nowait()
                    return leader, cached
                broker.controller_conns[leader] = conn
                return leader, conn
            except (KafkaError, ControllerMoved):
                pass
        if time.monotonic() >= deadline:
            raise NotControllerError("No active controller is reachable")
        await asyncio.sleep(RESEND_BACKOFF_S)


async def controller_connection(broker: Any, timeout: float = CONTROLLER_TIMEOUT_S
                                ) -> KafkaConnection:
    """A connection to the current active controller, waiting (bounded) for one to exist."""
    return (await _controller_conn(broker, timeout))[1]


def error_codes(entity: Any, depth: int = 3) -> set[int]:
    """Every `error_code` in a response entity: top level and in its (nested) lists of
    entities, `depth` levels down (per topic, per resource, per partition)."""
    codes: set[int] = set()
    if not dataclasses.is_dataclass(entity):
        return codes
    for f in dataclasses.fields(entity):
        value = getattr(entity, f.name)
        if f.name == "error_code":
            codes.add(int(value))
        elif depth > 0 and isinstance(value, tuple | list):
            for item in value:
                codes |= error_codes(item, depth - 1)
        elif depth > 0 and dataclasses.is_dataclass(value):
            codes |= error_codes(value, depth - 1)
    return codes


#: what says "I am not (any more) the active controller" in a forwarded request's answer: the
#: controller answers NOT_CONTROLLER where the API has its errors (top level for
#: ListPartitionReassignments; per topic for CreateTopics, DeleteTopics, CreatePartitions; per
#: resource for AlterConfigs, IncrementalAlterConfigs; top level or per partition for
#: ElectLeaders, AlterPartitionReassignments); a voter that is no longer the Raft leader
#: answers DescribeQuorum with NOT_LEADER_OR_FOLLOWER (top level and per partition)
_MOVED_CODES: dict[int, frozenset[int]] = {55: frozenset({ErrorCode.not_leader_or_follower,
                                                          ErrorCode.not_controller})}
_NOT_CONTROLLER = frozenset({ErrorCode.not_controller})


def says_not_controller(api_key: int, response: Any) -> bool:
    """True when a forwarded request's answer says the controller moved (anywhere in it)."""
    return bool(error_codes(response) & _MOVED_CODES.get(api_key, _NOT_CONTROLLER))


def request_timeout_s(request: Any) -> float:
    """How long a forwarded request may take: the request's own `timeout` field where it has
    one (CreateTopics, DeleteTopics, CreatePartitions, ElectLeaders, the reassignments),
    else (or when it is 0 or less) CONTROLLER_TIMEOUT_S."""
    timeout = getattr(request, "timeout", None)
    if timeout is None:
        return CONTROLLER_TIMEOUT_S
    seconds = timeout.total_seconds() if hasattr(timeout, "total_seconds") else timeout / 1000
    return float(seconds) if seconds > 0 else CONTROLLER_TIMEOUT_S


async def send_to_controller(broker: Any, request: Any, version: int, timeout: float, *,
                             moved: Callable[[Any], bool]) -> Any:
    """Send `request` to the active controller and return its answer, re-sending it to the
    new controller whenever leadership moves before an answer came: no answer and the quorum
    names another leader (the wait on the old one is cancelled at once), the connection
    fails, or the answer says `moved(response)` (NOT_CONTROLLER). Bounded by `timeout`
    seconds: then the last NOT_CONTROLLER answer is returned if there was one, else
    NotControllerError is raised."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    last_answer: Any = None
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            leader, conn = await _controller_conn(broker, remaining)
        except NotControllerError as exc:
            last_error = exc
            break
        try:
            response = await _unless_moved(broker, leader, conn.send(
                request, version=version, timeout=max(0.1, deadline - time.monotonic())))
        except ControllerMoved as exc:
            log.info("%s: re-sending %s to the new controller",
                     exc, type(request).__name__)
            last_error = exc
            continue
        except KafkaError as exc:
            last_error = exc
            await asyncio.sleep(RESEND_BACKOFF_S)
            continue
        if not moved(response):
            return response
        log.info("controller %d answered %s with NOT_CONTROLLER: re-sending",
                 leader, type(request).__name__)
        # as Kafka's NodeToControllerRequestThread: disconnect from the stale controller
        if broker.controller_conns.get(leader) is conn:
            _drop_connection(broker, leader)
        last_answer = response
        await asyncio.sleep(RESEND_BACKOFF_S)
    if last_answer is not None:
        return last_answer
    raise NotControllerError(f"{type(request).__name__} got no answer from the controller "
                             f"within {timeout:g}s: {last_error}")


async def _to_controller(broker: Any, api_key: int, version: int, **fields: Any) -> Any:
    """Send a request to the controller, retrying while leadership moves."""
    response = await send_to_controller(
        broker, build(request_class(api_key, version), **fields), version,
        CONTROLLER_TIMEOUT_S,
        moved=lambda r: getattr(r, "error_code", 0) == ErrorCode.not_controller)
    if getattr(response, "error_code", 0) == ErrorCode.not_controller:
        raise NotControllerError(f"controller request {api_key} failed: controller moved")
    return response


# --- registration and heartbeats -----------------------------------------------------------
async def register_with_controller(broker: Any, ready_timeout_s: float = 30.0) -> None:
    """Start the heartbeat loop and wait until the controller has unfenced this broker."""
    broker.controller_conns = getattr(broker, "controller_conns", {})
    broker.unfenced = asyncio.Event()
    broker._tasks.append(asyncio.get_running_loop().create_task(_lifecycle_loop(broker)))
    broker._tasks.append(asyncio.get_running_loop().create_task(_controller_duties(broker)))
    broker.peer_watch = PeerWatch(broker.node_id, lambda: broker.image.brokers)
    broker._tasks.append(asyncio.get_running_loop().create_task(broker.peer_watch.run()))
    try:
        await asyncio.wait_for(broker.unfenced.wait(), ready_timeout_s)
    except TimeoutError:
        log.warning("broker %d not unfenced after %.0fs; serving anyway", broker.node_id,
                    ready_timeout_s)


async def _register(broker: Any) -> int:
    response = await _to_controller(
        broker, 62, 0, broker_id=broker.node_id, cluster_id=broker.cluster_id,
        incarnation_id=broker.incarnation_id,
        listeners=[dict(name="PLAINTEXT", host=broker.advertised_host,
                        port=broker.advertised_port, security_protocol=0)],
        features=[], rack=None)
    if response.error_code:
        raise KafkaError(f"registration refused: {ErrorCode(response.error_code).name}",
                         response.error_code)
    log.info("broker %d registered with epoch %d", broker.node_id, response.broker_epoch)
    return int(response.broker_epoch)


async def heartbeat(broker: Any, *, want_shutdown: bool = False) -> Any:
    return await _to_controller(
        broker, 63, 0, broker_id=broker.node_id, broker_epoch=broker.broker_epoch,
        current_metadata_offset=broker.image.offset, want_fence=False,
        want_shut_down=want_shutdown)


async def _lifecycle_loop(broker: Any) -> None:
    interval = broker.config["broker.heartbeat.interval.ms"] / 1000.0
    broker.broker_epoch = -1
    while True:
        try:
            if broker.broker_epoch < 0:
                broker.broker_epoch = await _register(broker)
            response = await heartbeat(broker, want_shutdown=broker.shutting_down)
            if response.error_code in (ErrorCode.stale_broker_epoch,
                                       ErrorCode.broker_id_not_registered):
                broker.broker_epoch = -1
                continue
            if response.error_code == 0 and not response.is_fenced:
                broker.unfenced.set()
            fast = not broker.unfenced.is_set() or broker.shutting_down
            await asyncio.sleep(0.1 if fast else interval)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.debug("heartbeat failed: %r", exc)
            await asyncio.sleep(0.2)


async def _controller_duties(broker: Any) -> None:
    """While this node is the active controller: fence silent brokers, rebalance leaders."""
    session_s = broker.config["broker.session.timeout.ms"] / 1000.0
    rebalance_every = float(broker.config.raw.get("leader.imbalance.check.interval.seconds",
                                                  "300"))
    last_rebalance = time.monotonic()
    while True:
        await asyncio.sleep(0.5)
        controller = broker.controller
        if controller is None or not controller.is_active():
            continue
        try:
            await controller.fence_expired(session_s)
            now = time.monotonic()
            if broker.config["auto.leader.rebalance.enable"] and \
                    now - last_rebalance >= rebalance_every:
                last_rebalance = now
                await controller.auto_rebalance()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("controller duty failed")


async def controlled_shutdown(broker: Any) -> None:
    """SIGTERM: ask the controller to move our leaderships away, wait until it says go."""
    broker.shutting_down = True
    others = [b for b in broker.image.live_brokers() if b.broker_id != broker.node_id]
    if not others:  # the last broker standing: there is no one to hand leadership to
        log.info("controlled shutdown: no other live broker, nothing to move")
        return
    deadline = time.monotonic() + 8.0
    while time.monotonic() < deadline:
        try:
            response = await heartbeat(broker, want_shutdown=True)
            if response.error_code == 0 and response.should_shut_down:
                log.info("controlled shutdown: leadership moved away")
                return
        except KafkaError as exc:
            log.debug("controlled shutdown heartbeat failed: %s", exc)
        await asyncio.sleep(0.1)
    log.warning("controlled shutdown timed out; stopping anyway")


# --- requests on behalf of handlers --------------------------------------------------------
async def forward(broker: Any, ctx: Any, request: Any) -> Any:
    """Forward an admin request unchanged to the active controller (as KIP-590 forwarding).

    As Kafka's ForwardingManager over its NodeToControllerChannelManager, the request follows
    the active controller until answered: it is re-sent to the new controller as soon as this
    broker's quorum view names one (the wait on the old one is cancelled), and when the
    answer says NOT_CONTROLLER anywhere (that controller just lost leadership), within the
    request's own timeout (its `timeout` field, else CONTROLLER_TIMEOUT_S). A client sees
    NOT_CONTROLLER only if no controller answered otherwise in that time.

    Re-sending is not idempotent and, as in Kafka, is done anyway: a CreateTopics (or
    CreatePartitions, DeleteTopics) the old controller committed just before it stopped
    answering is applied again by the new one, and the client may get TOPIC_ALREADY_EXISTS
    (INVALID_PARTITIONS, UNKNOWN_TOPIC_OR_PARTITION) for a change that was in fact made.
    Kafka's admin clients live with the same ambiguity for retried requests.
    """
    api_key = int(type(request).__api_key__)
    try:
        return await send_to_controller(broker, request, ctx.version,
                                        request_timeout_s(request),
                                        moved=lambda r: says_not_controller(api_key, r))
    except NotControllerError as exc:
        answer = not_controller_response(request, ctx.version, str(exc))
        if answer is None:
            raise
        log.warning("%s", exc)
        return answer


def not_controller_response(request: Any, version: int, message: str) -> Any | None:
    """The answer to a forwarded admin request no controller answered in time: NOT_CONTROLLER
    in each of its error fields, as Kafka's AbstractRequest.getErrorResponse fills them (a
    retriable error: clients look the controller up again and re-send). None for the APIs
    whose handler answers itself then (DescribeQuorum: this voter's own view)."""
    key = int(type(request).__api_key__)
    code = ErrorCode.not_controller
    err = dict(error_code=code, error_message=message)
    cls = response_class(key, version)
    if key == 19:
        return build(cls, throttle_time=0, topics=[dict(
            name=t.name, num_partitions=-1, replication_factor=-1, configs=[], **err)
            for t in request.topics])
    if key == 20:
        return build(cls, throttle_time=0, responses=[dict(name=n, **err)
                                                       for n in request.topic_names])
    if key == 37:
        return build(cls, throttle_time=0, results=[dict(name=t.name, **err)
                                                     for t in request.topics])
    if key in (33, 44):
        return build(cls, throttle_time=0, responses=[dict(
            resource_type=r.resource_type, resource_name=r.resource_name, **err)
            for r in request.resources])
    if key == 43:
        return build(cls, throttle_time=0, error_code=code, replica_election_results=[dict(
            topic=t.topic, partition_result=[dict(partition_id=p, **err)
                                             for p in t.partitions])
            for t in request.topic_partitions or ()])
    if key == 45:
        return build(cls, throttle_time=0, responses=[dict(
            name=t.name, partitions=[dict(partition_index=p.partition_index, **err)
                                     for p in t.partitions])
            for t in request.topics], **err)
    if key == 46:
        return build(cls, throttle_time=0, topics=[], **err)
    return None


async def create_topic_via_controller(broker: Any, name: str, partitions: int, rf: int,
                                      configs: dict[str, str]) -> None:
    response = await _to_controller(
        broker, 19, 5, topics=[dict(name=name, num_partitions=partitions,
                                    replication_factor=rf, assignments=[],
                                    configs=[dict(name=k, value=v)
                                             for k, v in configs.items()])],
        timeout=30000, validate_only=False)
    result = response.topics[0]
    if result.error_code:
        raise KafkaError(result.error_message or ErrorCode(result.error_code).name,
                         result.error_code)
    await _wait_for_topic(broker, name)


async def _wait_for_topic(broker: Any, name: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while name not in broker.image.topics and time.monotonic() < deadline:
        await asyncio.sleep(0.02)


async def allocate_producer_ids(broker: Any) -> tuple[int, int]:
    response = await _to_controller(broker, 67, 0, broker_id=broker.node_id,
                                    broker_epoch=broker.broker_epoch)
    if response.error_code:
        raise KafkaError("producer id allocation failed", response.error_code)
    return int(response.producer_id_start), int(response.producer_id_len)


def isr_with_epochs(image: Any, isr: list[int]) -> list[tuple[int, int]]:
    """Each ISR member with its broker epoch in this broker's metadata image (-1 when the
    image has no registration for it), for AlterPartition v3's NewIsrWithEpochs (KIP-903)."""
    return [(b, image.brokers[b].epoch if b in image.brokers else NO_BROKER_EPOCH)
            for b in isr]


def eligible_isr(image: Any, current: Any, proposed: list[int],
                 fetched_epoch: Callable[[int], int] | None = None) -> list[int]:
    """`proposed` without the members it would add that the controller would refuse as
    ineligible: not registered or fenced in our image (Kafka's leader checks this too, in
    Partition.isReplicaIsrEligible, before it proposes an expansion), or (KIP-903) whose
    fetch progress `fetched_epoch(b)` was made by another incarnation than the one our image
    has registered (-1: not known, not checked; Kafka's isBrokerEpochIsrEligible)."""
    def eligible(b: int) -> bool:
        epoch = fetched_epoch(b) if fetched_epoch is not None else NO_BROKER_EPOCH
        return isr_ineligibility(image, b, epoch) is None
    return [b for b in proposed if b in current or eligible(b)]


def _stale_epoch_hold(broker: Any) -> bool:
    """True while our broker epoch is one the controller called stale (STALE_BROKER_EPOCH):
    until the lifecycle loop re-registers (a new epoch) or the hold expires, proposing again
    could only be refused the same way."""
    held = getattr(broker, "isr_stale_epoch", None)
    if held is None:
        return False
    epoch, until = held
    if epoch == broker.broker_epoch and time.monotonic() < until:
        return True
    broker.isr_stale_epoch = None
    return False


async def propose_isr(broker: Any, partition: Any, new_isr: list[int]) -> None:
    """Ask the controller to change a led partition's ISR (AlterPartition v3).

    The request carries our registered broker epoch and each proposed member's epoch from our
    metadata image. A refusal leaves the partition as it is; nothing raises, nothing spins:

    * STALE_BROKER_EPOCH holds every proposal until our epoch changes (re-registration) or
      ISR_RETRY_BACKOFF_MS passes, as Kafka's AlterPartitionManager retries with its current
      broker epoch;
    * AWAIT_METADATA_ERRORS (FENCED_LEADER_EPOCH, INVALID_UPDATE_VERSION, INVALID_REQUEST,
      NEW_LEADER_ELECTED, unknown partition): the change is given up until the partition's
      registration changes in our image (Partition.update_registration clears the wait), at
      most ISR_METADATA_WAIT_MS;
    * anything else (INELIGIBLE_REPLICA, NOT_CONTROLLER, no controller reachable): proposed
      again, recomputed from the metadata of that moment, after ISR_RETRY_BACKOFF_MS.
    """
    reg = partition.registration
    image = broker.image
    new_isr = eligible_isr(image, reg.isr, new_isr,
                           getattr(partition, "follower_broker_epoch", None))
    if sorted(new_isr) == sorted(reg.isr):
        return
    epoch = broker.broker_epoch
    if epoch < 0 or _stale_epoch_hold(broker):  # not registered (yet): nothing to send
        return
    members = isr_with_epochs(image, new_isr)
    shrink = len(new_isr) < len(reg.isr)
    partition.isr_change_pending = True
    try:
        if broker.is_controller():
            proposal = IsrProposal(partition.tp.topic, partition.tp.partition,
                                   reg.leader_epoch, reg.partition_epoch, tuple(members))
            [result] = await broker.controller.alter_partitions(broker.node_id, epoch,
                                                                [proposal])
            if isinstance(result, KafkaError):
                raise result
        else:
            topic = image.topics.get(partition.tp.topic)
            if topic is None:
                raise KafkaError("topic deleted", ErrorCode.unknown_topic_or_partition)
            response = await _to_controller(
                broker, 56, 3, broker_id=broker.node_id, broker_epoch=epoch,
                topics=[dict(topic_id=uuid.UUID(topic.topic_id), partitions=[dict(
                    partition_index=partition.tp.partition, leader_epoch=reg.leader_epoch,
                    new_isr_with_epochs=[dict(broker_id=b, broker_epoch=e)
                                         for b, e in members],
                    leader_recovery_state=0, partition_epoch=reg.partition_epoch)])])
            code = response.error_code or response.topics[0].partitions[0].error_code
            if code:
                raise KafkaError("AlterPartition refused", code)
    except KafkaError as exc:
        partition.isr_change_pending = False
        now = time.monotonic()
        partition.isr_retry_at_ms = now * 1000 + ISR_RETRY_BACKOFF_MS
        if exc.code == ErrorCode.stale_broker_epoch:
            broker.isr_stale_epoch = (epoch, now + ISR_RETRY_BACKOFF_MS / 1000)
            log.warning("ISR change for %s refused: our broker epoch %d is stale; holding ISR "
                        "changes until we re-register", partition.tp, epoch)
            return
        if exc.code in AWAIT_METADATA_ERRORS:
            # the metadata to wait for may have come while the request was in flight
            arrived = partition.registration.partition_epoch != reg.partition_epoch
            partition.isr_retry_at_ms = 0.0 if arrived else now * 1000 + ISR_METADATA_WAIT_MS
            log.info("ISR change %s -> %s for %s not made: %s (%s); awaiting new metadata",
                     list(reg.isr), new_isr, partition.tp, exc, exc.code.name)
            return
        log.info("ISR change %s -> %s for %s refused: %s (%s)", list(reg.isr), new_isr,
                 partition.tp, exc, exc.code.name)
        return
    (broker.metrics.isr_shrinks if shrink else broker.metrics.isr_expands).inc()
    log.info("ISR of %s %s from %s to %s", partition.tp, "shrunk" if shrink else "expanded",
             list(reg.isr), new_isr)
