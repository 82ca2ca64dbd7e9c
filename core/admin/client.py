"""Async admin client for any Kafka cluster (ours, Apache Kafka, Redpanda).

    async with AdminClient("127.0.0.1:9092") as admin:
        md = await admin.metadata()
        await admin.create_topic("t", partitions=3, replication_factor=3)
        offsets = await admin.list_offsets([("t", 0)], "latest")

Per-partition requests go to partition leaders (batched per broker), group requests to the
group coordinator (FindCoordinator), topic/config changes to the controller (or any broker,
which forwards them). Stale-metadata errors (NOT_LEADER_OR_FOLLOWER, NOT_COORDINATOR,
NOT_CONTROLLER, lost connections, ...) refresh metadata and retry. Failures are KafkaError
subclasses (core.admin.errors) carrying Kafka's code and message.

Brokers not to wait on (`UnresponsiveBrokers`, `admin.unresponsive`): a broker the caller
says is down (`set_known_down`, e.g. a supervisor's "paused") and, with
`unresponsive_backoff`, a broker whose request just timed out are not asked: requests to
them fail at once with `BrokerUnresponsiveError` (not retried), and one short background
probe per back-off period tells when a timed-out broker answers again.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from core.admin.assignment import decode_assignment
from core.admin.errors import error_for, raise_for
from core.admin.snapshot import (
    BrokerInfo,
    GroupInfo,
    GroupOffset,
    MemberInfo,
    PartitionInfo,
    QuorumInfo,
    QuorumVoter,
    TopicInfo,
)
from core.common.errors import ErrorCode, KafkaError, RequestTimedOutError
from core.common.types import EARLIEST_TIMESTAMP, LATEST_TIMESTAMP, MAX_TIMESTAMP
from core.network.client import BrokerConnectionError, ConnectionPool, KafkaConnection

__all__ = [
    "ActiveProducer",
    "AdminClient",
    "BrokerUnresponsiveError",
    "ClusterMetadata",
    "ConfigEntry",
    "GroupListing",
    "LogDirInfo",
    "NewTopic",
    "OffsetResult",
    "OffsetSpec",
    "TransactionDescription",
    "TransactionListing",
    "UnresponsiveBrokers",
    "parse_bootstrap",
]

T = TypeVar("T")
TP = tuple[str, int]
Address = tuple[str, int]
OffsetSpec = str | int  # "earliest" | "latest" | "max_timestamp" | timestamp ms

# API keys
PRODUCE, FETCH, LIST_OFFSETS, METADATA = 0, 1, 2, 3
OFFSET_COMMIT, OFFSET_FETCH, FIND_COORDINATOR = 8, 9, 10
DESCRIBE_GROUPS, LIST_GROUPS, CREATE_TOPICS, DELETE_TOPICS, DELETE_RECORDS = 15, 16, 19, 20, 21
DESCRIBE_CONFIGS, DELETE_GROUPS, ELECT_LEADERS, INCREMENTAL_ALTER_CONFIGS = 32, 42, 43, 44
CREATE_PARTITIONS, DESCRIBE_LOG_DIRS, DESCRIBE_QUORUM, DESCRIBE_CLUSTER = 37, 35, 55, 60
DESCRIBE_PRODUCERS, DESCRIBE_TRANSACTIONS, LIST_TRANSACTIONS = 61, 65, 66
ALTER_PARTITION_REASSIGNMENTS, LIST_PARTITION_REASSIGNMENTS = 45, 46

# Version caps: the newest versions whose shape this module reads.
_MAX = {METADATA: 12, LIST_OFFSETS: 8, FIND_COORDINATOR: 4, OFFSET_FETCH: 8, OFFSET_COMMIT: 8,
        DESCRIBE_GROUPS: 5, LIST_GROUPS: 4, CREATE_TOPICS: 7, DELETE_TOPICS: 5,
        DELETE_RECORDS: 2, DESCRIBE_CONFIGS: 4, DELETE_GROUPS: 2, ELECT_LEADERS: 2,
        INCREMENTAL_ALTER_CONFIGS: 1, CREATE_PARTITIONS: 3, DESCRIBE_LOG_DIRS: 4,
        DESCRIBE_QUORUM: 1, DESCRIBE_CLUSTER: 1, PRODUCE: 9, FETCH: 12}

#: Errors after which fresh metadata (or a fresh coordinator) may succeed.
RETRIABLE_ROUTING = frozenset({
    ErrorCode.not_leader_or_follower, ErrorCode.leader_not_available,
    ErrorCode.fenced_leader_epoch, ErrorCode.unknown_leader_epoch,
    ErrorCode.not_coordinator, ErrorCode.coordinator_not_available,
    ErrorCode.coordinator_load_in_progress, ErrorCode.not_controller,
    ErrorCode.network_exception, ErrorCode.request_timed_out, ErrorCode.replica_not_available,
    ErrorCode.kafka_storage_error, ErrorCode.offset_not_available,
    ErrorCode.broker_not_available,
})

#: with the back-off on, a request with no answer after this long gets its broker probed
SUSPECT_AFTER_S = 0.5

RESOURCE_TOPIC, RESOURCE_BROKER, RESOURCE_GROUP = 2, 4, 3
CONFIG_SOURCES = {0: "UNKNOWN", 1: "DYNAMIC_TOPIC_CONFIG", 2: "DYNAMIC_BROKER_CONFIG",
                  3: "DYNAMIC_DEFAULT_BROKER_CONFIG", 4: "STATIC_BROKER_CONFIG",
                  5: "DEFAULT_CONFIG", 6: "DYNAMIC_BROKER_LOGGER_CONFIG",
                  7: "CLIENT_METRICS_CONFIG", 8: "GROUP_CONFIG"}


def parse_bootstrap(bootstrap: str) -> list[tuple[str, int]]:
    """'h1:9092,h2:9093' -> [(h1, 9092), (h2, 9093)] (port defaults to 9092)."""
    out = []
    for part in bootstrap.split(","):
        part = part.strip()
        if not part:
            continue
        if "://" in part:
            part = part.split("://", 1)[1]
        if part.startswith("["):  # [ipv6]:port
            host, _, rest = part[1:].partition("]")
            port = int(rest.lstrip(":") or 9092)
        elif part.count(":") == 1:
            host, port_s = part.split(":")
            port = int(port_s)
        else:
            host, port = part, 9092
        out.append((host, port))
    if not out:
        raise ValueError(f"no bootstrap servers in {bootstrap!r}")
    return out


def _ms(value: Any) -> int:
    """kio timedelta/datetime/int -> int ms."""
    if value is None:
        return -1
    if isinstance(value, int):
        return value
    if hasattr(value, "total_seconds") and not hasattr(value, "year"):
        return round(value.total_seconds() * 1000)
    if hasattr(value, "timestamp"):
        return round(value.timestamp() * 1000)
    return int(value)


# result types ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ClusterMetadata:
    """One Metadata response: brokers, controller and topics (partitions in order)."""

    cluster_id: str | None
    controller_id: int | None
    brokers: tuple[BrokerInfo, ...]
    topics: dict[str, TopicInfo] = field(hash=False)
    #: topic -> error for topics the response reported with an error code
    topic_errors: dict[str, KafkaError] = field(default_factory=dict, hash=False)

    def broker(self, broker_id: int) -> BrokerInfo | None:
        for b in self.brokers:
            if b.id == broker_id:
                return b
        return None

    def partition(self, topic: str, partition: int) -> PartitionInfo | None:
        t = self.topics.get(topic)
        if t is None or partition >= len(t.partitions):
            return None
        p = t.partitions[partition]
        return p if p.partition == partition else next(
            (x for x in t.partitions if x.partition == partition), None)


@dataclass(frozen=True, slots=True)
class NewTopic:
    name: str
    partitions: int = -1
    replication_factor: int = -1
    configs: Mapping[str, str] | None = None
    assignments: Mapping[int, Sequence[int]] | None = None


@dataclass(frozen=True, slots=True)
class ConfigEntry:
    name: str
    value: str | None
    source: str = "UNKNOWN"
    read_only: bool = False
    sensitive: bool = False
    is_default: bool = False
    documentation: str | None = None


@dataclass(frozen=True, slots=True)
class GroupListing:
    group_id: str
    protocol_type: str
    state: str | None
    coordinator_id: int | None = None


@dataclass(frozen=True, slots=True)
class OffsetResult:
    offset: int
    timestamp: int = -1
    leader_epoch: int = -1


@dataclass(frozen=True, slots=True)
class CommittedOffset:
    offset: int
    metadata: str | None = None
    leader_epoch: int = -1


@dataclass(frozen=True, slots=True)
class LogDirInfo:
    path: str
    error: KafkaError | None
    total_bytes: int | None
    usable_bytes: int | None
    #: (topic, partition) -> (size bytes, offset lag, is_future)
    partitions: dict[TP, tuple[int, int, bool]] = field(hash=False)


@dataclass(frozen=True, slots=True)
class TransactionListing:
    """One transactional id as ListTransactions reports it."""
    transactional_id: str
    producer_id: int
    state: str
    coordinator_id: int


@dataclass(frozen=True, slots=True)
class TransactionDescription:
    """DescribeTransactions of one transactional id (start_ms -1: no transaction open)."""
    transactional_id: str
    state: str
    timeout_ms: int
    start_ms: int
    producer_id: int
    producer_epoch: int
    partitions: tuple[TP, ...]
    coordinator_id: int
    error: KafkaError | None = None


@dataclass(frozen=True, slots=True)
class ActiveProducer:
    """DescribeProducers: a producer with state on a partition (current_txn_start_offset -1:
    no open transaction there)."""
    producer_id: int
    producer_epoch: int
    last_sequence: int
    last_timestamp: int
    coordinator_epoch: int
    current_txn_start_offset: int

class BrokerUnresponsiveError(KafkaError):
    """Not sent: the broker is known to be down, or it is in a back-off after a timeout."""

    code = ErrorCode.broker_not_available


@dataclass(slots=True)
class _Backoff:
    reason: str
    probe_at: float  # monotonic time the next probe may start
    probing: bool = False


class UnresponsiveBrokers:
    """Which broker addresses not to wait on; pure bookkeeping (no I/O, injectable clock).

    Two kinds: *known down* (set by the caller from a supervisor: paused, stopped, ...; never
    probed, forgotten when the caller stops listing it) and *timed out* (a request got no
    answer in time: refused at once, probed at once, since one slow request (e.g. one the
    broker forwards to a stalled controller) does not make a broker unresponsive; while
    probes fail, one probe per `backoff_s` until one answers). `backoff_s` None or 0 turns
    the timed-out kind off.
    """

    def __init__(self, backoff_s: float | None = 3.0, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.backoff_s = backoff_s or 0.0
        self._clock = clock
        self._down: dict[Address, str] = {}
        self._timed_out: dict[Address, _Backoff] = {}

    def set_down(self, reasons: Mapping[Address, str]) -> set[Address]:
        """Replace the known-down addresses (address -> why); returns the newly down ones.

        An address that is no longer down also forgets its back-off (its process runs again).
        """
        new = set(reasons) - set(self._down)
        for address in set(self._down) - set(reasons):
            self._timed_out.pop(address, None)
        self._down = dict(reasons)
        return new

    def known_down(self, address: Address) -> str | None:
        """Why `address` is known down (set_down), or None."""
        return self._down.get(address)

    def refusal(self, address: Address) -> str | None:
        """Why not to send to `address` now, or None to go ahead."""
        if address in self._down:
            return self._down[address]
        entry = self._timed_out.get(address)
        return entry.reason if entry is not None else None

    def timed_out(self, address: Address, reason: str) -> None:
        """A request to `address` got no answer in time: refuse it, and probe it now."""
        if self.backoff_s > 0 and address not in self._timed_out:
            self._timed_out[address] = _Backoff(reason, self._clock())

    def probe_failed(self, address: Address) -> None:
        """The probe got no answer either: the next one after `backoff_s`."""
        entry = self._timed_out.get(address)
        if entry is not None:
            entry.probing = False
            entry.probe_at = self._clock() + self.backoff_s

    def answered(self, address: Address) -> None:
        """`address` answered: it is responsive again."""
        self._timed_out.pop(address, None)

    def probe_due(self, address: Address) -> bool:
        """True once per back-off period (and claims the probe) for a timed-out address."""
        entry = self._timed_out.get(address)
        if entry is None or entry.probing or address in self._down \
                or self._clock() < entry.probe_at:
            return False
        entry.probing = True
        return True

    def unresponsive(self) -> dict[Address, str]:
        """Timed-out addresses still in back-off -> reason (known-down ones excluded)."""
        return {a: e.reason for a, e in self._timed_out.items() if a not in self._down}


def spec_timestamp(spec: OffsetSpec) -> int:
    """ListOffsets timestamp for an offset spec."""
    if isinstance(spec, int):
        return spec
    named = {"earliest": EARLIEST_TIMESTAMP, "latest": LATEST_TIMESTAMP,
             "max_timestamp": MAX_TIMESTAMP}
    try:
        return named[spec.lower()]
    except KeyError:
        raise ValueError(f"bad offset spec {spec!r}: earliest|latest|max_timestamp|<ms>") from None


class AdminClient:
    """Async admin client; use as `async with AdminClient(bootstrap) as admin:`."""

    def __init__(self, bootstrap: str, *, client_id: str = "kaflab-admin",
                 request_timeout: float = 30.0, retries: int = 5,
                 retry_backoff: float = 0.1, unresponsive_backoff: float | None = None,
                 probe_timeout: float = 1.0,
                 unresponsive: UnresponsiveBrokers | None = None) -> None:
        """`unresponsive_backoff` (s): a broker whose request times out (or gets no answer
        in SUSPECT_AFTER_S, nor a probe) is not asked, and probed (ApiVersions + Metadata,
        `probe_timeout`) once per period until it answers. None: wait out every timeout (the
        default). `unresponsive`: share that bookkeeping with another client."""
        self.bootstrap = bootstrap
        self._bootstrap = parse_bootstrap(bootstrap)
        self.request_timeout = request_timeout
        self.retries = retries
        self.retry_backoff = retry_backoff
        self.pool = ConnectionPool(client_id=client_id, timeout=request_timeout)
        self._metadata: ClusterMetadata | None = None
        self._metadata_lock = asyncio.Lock()
        self._coordinators: dict[str, int] = {}
        self._closed = False
        self.unresponsive = unresponsive or UnresponsiveBrokers(unresponsive_backoff)
        self.probe_timeout = probe_timeout
        self._probes: set[asyncio.Task[None]] = set()
        self._suspects: set[Address] = set()
        self._waiting: dict[Address, set[asyncio.Future[Any]]] = {}

    async def __aenter__(self) -> AdminClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close every connection."""
        self._closed = True
        for task in list(self._probes):
            task.cancel()
        await self.pool.close()

    # connections --------------------------------------------------------------------------
    async def any_connection(self) -> KafkaConnection:
        """A connection to some live broker (known brokers first, then bootstrap)."""
        candidates: list[tuple[str, int]] = []
        if self._metadata is not None:
            brokers = list(self._metadata.brokers)
            random.shuffle(brokers)
            candidates += [(b.host, b.port) for b in brokers]
        boot = list(self._bootstrap)
        random.shuffle(boot)
        candidates += [a for a in boot if a not in candidates]
        usable = [a for a in candidates if self.unresponsive.refusal(a) is None]
        if not usable:
            refusals = []
            for address in candidates:
                try:
                    self._check(address)  # starts the probes that are due
                except BrokerUnresponsiveError as exc:
                    refusals.append(str(exc))
            raise BrokerUnresponsiveError("no broker to ask: " + "; ".join(
                dict.fromkeys(refusals)))
        for host, port in usable:  # prefer an already open connection
            conn = self.pool._conns.get((host, port))
            if conn is not None and not conn.closed:
                return conn
        errors = []
        for host, port in usable:
            try:
                return await self._get(host, port)
            except KafkaError as exc:
                errors.append(str(exc))
        raise BrokerConnectionError("no broker reachable: " + "; ".join(errors))

    async def connection(self, broker_id: int) -> KafkaConnection:
        """A connection to broker `broker_id` (from metadata)."""
        md = self._metadata or await self.metadata()
        broker = md.broker(broker_id)
        if broker is None:
            md = await self.metadata()
            broker = md.broker(broker_id)
            if broker is None:
                raise error_for(ErrorCode.broker_not_available, None,  # type: ignore[misc]
                                f"broker {broker_id} is not in the cluster metadata")
        return await self._get(broker.host, broker.port)

    async def controller_connection(self) -> KafkaConnection:
        md = self._metadata or await self.metadata()
        if md.controller_id is not None and md.controller_id >= 0 and md.broker(md.controller_id):
            try:
                return await self.connection(md.controller_id)
            except KafkaError:
                pass
        return await self.any_connection()

    async def _call(self, conn: KafkaConnection, api_key: int, **fields: Any) -> Any:
        return await self._request(conn, api_key, _MAX.get(api_key), fields)

    async def _request(self, conn: KafkaConnection, api_key: int, max_version: int | None,
                       fields: Mapping[str, Any]) -> Any:
        """Send one request unless its broker is not to be asked (see UnresponsiveBrokers)."""
        address = (conn.host, conn.port)
        self._check(address)
        try:
            resp = await self._watched(address, conn.request(
                api_key, max_version=max_version, fields=fields))
        except RequestTimedOutError:
            self._timed_out(address, conn.timeout)
            raise
        except BrokerConnectionError as exc:
            reason = self.unresponsive.refusal(address)
            if reason is not None:  # closed by _suspect: no answer, as a timeout (retried
                raise RequestTimedOutError(reason) from exc  # elsewhere where that helps)
            raise
        self.unresponsive.answered(address)
        return resp

    async def _get(self, host: str, port: int) -> KafkaConnection:
        """pool.get, unless the broker is not to be asked; a connect that timed out (TCP or
        the ApiVersions handshake) starts its back-off."""
        address = (host, port)
        self._check(address)
        started = time.monotonic()
        try:
            return await self._watched(address, self.pool.get(host, port))
        except KafkaError as exc:
            if isinstance(exc, RequestTimedOutError) or (
                    isinstance(exc, BrokerConnectionError)
                    and time.monotonic() - started >= 0.9 * self.pool.timeout):
                self._timed_out(address, self.pool.timeout)
            raise

    async def _watched(self, address: Address, aw: Awaitable[T]) -> T:
        """Await a request (or connect) to `address`; with the back-off on, one that has no
        answer after SUSPECT_AFTER_S makes us probe the broker on a fresh connection, and if
        the probe gets no answer either the wait ends now (RequestTimedOutError, as at the
        request timeout) instead of at the request timeout."""
        if self.unresponsive.backoff_s <= 0:
            return await aw
        fut = asyncio.ensure_future(aw)
        waiting = self._waiting.setdefault(address, set())
        waiting.add(fut)
        try:
            done, _ = await asyncio.wait({fut}, timeout=SUSPECT_AFTER_S)
            if not done:
                self._suspect(address)
            while not done:  # a broker reported down meanwhile (e.g. to a client sharing
                down = self.unresponsive.known_down(address)  # this bookkeeping): stop now
                if down is not None:
                    raise RequestTimedOutError(down)  # retried elsewhere where it helps
                done, _ = await asyncio.wait({fut}, timeout=SUSPECT_AFTER_S)
        finally:
            waiting.discard(fut)
            if not fut.done():
                fut.cancel()
        if fut.cancelled():  # by _suspect
            raise RequestTimedOutError(self.unresponsive.refusal(address)
                                       or f"{self.broker_name(address)} does not answer")
        return fut.result()

    # brokers not to wait on ---------------------------------------------------------------
    def set_known_down(self, reasons: Mapping[Address, str]) -> set[Address]:
        """Addresses known not to answer (address -> why, e.g. "broker 2 is paused: not
        asked"), replacing the previous set. Requests to them fail at once; the connection to
        a newly down one is closed, so requests already waiting on it fail now too. Returns
        the newly down addresses."""
        new = self.unresponsive.set_down(reasons)
        for address in new:
            self.drop(address)
        return new

    def refusal_of(self, broker_id: int) -> str | None:
        """Why broker `broker_id` (by the cached metadata) is not asked now, or None."""
        broker = self._metadata.broker(broker_id) if self._metadata is not None else None
        return None if broker is None else self.unresponsive.refusal((broker.host, broker.port))

    def use_metadata(self, md: ClusterMetadata) -> None:
        """Adopt metadata another client fetched (the brokers to ask, and their names)."""
        self._metadata = md

    def broker_name(self, address: Address) -> str:
        """'broker 2 (127.0.0.1:9093)' when the metadata knows the address, else 'host:port'."""
        host, port = address
        for b in self._metadata.brokers if self._metadata else ():
            if (b.host, b.port) == address:
                return f"broker {b.id} ({host}:{port})"
        return f"{host}:{port}"

    def _check(self, address: Address) -> None:
        """Raise BrokerUnresponsiveError if `address` is not to be asked (probing it if due)."""
        reason = self.unresponsive.refusal(address)
        if reason is None:
            return
        if self.unresponsive.probe_due(address) and not self._closed:
            self._spawn(self._probe(address))
        raise BrokerUnresponsiveError(reason)

    def _timed_out(self, address: Address, timeout: float) -> None:
        backoff = self.unresponsive.backoff_s
        self.unresponsive.timed_out(address, (
            f"{self.broker_name(address)} is unresponsive (no answer within {timeout:g}s): "
            f"not asked, probed every {backoff:g}s"))
        if self.unresponsive.probe_due(address) and not self._closed:
            self._spawn(self._probe(address))

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]
        self._probes.add(task)
        task.add_done_callback(self._probes.discard)

    def _suspect(self, address: Address) -> None:
        """A request to `address` is slow: probe it now (once at a time)."""
        if address in self._suspects or self.unresponsive.refusal(address) is not None \
                or self._closed:
            return
        self._suspects.add(address)
        self._spawn(self._check_suspect(address))

    async def _check_suspect(self, address: Address) -> None:
        try:
            if await self._answers(address):
                return  # only that request is slow (e.g. forwarded to a stalled controller)
            self.unresponsive.timed_out(address, (
                f"{self.broker_name(address)} is unresponsive (a request and a probe got no "
                f"answer): not asked, probed every {self.unresponsive.backoff_s:g}s"))
            if self.unresponsive.probe_due(address):
                self.unresponsive.probe_failed(address)  # that was this period's probe
            self.drop(address)
        finally:
            self._suspects.discard(address)

    def drop(self, address: Address) -> None:
        """Stop waiting on `address`: close its connection (requests waiting on it fail now)
        and cancel a connect still waiting for its handshake."""
        self.pool.discard(*address)
        for fut in list(self._waiting.get(address, ())):
            fut.cancel()

    async def _probe(self, address: Address) -> None:
        """A timed-out broker's probe: answered -> responsive again."""
        if await self._answers(address):
            self.unresponsive.answered(address)
        else:
            self.unresponsive.probe_failed(address)

    async def _answers(self, address: Address) -> bool:
        """ApiVersions + Metadata (no topics) on a fresh connection, `probe_timeout` each: a
        fresh one, so that a request stuck on the pooled connection cannot hold it up."""
        host, port = address
        conn: KafkaConnection | None = None
        try:
            conn = await KafkaConnection.connect(host, port, client_id=self.pool.client_id,
                                                 timeout=self.probe_timeout)
            await conn.request(METADATA, max_version=_MAX[METADATA],
                               fields={"topics": [], "allow_auto_topic_creation": False})
        except (KafkaError, OSError, TimeoutError):
            return False
        finally:
            if conn is not None:
                conn.close_nowait()
        return True

    async def _retrying(self, op: Callable[[], Awaitable[T]], what: str) -> T:
        """Run op, refreshing metadata and retrying on routing/connection errors."""
        delay = self.retry_backoff
        for attempt in range(self.retries + 1):
            try:
                return await op()
            except KafkaError as exc:
                if not _retriable(exc) or attempt == self.retries:
                    raise
                if isinstance(exc, BrokerConnectionError):
                    self._drop_stale_connections()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
                if what != "metadata":
                    try:
                        await self._metadata_once(None, False)
                    except KafkaError:
                        pass
        raise AssertionError(what)  # pragma: no cover

    def _drop_stale_connections(self) -> None:
        for (host, port), conn in list(self.pool._conns.items()):
            if conn.closed:
                self.pool.discard(host, port)

    # metadata -----------------------------------------------------------------------------
    async def metadata(self, topics: Iterable[str] | None = None, *,
                       allow_auto_topic_creation: bool = False) -> ClusterMetadata:
        """Fetch cluster metadata (all topics, or those named). Cached as latest metadata."""
        names = None if topics is None else list(topics)
        md = await self._retrying(
            lambda: self._metadata_once(names, allow_auto_topic_creation), "metadata")
        if topics is None or self._metadata is None:
            self._metadata = md
        else:
            merged = dict(self._metadata.topics)
            merged.update(md.topics)
            self._metadata = ClusterMetadata(md.cluster_id, md.controller_id, md.brokers, merged)
        return md

    async def _metadata_once(self, topics: list[str] | None,
                             allow_auto_topic_creation: bool) -> ClusterMetadata:
        """One Metadata request (no retries); caches the result when it covers all topics."""
        wanted = None if topics is None else [{"name": t} for t in topics]
        conn = await self.any_connection()
        resp = await self._call(conn, METADATA, topics=wanted,
                                allow_auto_topic_creation=allow_auto_topic_creation)
        md = self._parse_metadata(resp)
        if topics is None:
            self._metadata = md
        return md

    @staticmethod
    def _parse_metadata(resp: Any) -> ClusterMetadata:
        controller = int(resp.controller_id) if getattr(resp, "controller_id", -1) >= 0 else None
        brokers = tuple(sorted(
            (BrokerInfo(id=int(b.node_id), host=b.host, port=int(b.port),
                        rack=getattr(b, "rack", None), is_controller=int(b.node_id) == controller)
             for b in resp.brokers), key=lambda b: b.id))
        topics: dict[str, TopicInfo] = {}
        errors: dict[str, KafkaError] = {}
        for t in resp.topics:
            if t.error_code != ErrorCode.none:
                err = error_for(t.error_code, None, f"topic {t.name}")
                assert err is not None
                errors[t.name] = err
                if t.error_code != ErrorCode.leader_not_available or not t.partitions:
                    continue
            parts = []
            for p in t.partitions:
                parts.append(PartitionInfo(
                    topic=t.name, partition=int(p.partition_index), leader=int(p.leader_id),
                    leader_epoch=int(getattr(p, "leader_epoch", -1)),
                    replicas=tuple(int(x) for x in p.replica_nodes),
                    isr=tuple(int(x) for x in p.isr_nodes),
                    offline_replicas=tuple(int(x) for x in getattr(p, "offline_replicas", ()))))
            parts.sort(key=lambda p: p.partition)
            topic_id = getattr(t, "topic_id", None)
            topics[t.name] = TopicInfo(
                name=t.name, internal=bool(t.is_internal), partitions=tuple(parts),
                under_replicated=any(p.under_replicated for p in parts),
                topic_id=str(topic_id) if topic_id is not None else None)
        return ClusterMetadata(getattr(resp, "cluster_id", None), controller, brokers, topics,
                               errors)

    async def describe_cluster(self) -> ClusterMetadata:
        """Cluster id, controller and brokers (DescribeCluster, or Metadata if unsupported)."""
        conn = await self.any_connection()
        if not conn.supports(DESCRIBE_CLUSTER):
            md = await self.metadata([])
            return ClusterMetadata(md.cluster_id, md.controller_id, md.brokers, {})
        resp = await self._call(conn, DESCRIBE_CLUSTER, include_cluster_authorized_operations=False,
                                endpoint_type=1)
        raise_for(resp.error_code, resp.error_message, "DescribeCluster")
        controller = int(resp.controller_id) if resp.controller_id >= 0 else None
        brokers = tuple(sorted(
            (BrokerInfo(id=int(b.broker_id), host=b.host, port=int(b.port), rack=b.rack,
                        is_controller=int(b.broker_id) == controller) for b in resp.brokers),
            key=lambda b: b.id))
        return ClusterMetadata(resp.cluster_id, controller, brokers, {})

    async def leader_for(self, topic: str, partition: int) -> int:
        """The current leader id of a partition (refreshing metadata if unknown)."""
        for refresh in (False, True):
            md = self._metadata
            if md is None or refresh or md.partition(topic, partition) is None:
                md = await self.metadata([topic])
            p = md.partition(topic, partition)
            if p is not None and p.leader >= 0:
                return p.leader
        raise_for(ErrorCode.leader_not_available, None, f"{topic}-{partition}")
        raise AssertionError  # pragma: no cover

    async def partitions_of(self, topic: str) -> list[int]:
        md = await self.metadata([topic])
        if topic in md.topic_errors and topic not in md.topics:
            raise md.topic_errors[topic]
        return [p.partition for p in md.topics[topic].partitions]

    # topics -------------------------------------------------------------------------------
    async def create_topic(self, name: str, partitions: int = -1, replication_factor: int = -1,
                           configs: Mapping[str, str] | None = None, *,
                           assignments: Mapping[int, Sequence[int]] | None = None,
                           validate_only: bool = False, timeout_ms: int = 30000) -> None:
        """Create one topic; raises e.g. TopicAlreadyExistsError."""
        results = await self.create_topics(
            [NewTopic(name, partitions, replication_factor, configs, assignments)],
            validate_only=validate_only, timeout_ms=timeout_ms)
        if results[name] is not None:
            raise results[name]  # type: ignore[misc]

    async def create_topics(self, topics: Sequence[NewTopic], *, validate_only: bool = False,
                            timeout_ms: int = 30000) -> dict[str, KafkaError | None]:
        """Create topics; returns name -> None (created) or the error."""
        body = [{"name": t.name, "num_partitions": t.partitions if not t.assignments else -1,
                 "replication_factor": t.replication_factor if not t.assignments else -1,
                 "assignments": [{"partition_index": p, "broker_ids": list(b)}
                                 for p, b in (t.assignments or {}).items()],
                 "configs": [{"name": k, "value": v} for k, v in (t.configs or {}).items()]}
                for t in topics]

        async def op() -> dict[str, KafkaError | None]:
            conn = await self.controller_connection()
            resp = await self._call(conn, CREATE_TOPICS, topics=body, timeout=timeout_ms,
                                    validate_only=validate_only)
            out = {r.name: error_for(r.error_code, r.error_message, f"create topic {r.name}")
                   for r in resp.topics}
            _raise_first_routing(out.values())
            return out

        return await self._retrying(op, "create_topics")

    async def delete_topics(self, names: Iterable[str], *,
                            timeout_ms: int = 30000) -> dict[str, KafkaError | None]:
        """Delete topics; returns name -> None or the error."""
        names = list(names)

        async def op() -> dict[str, KafkaError | None]:
            conn = await self.controller_connection()
            resp = await self._call(conn, DELETE_TOPICS, topics=[{"name": n} for n in names],
                                    topic_names=names, timeout=timeout_ms)
            out = {r.name: error_for(r.error_code, getattr(r, "error_message", None),
                                     f"delete topic {r.name}") for r in resp.responses}
            _raise_first_routing(out.values())
            return out

        return await self._retrying(op, "delete_topics")

    async def create_partitions(self, counts: Mapping[str, int], *, validate_only: bool = False,
                                timeout_ms: int = 30000) -> dict[str, KafkaError | None]:
        """Increase partition counts: {topic: new total}; returns topic -> None or error."""
        async def op() -> dict[str, KafkaError | None]:
            conn = await self.controller_connection()
            resp = await self._call(
                conn, CREATE_PARTITIONS, timeout=timeout_ms, validate_only=validate_only,
                topics=[{"name": t, "count": n, "assignments": None} for t, n in counts.items()])
            out = {r.name: error_for(r.error_code, r.error_message, f"create partitions {r.name}")
                   for r in resp.results}
            _raise_first_routing(out.values())
            return out

        return await self._retrying(op, "create_partitions")

    # configs ------------------------------------------------------------------------------
    async def describe_configs(self, resource_type: int, name: str,
                               keys: Iterable[str] | None = None) -> dict[str, ConfigEntry]:
        """Configs of a topic (resource_type 2) or broker (4, sent to that broker)."""
        async def op() -> dict[str, ConfigEntry]:
            conn = await self._config_connection(resource_type, name)
            resp = await self._call(conn, DESCRIBE_CONFIGS, include_synonyms=False,
                                    include_documentation=False, resources=[{
                                        "resource_type": resource_type, "resource_name": name,
                                        "configuration_keys": None if keys is None else list(keys),
                                    }])
            out: dict[str, ConfigEntry] = {}
            for r in resp.results:
                raise_for(r.error_code, r.error_message, f"describe configs {name}")
                for c in r.configs:
                    out[c.name] = _config_entry(c)
            return out

        return await self._retrying(op, "describe_configs")

    async def describe_topic_configs_many(self, topics: Iterable[str]) -> dict[str, Any]:
        """Configs of many topics in one DescribeConfigs: {topic: {name: ConfigEntry}} or
        {topic: KafkaError}."""
        names = list(topics)
        if not names:
            return {}
        conn = await self.any_connection()
        resp = await self._call(conn, DESCRIBE_CONFIGS, include_synonyms=False,
                                include_documentation=False, resources=[
                                    {"resource_type": RESOURCE_TOPIC, "resource_name": n,
                                     "configuration_keys": None} for n in names])
        out: dict[str, Any] = {}
        for r in resp.results:
            err = error_for(r.error_code, r.error_message, f"describe configs {r.resource_name}")
            if err is not None:
                out[r.resource_name] = err
                continue
            out[r.resource_name] = {c.name: _config_entry(c) for c in r.configs}
        return out

    async def describe_topic_configs(self, topic: str) -> dict[str, ConfigEntry]:
        return await self.describe_configs(RESOURCE_TOPIC, topic)

    async def incremental_alter_configs(self, resource_type: int, name: str,
                                        set_: Mapping[str, str] | None = None,
                                        delete: Iterable[str] = (), *,
                                        validate_only: bool = False) -> None:
        """SET and DELETE config entries of a topic (2) or broker (4)."""
        ops = [{"name": k, "config_operation": 0, "value": v} for k, v in (set_ or {}).items()]
        ops += [{"name": k, "config_operation": 1, "value": None} for k in delete]

        async def op() -> None:
            conn = await self._config_connection(resource_type, name)
            resp = await self._call(conn, INCREMENTAL_ALTER_CONFIGS, validate_only=validate_only,
                                    resources=[{"resource_type": resource_type,
                                                "resource_name": name, "configs": ops}])
            for r in resp.responses:
                raise_for(r.error_code, r.error_message, f"alter configs {name}")

        await self._retrying(op, "incremental_alter_configs")

    async def _config_connection(self, resource_type: int, name: str) -> KafkaConnection:
        if resource_type == RESOURCE_BROKER and name:
            return await self.connection(int(name))
        return await self.any_connection()

    # leader-routed partition requests -----------------------------------------------------
    async def _per_leader(self, items: Iterable[TP],
                          send: Callable[[KafkaConnection, list[TP]],
                                         Awaitable[dict[TP, Any]]],
                          ) -> dict[TP, Any]:
        """Group partitions by leader, send batches in parallel, retry routing errors.

        `send` returns {tp: result or KafkaError}. Returns the same for every item.
        """
        pending = sorted(set(items))
        results: dict[TP, Any] = {}
        delay = self.retry_backoff
        for attempt in range(self.retries + 1):
            md = self._metadata
            topics = {t for t, _ in pending}
            if md is None or attempt > 0 or any(t not in md.topics for t in topics):
                try:
                    md = await self.metadata(sorted(topics))
                except KafkaError as exc:
                    for tp in pending:
                        results[tp] = exc
                    return results
            by_leader: dict[int, list[TP]] = defaultdict(list)
            for tp in pending:
                p = md.partition(*tp)
                if p is None:
                    err = md.topic_errors.get(tp[0]) or error_for(
                        ErrorCode.unknown_topic_or_partition, None, f"{tp[0]}-{tp[1]}")
                    results[tp] = err
                elif p.leader < 0:
                    results[tp] = error_for(ErrorCode.leader_not_available, None,
                                            f"{tp[0]}-{tp[1]}")
                else:
                    by_leader[p.leader].append(tp)

            async def one(leader: int, tps: list[TP]) -> dict[TP, Any]:
                try:
                    conn = await self.connection(leader)
                    return await send(conn, tps)
                except KafkaError as exc:
                    return dict.fromkeys(tps, exc)

            batches = await asyncio.gather(*(one(b, tps) for b, tps in by_leader.items()))
            for batch in batches:
                results.update(batch)
            pending = sorted(tp for tp, r in results.items()
                             if isinstance(r, KafkaError) and _retriable(r)
                             and attempt < self.retries)
            if not pending:
                break
            self._drop_stale_connections()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
        return results

    async def list_offsets(self, partitions: Iterable[TP] | Mapping[TP, OffsetSpec],
                           spec: OffsetSpec = "latest", *, isolation_level: int = 0,
                           raise_errors: bool = True) -> dict[TP, Any]:
        """Offsets per partition for a spec (earliest/latest/max_timestamp/timestamp ms).

        `partitions` may map each partition to its own spec. Returns {tp: OffsetResult};
        with raise_errors=False failed partitions map to their KafkaError instead.
        """
        specs = ({tp: spec_timestamp(s) for tp, s in partitions.items()}
                 if isinstance(partitions, Mapping)
                 else dict.fromkeys(partitions, spec_timestamp(spec)))

        async def send(conn: KafkaConnection, tps: list[TP]) -> dict[TP, Any]:
            by_topic: dict[str, list[dict[str, int]]] = defaultdict(list)
            for t, p in tps:
                by_topic[t].append({"partition_index": p, "timestamp": specs[(t, p)],
                                    "current_leader_epoch": -1, "max_num_offsets": 1})
            resp = await self._call(conn, LIST_OFFSETS, replica_id=-1,
                                    isolation_level=isolation_level,
                                    topics=[{"name": t, "partitions": ps}
                                            for t, ps in by_topic.items()])
            out: dict[TP, Any] = {}
            for t in resp.topics:
                for p in t.partitions:
                    tp = (t.name, int(p.partition_index))
                    err = error_for(p.error_code, None, f"list offsets {t.name}-{tp[1]}")
                    if err is not None:
                        out[tp] = err
                    else:
                        offset = int(getattr(p, "offset", -1))
                        if offset == -1 and getattr(p, "old_style_offsets", None):
                            offset = int(p.old_style_offsets[0])
                        out[tp] = OffsetResult(offset, int(getattr(p, "timestamp", -1)),
                                               int(getattr(p, "leader_epoch", -1)))
            return out

        results = await self._per_leader(specs, send)
        if raise_errors:
            _raise_any(results.values())
        return results

    async def delete_records(self, before: Mapping[TP, int], *,
                             timeout_ms: int = 30000) -> dict[TP, int]:
        """Delete records before each offset (-1: up to the high watermark).

        Returns the new low watermark per partition; raises on any error.
        """
        async def send(conn: KafkaConnection, tps: list[TP]) -> dict[TP, Any]:
            by_topic: dict[str, list[dict[str, int]]] = defaultdict(list)
            for t, p in tps:
                by_topic[t].append({"partition_index": p, "offset": before[(t, p)]})
            resp = await self._call(conn, DELETE_RECORDS, timeout=timeout_ms,
                                    topics=[{"name": t, "partitions": ps}
                                            for t, ps in by_topic.items()])
            out: dict[TP, Any] = {}
            for t in resp.topics:
                for p in t.partitions:
                    tp = (t.name, int(p.partition_index))
                    err = error_for(p.error_code, None, f"delete records {t.name}-{tp[1]}")
                    out[tp] = err if err is not None else int(p.low_watermark)
            return out

        results = await self._per_leader(before, send)
        _raise_any(results.values())
        return results

    # log dirs, quorum, elections ----------------------------------------------------------
    async def describe_log_dirs(self, broker_ids: Iterable[int] | None = None, *,
                                raise_errors: bool = True) -> dict[int, Any]:
        """Log dirs of each broker: {broker_id: [LogDirInfo, ...]} (or a KafkaError)."""
        if broker_ids is None:
            md = self._metadata or await self.metadata()
            broker_ids = [b.id for b in md.brokers]

        async def one(broker_id: int) -> Any:
            try:
                conn = await self.connection(broker_id)
                resp = await self._call(conn, DESCRIBE_LOG_DIRS, topics=None)
                top = getattr(resp, "error_code", ErrorCode.none)
                err = error_for(top, None, f"describe log dirs of broker {broker_id}")
                if err is not None:
                    return err
                dirs = []
                for d in resp.results:
                    parts = {(t.name, int(p.partition_index)):
                             (int(p.partition_size), int(p.offset_lag), bool(p.is_future_key))
                             for t in d.topics for p in t.partitions}
                    total = int(getattr(d, "total_bytes", -1))
                    usable = int(getattr(d, "usable_bytes", -1))
                    dirs.append(LogDirInfo(
                        d.log_dir, error_for(d.error_code, None, d.log_dir),
                        total if total >= 0 else None, usable if usable >= 0 else None, parts))
                return dirs
            except KafkaError as exc:
                return exc

        ids = list(broker_ids)
        results = dict(zip(ids, await asyncio.gather(*(one(b) for b in ids)), strict=True))
        if raise_errors:
            _raise_any(results.values())
        return results

    async def describe_quorum(self) -> QuorumInfo | None:
        """The KRaft metadata quorum, or None when the cluster does not offer DescribeQuorum."""
        conn = await self.any_connection()
        if not conn.supports(DESCRIBE_QUORUM):
            return None
        resp = await self._call(conn, DESCRIBE_QUORUM, topics=[
            {"topic_name": "__cluster_metadata", "partitions": [{"partition_index": 0}]}])
        raise_for(resp.error_code, getattr(resp, "error_message", None), "DescribeQuorum")
        for t in resp.topics:
            for p in t.partitions:
                raise_for(p.error_code, getattr(p, "error_message", None), "DescribeQuorum")
                hw = int(p.high_watermark)
                leader_leo = next((int(v.log_end_offset) for v in p.current_voters
                                   if int(v.replica_id) == int(p.leader_id)), hw)

                def voter(v: Any, leader_leo: int = leader_leo) -> QuorumVoter:
                    leo = int(v.log_end_offset)
                    # KIP-836 (v1+): epoch ms on the leader's clock, -1 when unknown
                    fetched = _ms(getattr(v, "last_fetch_timestamp", None))
                    caught_up = _ms(getattr(v, "last_caught_up_timestamp", None))
                    return QuorumVoter(int(v.replica_id), leo,
                                       max(0, leader_leo - leo) if leo >= 0 else None,
                                       last_fetch_timestamp=fetched if fetched >= 0 else None,
                                       last_caught_up_timestamp=(caught_up if caught_up >= 0
                                                                 else None))

                return QuorumInfo(
                    leader_id=int(p.leader_id), epoch=int(p.leader_epoch), high_watermark=hw,
                    voters=tuple(sorted((voter(v) for v in p.current_voters),
                                        key=lambda v: v.id)),
                    observers=tuple(sorted((voter(v) for v in p.observers),
                                           key=lambda v: v.id)))
        return None

    async def elect_leaders(self, partitions: Iterable[TP] | None = None, *,
                            election_type: int = 0,
                            timeout_ms: int = 30000) -> dict[TP, KafkaError | None]:
        """Preferred (0) or unclean (1) leader election; None = all partitions.

        Returns {tp: None or error}; ELECTION_NOT_NEEDED counts as success (None).
        """
        tps = None
        if partitions is not None:
            grouped: dict[str, list[int]] = defaultdict(list)
            for t, p in partitions:
                grouped[t].append(p)
            tps = [{"topic": t, "partitions": ps} for t, ps in grouped.items()]

        async def op() -> dict[TP, KafkaError | None]:
            conn = await self.controller_connection()
            resp = await self._call(conn, ELECT_LEADERS, election_type=election_type,
                                    topic_partitions=tps, timeout=timeout_ms)
            raise_for(getattr(resp, "error_code", 0), None, "ElectLeaders")
            out: dict[TP, KafkaError | None] = {}
            for r in resp.replica_election_results:
                for p in r.partition_result:
                    code = p.error_code
                    out[(r.topic, int(p.partition_id))] = None if code in (
                        ErrorCode.none, ErrorCode.election_not_needed) else error_for(
                        code, p.error_message, f"elect leader {r.topic}-{p.partition_id}")
            return out

        return await self._retrying(op, "elect_leaders")

    async def alter_partition_reassignments(
            self, targets: Mapping[TP, Sequence[int] | None], *,
            timeout_ms: int = 60000) -> dict[TP, KafkaError | None]:
        """Start, replace or cancel (None) reassignments (AlterPartitionReassignments).

        Returns {tp: None or the error}; the move itself happens in the background.
        """
        grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for (t, p), replicas in targets.items():
            grouped[t].append({"partition_index": p,
                               "replicas": None if replicas is None else list(replicas)})

        async def op() -> dict[TP, KafkaError | None]:
            conn = await self.controller_connection()
            resp = await self._call(conn, ALTER_PARTITION_REASSIGNMENTS, timeout=timeout_ms,
                                    topics=[{"name": t, "partitions": ps}
                                            for t, ps in grouped.items()])
            raise_for(resp.error_code, resp.error_message, "AlterPartitionReassignments")
            out: dict[TP, KafkaError | None] = {}
            for r in resp.responses:
                for p in r.partitions:
                    out[(r.name, int(p.partition_index))] = error_for(
                        p.error_code, p.error_message, f"reassign {r.name}-{p.partition_index}")
            return out

        return await self._retrying(op, "alter_partition_reassignments")

    async def list_partition_reassignments(
            self, partitions: Iterable[TP] | None = None, *, timeout_ms: int = 30000,
    ) -> dict[TP, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]:
        """Ongoing reassignments: {tp: (replicas, adding_replicas, removing_replicas)}."""
        topics = None
        if partitions is not None:
            grouped: dict[str, list[int]] = defaultdict(list)
            for t, p in partitions:
                grouped[t].append(p)
            topics = [{"name": t, "partition_indexes": ps} for t, ps in grouped.items()]

        async def op() -> dict[TP, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]:
            conn = await self.controller_connection()
            resp = await self._call(conn, LIST_PARTITION_REASSIGNMENTS, timeout=timeout_ms,
                                    topics=topics)
            raise_for(resp.error_code, resp.error_message, "ListPartitionReassignments")
            return {(t.name, int(p.partition_index)): (
                tuple(int(b) for b in p.replicas), tuple(int(b) for b in p.adding_replicas),
                tuple(int(b) for b in p.removing_replicas))
                for t in resp.topics for p in t.partitions}

        return await self._retrying(op, "list_partition_reassignments")

    # groups -------------------------------------------------------------------------------
    async def find_coordinator(self, group_id: str, *, refresh: bool = False) -> int:
        """Broker id of the group's coordinator (cached)."""
        if not refresh and group_id in self._coordinators:
            return self._coordinators[group_id]
        found = await self.find_coordinators([group_id])
        result = found[group_id]
        if isinstance(result, KafkaError):
            raise result
        return result

    async def find_coordinators(self, group_ids: Iterable[str]) -> dict[str, int | KafkaError]:
        """Coordinators of many groups (batched with FindCoordinator v4+)."""
        ids = list(dict.fromkeys(group_ids))
        out: dict[str, int | KafkaError] = {}
        delay = self.retry_backoff
        for attempt in range(self.retries + 1):
            todo = [g for g in ids if g not in out or (
                isinstance(out[g], KafkaError) and _retriable(out[g])  # type: ignore[arg-type]
                and attempt > 0)]
            if not todo:
                break
            if attempt:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
            try:
                conn = await self.any_connection()
                version = conn.version_for(FIND_COORDINATOR, _MAX[FIND_COORDINATOR])
                if version >= 4:
                    resp = await self._call(conn, FIND_COORDINATOR, key_type=0,
                                            coordinator_keys=todo)
                    entries = [(c.key, c) for c in resp.coordinators]
                else:
                    resps = await asyncio.gather(*(
                        self._call(conn, FIND_COORDINATOR, key=g, key_type=0) for g in todo))
                    entries = list(zip(todo, resps, strict=True))
            except KafkaError as exc:
                for g in todo:
                    out[g] = exc
                continue
            for key, c in entries:
                err = error_for(c.error_code, getattr(c, "error_message", None),
                                f"find coordinator for group {key}")
                if err is not None:
                    out[key] = err
                else:
                    out[key] = int(c.node_id)
                    self._coordinators[key] = int(c.node_id)
                    self._learn_broker(int(c.node_id), c.host, int(c.port))
            if not any(isinstance(v, KafkaError) and _retriable(v) for v in out.values()):
                break
        return out

    def _learn_broker(self, node_id: int, host: str, port: int) -> None:
        md = self._metadata
        if md is not None and md.broker(node_id) is None:
            brokers = tuple(sorted((*md.brokers, BrokerInfo(node_id, host, port)),
                                   key=lambda b: b.id))
            self._metadata = ClusterMetadata(md.cluster_id, md.controller_id, brokers,
                                             md.topics, md.topic_errors)

    async def _group_call(self, group_id: str, fn: Callable[[KafkaConnection], Awaitable[T]],
                          what: str) -> T:
        """Run fn against the group's coordinator, re-finding it on NOT_COORDINATOR etc."""
        async def op() -> T:
            try:
                coordinator = await self.find_coordinator(group_id)
                conn = await self.connection(coordinator)
                return await fn(conn)
            except KafkaError as exc:
                if exc.code in RETRIABLE_ROUTING:
                    self._coordinators.pop(group_id, None)
                raise

        return await self._retrying(op, what)

    async def list_groups(self, *, raise_errors: bool = False) -> list[GroupListing]:
        """Groups of every broker (each broker lists the groups it coordinates)."""
        md = await self.metadata([])

        async def one(broker: BrokerInfo) -> list[GroupListing]:
            try:
                conn = await self._get(broker.host, broker.port)
                resp = await self._call(conn, LIST_GROUPS, states_filter=[], types_filter=[])
                raise_for(resp.error_code, None, f"list groups on broker {broker.id}")
            except KafkaError:
                if raise_errors:
                    raise
                return []
            return [GroupListing(g.group_id, g.protocol_type, getattr(g, "group_state", None),
                                 broker.id) for g in resp.groups]

        found = await asyncio.gather(*(one(b) for b in md.brokers))
        groups = {g.group_id: g for batch in found for g in batch}
        return sorted(groups.values(), key=lambda g: g.group_id)

    async def describe_groups(self, group_ids: Iterable[str]) -> dict[str, GroupInfo]:
        """Describe groups (members with decoded assignments), batched per coordinator."""
        ids = list(dict.fromkeys(group_ids))
        coordinators = await self.find_coordinators(ids)
        by_coord: dict[int, list[str]] = defaultdict(list)
        out: dict[str, GroupInfo] = {}
        for g in ids:
            c = coordinators.get(g)
            if isinstance(c, int):
                by_coord[c].append(g)
            else:
                out[g] = GroupInfo(g, state="Unknown")

        def describe(gids: list[str], coord: int) -> Callable[[KafkaConnection], Awaitable[
                list[tuple[str, GroupInfo]]]]:
            async def fn(conn: KafkaConnection) -> list[tuple[str, GroupInfo]]:
                resp = await self._call(conn, DESCRIBE_GROUPS, groups=gids,
                                        include_authorized_operations=False)
                res = []
                for g in resp.groups:
                    err = error_for(g.error_code, getattr(g, "error_message", None),
                                    f"describe group {g.group_id}")
                    if err is not None and err.code in RETRIABLE_ROUTING:
                        raise err
                    res.append((g.group_id, _group_info(g, coord)))
                return res
            return fn

        async def one(coord: int, gids: list[str]) -> list[tuple[str, GroupInfo]]:
            try:  # one request for all groups of this coordinator
                return await describe(gids, coord)(await self.connection(coord))
            except KafkaError:
                pass
            res: list[tuple[str, GroupInfo]] = []
            for g in gids:  # coordinators moved: one group at a time, re-finding each
                try:
                    res += await self._group_call(
                        g, lambda conn, g=g: describe([g], self._coordinators.get(g, coord))(
                            conn), "describe_groups")
                except KafkaError:
                    res.append((g, GroupInfo(g, state="Unknown")))
            return res

        for batch in await asyncio.gather(*(one(c, gs) for c, gs in by_coord.items())):
            out.update(batch)
        return {g: out[g] for g in ids if g in out}

    async def _on_broker(self, broker_id: int,
                         fn: Callable[[KafkaConnection], Awaitable[T]]) -> T:
        return await fn(await self.connection(broker_id))

    async def list_consumer_group_offsets(
            self, group_id: str, partitions: Iterable[TP] | None = None,
            *, require_stable: bool = False) -> dict[TP, CommittedOffset]:
        """Committed offsets of a group (all its partitions, or those given)."""
        wanted = None
        if partitions is not None:
            grouped: dict[str, list[int]] = defaultdict(list)
            for t, p in partitions:
                grouped[t].append(p)
            wanted = [{"name": t, "partition_indexes": ps} for t, ps in grouped.items()]

        async def fn(conn: KafkaConnection) -> dict[TP, CommittedOffset]:
            version = conn.version_for(OFFSET_FETCH, _MAX[OFFSET_FETCH])
            if version >= 8:
                resp = await self._call(conn, OFFSET_FETCH, require_stable=require_stable,
                                        groups=[{"group_id": group_id, "topics": wanted}])
                g = resp.groups[0]
                raise_for(g.error_code, None, f"offset fetch for group {group_id}")
                topics = g.topics
            else:
                resp = await self._call(conn, OFFSET_FETCH, group_id=group_id, topics=wanted,
                                        require_stable=require_stable)
                raise_for(getattr(resp, "error_code", 0), None,
                          f"offset fetch for group {group_id}")
                topics = resp.topics
            out: dict[TP, CommittedOffset] = {}
            for t in topics:
                for p in t.partitions:
                    raise_for(p.error_code, None,
                              f"offset fetch for group {group_id} {t.name}-{p.partition_index}")
                    if int(p.committed_offset) >= 0 or partitions is not None:
                        out[(t.name, int(p.partition_index))] = CommittedOffset(
                            int(p.committed_offset), p.metadata,
                            int(getattr(p, "committed_leader_epoch", -1)))
            return out

        return await self._group_call(group_id, fn, "list_consumer_group_offsets")

    async def delete_groups(self, group_ids: Iterable[str]) -> dict[str, KafkaError | None]:
        """Delete (empty) groups; returns group -> None or the error (e.g. NonEmptyGroup)."""
        out: dict[str, KafkaError | None] = {}

        async def one(g: str) -> None:
            async def fn(conn: KafkaConnection) -> KafkaError | None:
                resp = await self._call(conn, DELETE_GROUPS, groups_names=[g])
                err = error_for(resp.results[0].error_code, None, f"delete group {g}")
                if err is not None and err.code in RETRIABLE_ROUTING:
                    raise err
                return err
            try:
                out[g] = await self._group_call(g, fn, "delete_groups")
            except KafkaError as exc:
                out[g] = exc

        await asyncio.gather(*(one(g) for g in dict.fromkeys(group_ids)))
        return out

    async def alter_consumer_group_offsets(self, group_id: str, offsets: Mapping[TP, int],
                                           metadata: str = "") -> None:
        """Commit offsets for an (empty) group: OffsetCommit, generation -1, no member."""
        grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for (t, p), off in offsets.items():
            grouped[t].append({"partition_index": p, "committed_offset": off,
                               "committed_leader_epoch": -1, "committed_metadata": metadata,
                               "commit_timestamp": -1})

        async def fn(conn: KafkaConnection) -> None:
            resp = await self._call(conn, OFFSET_COMMIT, group_id=group_id,
                                    generation_id_or_member_epoch=-1, generation_id=-1,
                                    member_id="", group_instance_id=None, retention_time=-1,
                                    topics=[{"name": t, "partitions": ps}
                                            for t, ps in grouped.items()])
            for t in resp.topics:
                for p in t.partitions:
                    raise_for(p.error_code, None,
                              f"commit offset for group {group_id} {t.name}-{p.partition_index}")

        await self._group_call(group_id, fn, "alter_consumer_group_offsets")

    async def reset_targets(self, topic: str, to: OffsetSpec | tuple[str, int],
                            partitions: Iterable[int] | None = None) -> dict[TP, int]:
        """The offsets a reset to earliest / latest / a timestamp (ms) / ("offset", n) would
        commit (kafka-consumer-groups.sh --dry-run): a timestamp after the last record maps to
        latest, as Kafka does."""
        parts = list(partitions) if partitions is not None else await self.partitions_of(topic)
        tps = [(topic, p) for p in parts]
        if isinstance(to, tuple):
            kind, value = to
            if kind != "offset":
                raise ValueError(f"bad reset target {to!r}")
            return dict.fromkeys(tps, int(value))
        found = await self.list_offsets(tps, to)
        target = {}
        latest: dict[TP, Any] | None = None
        for tp in tps:
            offset = found[tp].offset
            if offset < 0:  # no record at or after the timestamp: latest
                latest = latest or await self.list_offsets(tps, "latest")
                offset = latest[tp].offset
            target[tp] = offset
        return target

    async def reset_consumer_group_offsets(
            self, group_id: str, topic: str, to: OffsetSpec | tuple[str, int],
            partitions: Iterable[int] | None = None) -> dict[TP, int]:
        """Reset a group's offsets on a topic (see reset_targets). Returns the offsets
        committed."""
        target = await self.reset_targets(topic, to, partitions)
        await self.alter_consumer_group_offsets(group_id, target)
        return target

    async def group_lag(self, group_id: str) -> GroupInfo:
        """describe_groups + committed offsets + log end offsets -> GroupInfo with lag."""
        info = (await self.describe_groups([group_id]))[group_id]
        committed = await self.list_consumer_group_offsets(group_id)
        ends = await self.list_offsets(list(committed), "latest", raise_errors=False)
        return with_offsets(info, committed, {tp: r.offset for tp, r in ends.items()
                                              if isinstance(r, OffsetResult)})


    # transactions -------------------------------------------------------------------------
    async def list_transactions(self, *, states: Iterable[str] = (),
                                producer_ids: Iterable[int] = (),
                                min_duration_ms: int = -1) -> list[TransactionListing]:
        """ListTransactions on every broker (each lists the ids it coordinates), filtered by
        state names ("Ongoing", ...), producer ids and, from v1, time open (ms)."""
        md = await self.metadata([])
        filters = {"state_filters": list(states), "producer_id_filters": list(producer_ids),
                   "duration_filter": min_duration_ms}

        async def one(broker: BrokerInfo) -> list[TransactionListing]:
            conn = await self._get(broker.host, broker.port)
            resp = await self._request(conn, LIST_TRANSACTIONS, 1, filters)
            raise_for(resp.error_code, None, f"list transactions on broker {broker.id}")
            return [TransactionListing(t.transactional_id, int(t.producer_id),
                                       t.transaction_state, broker.id)
                    for t in resp.transaction_states]

        found = await asyncio.gather(*(one(b) for b in md.brokers))
        listings = {t.transactional_id: t for batch in found for t in batch}
        return sorted(listings.values(), key=lambda t: t.transactional_id)

    async def find_transaction_coordinators(self, transactional_ids: Iterable[str],
                                            ) -> dict[str, int | KafkaError]:
        """Coordinator broker of each transactional id (FindCoordinator key_type 1)."""
        ids = list(dict.fromkeys(transactional_ids))
        out: dict[str, int | KafkaError] = {}
        if not ids:
            return out

        async def op() -> None:
            conn = await self.any_connection()
            if conn.version_for(FIND_COORDINATOR, _MAX[FIND_COORDINATOR]) >= 4:
                resp = await self._call(conn, FIND_COORDINATOR, key_type=1,
                                        coordinator_keys=ids)
                entries = [(c.key, c) for c in resp.coordinators]
            else:
                resps = await asyncio.gather(*(
                    self._call(conn, FIND_COORDINATOR, key=t, key_type=1) for t in ids))
                entries = list(zip(ids, resps, strict=True))
            for key, c in entries:
                err = error_for(c.error_code, getattr(c, "error_message", None),
                                f"find transaction coordinator for {key}")
                if err is None:
                    out[key] = int(c.node_id)
                    self._learn_broker(int(c.node_id), c.host, int(c.port))
                else:
                    out[key] = err
            retry = next((v for v in out.values()
                          if isinstance(v, KafkaError) and v.code in RETRIABLE_ROUTING), None)
            if retry is not None:
                raise retry

        try:
            await self._retrying(op, "find_transaction_coordinators")
        except KafkaError as exc:
            for t in ids:
                out.setdefault(t, exc)
        return out

    async def describe_transactions(self, transactional_ids: Iterable[str],
                                    ) -> dict[str, TransactionDescription]:
        """DescribeTransactions, sent to each id's coordinator; failures carry `error`."""
        ids = list(dict.fromkeys(transactional_ids))
        coordinators = await self.find_transaction_coordinators(ids)
        by_coord: dict[int, list[str]] = defaultdict(list)
        out: dict[str, TransactionDescription] = {}
        for t in ids:
            c = coordinators.get(t)
            if isinstance(c, int):
                by_coord[c].append(t)
            else:
                out[t] = TransactionDescription(t, "", -1, -1, -1, -1, (), -1, c)

        async def one(coord: int, tids: list[str]) -> None:
            try:
                conn = await self.connection(coord)
                resp = await self._request(conn, DESCRIBE_TRANSACTIONS, 0,
                                           {"transactional_ids": tids})
            except KafkaError as exc:
                for t in tids:
                    out[t] = TransactionDescription(t, "", -1, -1, -1, -1, (), coord, exc)
                return
            for s in resp.transaction_states:
                start = _ms(s.transaction_start_time)
                parts = tuple(sorted((d.topic, int(p)) for d in s.topics for p in d.partitions))
                out[s.transactional_id] = TransactionDescription(
                    s.transactional_id, s.transaction_state, _ms(s.transaction_timeout),
                    start if start > 0 else -1, int(s.producer_id), int(s.producer_epoch),
                    parts, coord, error_for(s.error_code, None,
                                            f"describe transaction {s.transactional_id}"))

        await asyncio.gather(*(one(c, ts) for c, ts in by_coord.items()))
        return {t: out[t] for t in ids if t in out}

    async def describe_producers(self, partitions: Iterable[TP],
                                 ) -> dict[TP, list[ActiveProducer] | KafkaError]:
        """DescribeProducers on each partition's leader: its active (idempotent or
        transactional) producers and where each one's open transaction starts."""
        async def send(conn: KafkaConnection, tps: list[TP]) -> dict[TP, Any]:
            by_topic: dict[str, list[int]] = defaultdict(list)
            for t, p in tps:
                by_topic[t].append(p)
            resp = await self._request(conn, DESCRIBE_PRODUCERS, 0, {"topics": [
                {"name": t, "partition_indexes": ps} for t, ps in by_topic.items()]})
            out: dict[TP, Any] = {}
            for t in resp.topics:
                for p in t.partitions:
                    tp = (t.name, int(p.partition_index))
                    err = error_for(p.error_code, getattr(p, "error_message", None),
                                    f"describe producers {t.name}-{tp[1]}")
                    out[tp] = err if err is not None else [
                        ActiveProducer(int(a.producer_id), int(a.producer_epoch),
                                       int(a.last_sequence), int(a.last_timestamp),
                                       int(a.coordinator_epoch),
                                       int(a.current_txn_start_offset))
                        for a in p.active_producers]
            return out

        return await self._per_leader(partitions, send)

    async def stable_offsets(self, partitions: Iterable[TP],
                             ) -> dict[TP, tuple[int, int] | KafkaError]:
        """(last stable offset, high watermark) per partition: ListOffsets latest with
        read_committed and read_uncommitted. LSO < HW means an open transaction holds
        read_committed consumers back."""
        tps = list(partitions)
        lso, hw = await asyncio.gather(
            self.list_offsets(tps, "latest", isolation_level=1, raise_errors=False),
            self.list_offsets(tps, "latest", isolation_level=0, raise_errors=False))
        out: dict[TP, tuple[int, int] | KafkaError] = {}
        for tp in tps:
            a, b = lso.get(tp), hw.get(tp)
            if isinstance(a, OffsetResult) and isinstance(b, OffsetResult):
                out[tp] = (a.offset, b.offset)
            else:
                err = a if isinstance(a, KafkaError) else b
                out[tp] = err if isinstance(err, KafkaError) else error_for(  # type: ignore[assignment]
                    ErrorCode.unknown_server_error, None, f"stable offsets {tp}")
        return out


def with_offsets(info: GroupInfo, committed: Mapping[TP, CommittedOffset],
                 log_end: Mapping[TP, int]) -> GroupInfo:
    """GroupInfo with GroupOffset rows (committed, end offset, lag, owner) and total lag."""
    owners = {tp: m.member_id for m in info.members for tp in m.assignment}
    tps = sorted(set(committed) | set(owners))
    rows = []
    total = 0
    for tp in tps:
        c = committed.get(tp)
        off = c.offset if c is not None else -1
        end = log_end.get(tp)
        lag = max(0, end - off) if (end is not None and off >= 0) else None
        if lag is not None:
            total += lag
        rows.append(GroupOffset(tp[0], tp[1], off, end, lag, owners.get(tp),
                                c.metadata if c is not None else None))
    return GroupInfo(info.group_id, info.state, info.protocol_type, info.protocol, info.members,
                     tuple(rows), total if rows else 0, info.coordinator_id)


def _group_info(g: Any, coordinator: int | None) -> GroupInfo:
    members = []
    for m in g.members:
        assignment: tuple[TP, ...] = ()
        if g.protocol_type in ("consumer", ""):
            try:
                assignment = decode_assignment(m.member_assignment)
            except ValueError:
                assignment = ()
        members.append(MemberInfo(m.member_id, getattr(m, "group_instance_id", None),
                                  m.client_id, m.client_host, assignment))
    state = g.group_state if g.error_code == ErrorCode.none else (
        "Dead" if g.error_code == ErrorCode.group_id_not_found else "Unknown")
    return GroupInfo(g.group_id, state, g.protocol_type, g.protocol_data,
                     tuple(sorted(members, key=lambda m: m.member_id)), (), None, coordinator)


def _config_entry(c: Any) -> ConfigEntry:
    if hasattr(c, "config_source"):
        source = CONFIG_SOURCES.get(int(c.config_source), "UNKNOWN")
        is_default = source == "DEFAULT_CONFIG"
    else:
        is_default = bool(getattr(c, "is_default", False))
        source = "DEFAULT_CONFIG" if is_default else "UNKNOWN"
    return ConfigEntry(c.name, c.value, source, bool(c.read_only), bool(c.is_sensitive),
                       is_default, getattr(c, "documentation", None))


def _retriable(exc: KafkaError) -> bool:
    """Worth refreshing metadata and retrying (a broker we chose not to ask is not)."""
    return exc.code in RETRIABLE_ROUTING and not isinstance(exc, BrokerUnresponsiveError)


def _raise_first_routing(errors: Iterable[KafkaError | None]) -> None:
    for err in errors:
        if err is not None and err.code in RETRIABLE_ROUTING:
            raise err


def _raise_any(results: Iterable[Any]) -> None:
    for r in results:
        if isinstance(r, KafkaError):
            raise r


def now_ms() -> int:
    return int(time.time() * 1000)
