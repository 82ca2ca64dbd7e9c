"""Well-formed request templates for every API the broker registers, for the wire fuzz tests.

`templates()` returns one frame per (api key, version): each registered key at its max version
and, when that version is flexible but older supported versions are not, also at the newest
non-flexible one (the two encodings differ: compact strings/arrays and tagged fields). The fuzz
tests truncate and mutate copies of these frames.

Every template is harmless to the one broker the fuzz module shares: it names the scratch
topic / scratch group / a scratch transactional id, ids nobody uses, or a topic that does not
exist; APIs that have it use validate_only. Requests that could change the cluster itself
(BrokerRegistration, BrokerHeartbeat, the raft APIs) carry values the broker refuses, chosen so
that no mutation of up to four bytes (the most `test_mutated_requests` makes) turns them into a
request it would accept: see the comments at those templates.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import core.broker.handlers  # noqa: F401 - importing registers every handler in REGISTRY
from core.broker.api import REGISTRY
from core.protocol.codec import request_class
from core.records.batch import build_batch
from tests.fuzz.wire import frame_request

_RUN = uuid.uuid4().hex[:6]
#: produced to and fetched by the healthy session only; no template names it
HEALTH_TOPIC = f"fz-health-{_RUN}"
#: the topic (1 partition) templates may read, write, reconfigure and grow
SCRATCH = f"fz-scratch-{_RUN}"
#: scratch consumer group and transactional id
GROUP = f"fz-group-{_RUN}"
TXN_ID = f"fz-txn-{_RUN}"
#: names that exist nowhere: deletions target these
DOOMED_TOPIC = f"fz-doomed-{uuid.uuid4().hex[:6]}"
DOOMED_GROUP = f"fz-doomed-group-{uuid.uuid4().hex[:6]}"
#: a producer id no transaction uses
PRODUCER_ID = 0x3A5B_7C9D_1E2F
METADATA_TOPIC = "__cluster_metadata"
#: the correlation id every template carries
CORRELATION_ID = 7
#: refused cluster id: Vote/BeginQuorumEpoch/EndQuorumEpoch/FetchSnapshot/BrokerRegistration
#: answer INCONSISTENT_CLUSTER_ID (a random 22-char id cannot be reached by 4 byte flips)
FOREIGN_CLUSTER = f"fz-foreign-{uuid.uuid4().hex[:11]}"
#: a broker id differing from every small id (the real broker is 1) in all four bytes,
#: and an epoch differing from -1 and from any small epoch in all eight bytes
FOREIGN_BROKER = 0x7EAD_BEEF
FOREIGN_EPOCH = 0x1234_5678_9ABC_DEF0


@dataclass(frozen=True, slots=True)
class Template:
    """One well-formed request frame (size prefix included)."""

    key: int
    version: int
    label: str
    frame: bytes

    @property
    def id(self) -> str:
        return f"{self.key}v{self.version}-{self.label}"


def _records() -> bytes:
    return build_batch([(b"k", b"v" * 20, [("h", b"x")])] * 3, timestamp_ms=1_700_000_000_000)


def _fetch_partition(partition: int = 0) -> dict[str, Any]:
    return dict(partition=partition, fetch_offset=0, partition_max_bytes=1 << 16,
                current_leader_epoch=-1, log_start_offset=-1, last_fetched_epoch=-1)


def _fetch(topic: str) -> dict[str, Any]:
    return dict(replica_id=-1, max_wait=0, min_bytes=1, max_bytes=1 << 20, isolation_level=0,
                session_id=0, session_epoch=-1, rack_id="", forgotten_topics_data=[],
                topics=[dict(topic=topic, partitions=[_fetch_partition()])])


def _scratch_partitions(**fields: Any) -> list[dict[str, Any]]:
    return [dict(name=SCRATCH, partitions=[dict(partition_index=0, **fields)])]


def _raft_partitions(**fields: Any) -> list[dict[str, Any]]:
    return [dict(topic_name=METADATA_TOPIC, partitions=[dict(partition_index=0, **fields)])]


#: api key -> [(label, request fields)]. Field names are kio's; one dict may carry the
#: names of several versions (build() keeps those the version has), e.g. FindCoordinator's
#: `key` (v0-3) and `coordinator_keys` (v4).
_FIELDS: dict[int, list[tuple[str, Callable[[], dict[str, Any]]]]] = {
    0: [("produce", lambda: dict(transactional_id=None, acks=1, timeout=1000, topic_data=[
        dict(name=SCRATCH, partition_data=[dict(index=0, records=_records())])]))],
    1: [("fetch", lambda: _fetch(SCRATCH)),
        # the raft path of Fetch (handle_metadata_fetch): refused, this broker is no voter
        ("fetch-metadata-log", lambda: _fetch(METADATA_TOPIC))],
    2: [("list-offsets", lambda: dict(replica_id=-1, isolation_level=0, topics=[dict(
        name=SCRATCH, partitions=[dict(partition_index=0, timestamp=-1,
                                       current_leader_epoch=-1)])]))],
    3: [("metadata", lambda: dict(topics=[dict(name=SCRATCH)], allow_auto_topic_creation=False,
                                  include_cluster_authorized_operations=False,
                                  include_topic_authorized_operations=False))],
    8: [("offset-commit", lambda: dict(
        group_id=GROUP, generation_id_or_member_epoch=-1, member_id="", group_instance_id=None,
        retention_time=-1, topics=_scratch_partitions(
            committed_offset=0, committed_leader_epoch=-1, committed_metadata="fz")))],
    9: [("offset-fetch", lambda: dict(
        group_id=GROUP, topics=[dict(name=SCRATCH, partition_indexes=[0])],
        groups=[dict(group_id=GROUP, member_id=None, member_epoch=-1,
                     topics=[dict(name=SCRATCH, partition_indexes=[0])])],
        require_stable=False))],
    10: [("find-coordinator", lambda: dict(key=GROUP, key_type=0, coordinator_keys=[GROUP]))],
    # member_id "" -> MEMBER_ID_REQUIRED (v4+): the join never waits for a rebalance
    11: [("join-group", lambda: dict(
        group_id=GROUP, session_timeout=10_000, rebalance_timeout=10_000, member_id="",
        group_instance_id=None, protocol_type="consumer",
        protocols=[dict(name="range", metadata=b"\0\1\0\0\0\1\0\1a\0\0\0\0")],
        reason="fuzz"))],
    12: [("heartbeat", lambda: dict(group_id=GROUP, generation_id=1, member_id="fz-member",
                                     group_instance_id=None))],
    13: [("leave-group", lambda: dict(group_id=GROUP, member_id="fz-member", members=[
        dict(member_id="fz-member", group_instance_id=None, reason="fuzz")]))],
    14: [("sync-group", lambda: dict(
        group_id=GROUP, generation_id=1, member_id="fz-member", group_instance_id=None,
        protocol_type="consumer", protocol_name="range",
        assignments=[dict(member_id="fz-member", assignment=b"\0\1\0\0\0\0\0\0\0\0")]))],
    15: [("describe-groups", lambda: dict(groups=[GROUP],
                                          include_authorized_operations=True))],
    16: [("list-groups", lambda: dict(states_filter=["Stable", "Empty"],
                                      types_filter=["consumer"]))],
    17: [("sasl-handshake", lambda: dict(mechanism="PLAIN"))],
    18: [("api-versions", lambda: dict(client_software_name="fz",
                                       client_software_version="1"))],
    19: [("create-topics", lambda: dict(
        topics=[dict(name=f"fz-created-{_RUN}", num_partitions=1, replication_factor=1,
                     assignments=[], configs=[dict(name="retention.ms", value="60000")])],
        timeout=1000, validate_only=True))],
    20: [("delete-topics", lambda: dict(topic_names=[DOOMED_TOPIC], timeout=1000))],
    21: [("delete-records", lambda: dict(timeout=1000, topics=_scratch_partitions(offset=0)))],
    22: [("init-producer-id", lambda: dict(transactional_id=TXN_ID, transaction_timeout=60_000,
                                          producer_id=-1, producer_epoch=-1))],
    23: [("offset-for-leader-epoch", lambda: dict(replica_id=-1, topics=[dict(
        topic=SCRATCH, partitions=[dict(partition=0, current_leader_epoch=-1,
                                        leader_epoch=0)])]))],
    # v4 (broker-to-broker, KIP-890) batches transactions; v0-3 name one
    24: [("add-partitions-to-txn", lambda: dict(
        transactions=[dict(transactional_id=TXN_ID, producer_id=PRODUCER_ID, producer_epoch=0,
                           verify_only=True, topics=[dict(name=SCRATCH, partitions=[0])])],
        v3_and_below_transactional_id=TXN_ID, v3_and_below_producer_id=PRODUCER_ID,
        v3_and_below_producer_epoch=0,
        v3_and_below_topics=[dict(name=SCRATCH, partitions=[0])]))],
    25: [("add-offsets-to-txn", lambda: dict(transactional_id=TXN_ID, producer_id=PRODUCER_ID,
                                             producer_epoch=0, group_id=GROUP))],
    26: [("end-txn", lambda: dict(transactional_id=TXN_ID, producer_id=PRODUCER_ID,
                                  producer_epoch=0, committed=False))],
    # an abort marker for a producer with no transaction, on the scratch partition only
    27: [("write-txn-markers", lambda: dict(markers=[dict(
        producer_id=PRODUCER_ID, producer_epoch=0, transaction_result=False,
        topics=[dict(name=SCRATCH, partition_indexes=[0])], coordinator_epoch=0)]))],
    28: [("txn-offset-commit", lambda: dict(
        transactional_id=TXN_ID, group_id=GROUP, producer_id=PRODUCER_ID, producer_epoch=0,
        generation_id=-1, member_id="", group_instance_id=None,
        topics=_scratch_partitions(committed_offset=0, committed_leader_epoch=-1,
                                   committed_metadata=None)))],
    29: [("describe-acls", lambda: dict(resource_type_filter=1, resource_name_filter=None,
                                        pattern_type_filter=1, principal_filter=None,
                                        host_filter=None, operation=1, permission_type=1))],
    30: [("create-acls", lambda: dict(creations=[dict(
        resource_type=2, resource_name=SCRATCH, resource_pattern_type=3, principal="User:fz",
        host="*", operation=3, permission_type=3)]))],
    31: [("delete-acls", lambda: dict(filters=[dict(
        resource_type_filter=2, resource_name_filter=SCRATCH, pattern_type_filter=3,
        principal_filter=None, host_filter=None, operation=1, permission_type=1)]))],
    32: [("describe-configs", lambda: dict(
        include_synonyms=True, include_documentation=True,
        resources=[dict(resource_type=2, resource_name=SCRATCH, configuration_keys=None)]))],
    33: [("alter-configs", lambda: dict(validate_only=True, resources=[dict(
        resource_type=2, resource_name=SCRATCH,
        configs=[dict(name="retention.ms", value="60000")])]))],
    34: [("alter-replica-log-dirs", lambda: dict(dirs=[dict(
        path="/nonexistent-fz", topics=[dict(name=SCRATCH, partitions=[0])])]))],
    35: [("describe-log-dirs", lambda: dict(topics=None))],
    36: [("sasl-authenticate", lambda: dict(auth_bytes=b"\0u\0p"))],
    37: [("create-partitions", lambda: dict(
        topics=[dict(name=SCRATCH, count=2, assignments=None)], timeout=1000,
        validate_only=True))],
    42: [("delete-groups", lambda: dict(groups_names=[DOOMED_GROUP]))],
    43: [("elect-leaders", lambda: dict(election_type=0, timeout=1000, topic_partitions=[
        dict(topic=SCRATCH, partitions=[0])]))],
    44: [("incremental-alter-configs", lambda: dict(validate_only=True, resources=[dict(
        resource_type=2, resource_name=SCRATCH,
        configs=[dict(name="retention.ms", config_operation=0, value="60000")])]))],
    # replicas None = cancel: NO_REASSIGNMENT_IN_PROGRESS
    45: [("alter-partition-reassignments", lambda: dict(timeout=1000, topics=[dict(
        name=SCRATCH, partitions=[dict(partition_index=0, replicas=None)])]))],
    46: [("list-partition-reassignments", lambda: dict(timeout=1000, topics=[dict(
        name=SCRATCH, partition_indexes=[0])]))],
    47: [("offset-delete", lambda: dict(group_id=GROUP, topics=_scratch_partitions()))],
    # the raft APIs: a single broker runs a local metadata log (no quorum), so these answer
    # INCONSISTENT_VOTER_SET; the foreign cluster id is refused by a quorum member as well
    50: [("describe-user-scram-credentials", lambda: dict(users=[dict(name="fz-user")]))],
    52: [("vote", lambda: dict(cluster_id=FOREIGN_CLUSTER, topics=_raft_partitions(
        replica_epoch=FOREIGN_BROKER, replica_id=FOREIGN_BROKER, last_offset_epoch=0,
        last_offset=0)))],
    53: [("begin-quorum-epoch", lambda: dict(cluster_id=FOREIGN_CLUSTER, topics=_raft_partitions(
        leader_id=FOREIGN_BROKER, leader_epoch=FOREIGN_BROKER)))],
    54: [("end-quorum-epoch", lambda: dict(cluster_id=FOREIGN_CLUSTER, topics=_raft_partitions(
        leader_id=FOREIGN_BROKER, leader_epoch=FOREIGN_BROKER,
        preferred_successors=[FOREIGN_BROKER])))],
    55: [("describe-quorum", lambda: dict(topics=_raft_partitions()))],
    # refused: STALE_BROKER_EPOCH (no broker FOREIGN_BROKER at FOREIGN_EPOCH), and the topic
    # id is unknown (a random uuid cannot become the scratch topic's)
    56: [("alter-partition", lambda: dict(
        broker_id=FOREIGN_BROKER, broker_epoch=FOREIGN_EPOCH, topics=[dict(
            topic_id=uuid.uuid4(), partitions=[dict(partition_index=0, leader_epoch=0,
                                                    new_isr=[FOREIGN_BROKER],
                                                    new_isr_with_epochs=[dict(
                                                        broker_id=FOREIGN_BROKER,
                                                        broker_epoch=FOREIGN_EPOCH)],
                                                    leader_recovery_state=0,
                                                    partition_epoch=0)])]))],
    59: [("fetch-snapshot", lambda: dict(
        cluster_id=FOREIGN_CLUSTER, replica_id=FOREIGN_BROKER, max_bytes=1 << 16,
        topics=[dict(name=METADATA_TOPIC, partitions=[dict(
            partition=0, current_leader_epoch=0, snapshot_id=dict(end_offset=0, epoch=0),
            position=0, replica_directory_id=None)])]))],
    60: [("describe-cluster", lambda: dict(include_cluster_authorized_operations=True,
                                           endpoint_type=1))],
    61: [("describe-producers", lambda: dict(topics=[dict(name=SCRATCH,
                                                         partition_indexes=[0])]))],
    # refused: foreign cluster id (a registration would add a broker to the cluster)
    62: [("broker-registration", lambda: dict(
        broker_id=FOREIGN_BROKER, cluster_id=FOREIGN_CLUSTER, incarnation_id=uuid.uuid4(),
        listeners=[dict(name="PLAINTEXT", host="127.0.0.1", port=9, security_protocol=0)],
        features=[], rack=None))],
    # refused: BROKER_ID_NOT_REGISTERED. A heartbeat for broker 1 with broker_epoch -1 (or
    # its real epoch) and want_fence would fence the only broker; reaching that from these
    # values takes at least 4 + 7 changed bytes, more than test_mutated_requests makes.
    63: [("broker-heartbeat", lambda: dict(
        broker_id=FOREIGN_BROKER, broker_epoch=FOREIGN_EPOCH, current_metadata_offset=0,
        want_fence=False, want_shut_down=False))],
    65: [("describe-transactions", lambda: dict(transactional_ids=[TXN_ID]))],
    66: [("list-transactions", lambda: dict(
        state_filters=["Ongoing"], producer_id_filters=[PRODUCER_ID], duration_filter=-1,
        transactional_id_pattern=None))],
    67: [("allocate-producer-ids", lambda: dict(broker_id=FOREIGN_BROKER,
                                                broker_epoch=FOREIGN_EPOCH))],
}


def template_versions(key: int) -> list[int]:
    """The versions of api `key` that get a template: the max registered version and, when
    that one is flexible, the newest supported non-flexible version (if any)."""
    spec = REGISTRY[key]
    versions = [spec.max_version]
    if request_class(key, spec.max_version).__flexible__:
        older = [v for v in range(spec.min_version, spec.max_version)
                 if not request_class(key, v).__flexible__]
        if older:
            versions.insert(0, older[-1])
    return versions


def missing_templates() -> list[str]:
    """Registered api keys (and versions) without a template, as readable names."""
    from kio.schema.index import api_key_map
    return [f"{key} ({api_key_map.get(key, '?')})" for key in sorted(REGISTRY)
            if key not in _FIELDS]


def templates() -> list[Template]:
    """One frame per (registered api key, version in template_versions, label)."""
    out: list[Template] = []
    for key in sorted(REGISTRY):
        for label, fields in _FIELDS.get(key, []):
            for version in template_versions(key):
                frame = frame_request(key, version, CORRELATION_ID, "fuzz", **fields())
                out.append(Template(key, version, label, frame))
    return out


def unknown_field_names() -> list[str]:
    """Top-level template field names that no supported version of the request has (a typo
    would otherwise be dropped silently by build())."""
    bad: list[str] = []
    for key, entries in _FIELDS.items():
        spec = REGISTRY.get(key)
        if spec is None:
            bad.append(f"api {key} has a template but no handler")
            continue
        names: set[str] = set()
        for version in range(spec.min_version, spec.max_version + 1):
            names |= {f.name for f in dataclasses.fields(request_class(key, version))}
        bad += [f"{key} {label}: {name}" for label, fields in entries for name in fields()
                if name not in names]
    return bad
