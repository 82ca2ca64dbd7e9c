"""Bad input over raw sockets never kills the broker, and other connections keep working.

Hypothesis generates random bytes, frames with random bodies, valid headers with garbage
bodies, truncated and byte-flipped copies of valid requests, oversized or negative size
prefixes and unknown api keys / versions. After every example a long-lived healthy
connection does an ApiVersions round trip; after every batch (each test) it produces and
fetches. The broker process must be alive throughout.
"""

from __future__ import annotations

import os
import socket
import struct
import uuid
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kio.schema.errors import ErrorCode

import core.broker.handlers  # noqa: F401 - importing registers every handler in REGISTRY
from core.broker.api import REGISTRY
from core.protocol.codec import decode_response
from core.records.batch import build_batch
from tests.fuzz.wire import Session, frame_request, read_frame, throw

pytestmark = pytest.mark.timeout(120)

#: KAFLAB_FUZZ_EXAMPLES=2000 for a longer, randomised exploration (the default is a fixed,
#: derandomised run that keeps CI fast and repeatable)
_EXAMPLES = int(os.environ.get("KAFLAB_FUZZ_EXAMPLES", "120"))
FUZZ = settings(max_examples=_EXAMPLES, deadline=None, derandomize="KAFLAB_FUZZ_EXAMPLES"
                not in os.environ, database=None, suppress_health_check=list(HealthCheck))
HEALTH_TOPIC = f"fz-health-{uuid.uuid4().hex[:6]}"
SCRATCH = f"fz-scratch-{uuid.uuid4().hex[:6]}"
MAX_REQUEST = 100 * 1024 * 1024  # socket.request.max.bytes default
KNOWN = {key: (spec.min_version, spec.max_version) for key, spec in REGISTRY.items()}


@pytest.fixture(scope="module")
def session(kafka_broker) -> Iterator[Session]:
    """The healthy connection, with the health and scratch topics created up front."""
    s = Session(kafka_broker.port, HEALTH_TOPIC)
    for name in (HEALTH_TOPIC, SCRATCH):
        created = s.call(19, 5, timeout=10000, validate_only=False, topics=[dict(
            name=name, num_partitions=1, replication_factor=1, assignments=[], configs=[])])
        assert created.topics[0].error_code == ErrorCode.none
    s.produce_and_consume()
    yield s
    s.close()


@pytest.fixture
def batch_check(kafka_broker, session) -> Iterator[None]:
    """After a batch of garbage: the broker lives, and produce + consume still work."""
    yield
    assert kafka_broker.proc.poll() is None, kafka_broker.log_text()[-3000:]
    session.ping()
    session.produce_and_consume()


def _after_example(kafka_broker, session: Session) -> None:
    assert kafka_broker.proc.poll() is None, kafka_broker.log_text()[-3000:]
    session.ping()


def _sized(body: bytes) -> bytes:
    return struct.pack(">i", len(body)) + body


def _templates() -> list[bytes]:
    """Well-formed requests (scratch topic only) whose copies get truncated and mutated."""
    batch = build_batch([(b"k", b"v" * 20, [("h", b"x")])] * 3, timestamp_ms=1_700_000_000_000)
    fetch_partition = dict(partition=0, fetch_offset=0, partition_max_bytes=1 << 16,
                           current_leader_epoch=-1, log_start_offset=-1, last_fetched_epoch=-1)
    return [
        frame_request(18, 3, client_software_name="fz", client_software_version="1"),
        frame_request(3, 12, topics=[dict(name=SCRATCH)], allow_auto_topic_creation=False,
                      include_topic_authorized_operations=False),
        frame_request(0, 9, transactional_id=None, acks=1, timeout=1000, topic_data=[
            dict(name=SCRATCH, partition_data=[dict(index=0, records=batch)])]),
        frame_request(1, 12, replica_id=-1, max_wait=0, min_bytes=1, max_bytes=1 << 20,
                      isolation_level=0, session_id=0, session_epoch=-1, rack_id="",
                      forgotten_topics_data=[], topics=[dict(topic=SCRATCH,
                                                             partitions=[fetch_partition])]),
        frame_request(2, 7, replica_id=-1, isolation_level=0, topics=[dict(
            name=SCRATCH, partitions=[dict(partition_index=0, timestamp=-1,
                                           current_leader_epoch=-1)])]),
        frame_request(32, 4, include_synonyms=True, include_documentation=True,
                      resources=[dict(resource_type=2, resource_name=SCRATCH,
                                      configuration_keys=None)]),
        frame_request(44, 1, validate_only=True, resources=[dict(
            resource_type=2, resource_name=SCRATCH, configs=[dict(
                name="retention.ms", config_operation=0, value="1000")])]),
        frame_request(35, 4, topics=None),
        frame_request(60, 1, include_cluster_authorized_operations=True),
        frame_request(61, 0, topics=[dict(name=SCRATCH, partition_indexes=[0])]),
        frame_request(23, 4, replica_id=-1, topics=[dict(topic=SCRATCH, partitions=[dict(
            partition=0, current_leader_epoch=-1, leader_epoch=0)])]),
        frame_request(21, 2, timeout=1000, topics=[dict(name=SCRATCH, partitions=[dict(
            partition_index=0, offset=0)])]),
        frame_request(17, 1, mechanism="PLAIN"),
        frame_request(36, 2, auth_bytes=b"\0u\0p"),
        frame_request(43, 2, election_type=0, timeout=1000,
                      topic_partitions=[dict(topic=SCRATCH, partitions=[0])]),
    ]


TEMPLATES = _templates()


# random bytes and random frames ----------------------------------------------------------
@FUZZ
@given(payload=st.binary(min_size=1, max_size=600))
def test_random_bytes(kafka_broker, session, batch_check, payload):
    throw(kafka_broker.port, payload, half_close=True, wait=0.3)
    _after_example(kafka_broker, session)


@FUZZ
@given(body=st.binary(max_size=600))
def test_random_frames(kafka_broker, session, batch_check, body):
    throw(kafka_broker.port, _sized(body), wait=0.3)
    _after_example(kafka_broker, session)


@FUZZ
@given(key=st.sampled_from(sorted(KNOWN)), data=st.data(), client_id=st.one_of(
    st.none(), st.text(max_size=20)), body=st.binary(max_size=400))
def test_valid_headers_with_garbage_bodies(kafka_broker, session, batch_check, key, data,
                                           client_id, body):
    low, high = KNOWN[key]
    version = data.draw(st.integers(low, high))
    raw_client = None if client_id is None else client_id.encode()
    header = struct.pack(">hhih", key, version, 99, -1 if raw_client is None else
                         len(raw_client)) + (raw_client or b"")
    throw(kafka_broker.port, _sized(header + body), wait=0.3)
    _after_example(kafka_broker, session)


# truncated and mutated valid requests ----------------------------------------------------
@FUZZ
@given(template=st.sampled_from(TEMPLATES), data=st.data())
def test_truncated_requests(kafka_broker, session, batch_check, template, data):
    cut = data.draw(st.integers(1, len(template) - 1))
    keep_prefix = data.draw(st.booleans())
    if keep_prefix:  # the size promises more than is sent: EOF must close the connection
        assert throw(kafka_broker.port, template[:cut], half_close=True) == "closed"
    elif cut > 4:  # a complete frame whose body stops early
        throw(kafka_broker.port, _sized(template[4:cut]), wait=0.3)
    _after_example(kafka_broker, session)


@FUZZ
@given(template=st.sampled_from(TEMPLATES), data=st.data())
def test_mutated_requests(kafka_broker, session, batch_check, template, data):
    frame = bytearray(template)
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(4, len(frame) - 1))  # keep the size prefix honest
        frame[pos] = data.draw(st.integers(0, 255))
    throw(kafka_broker.port, bytes(frame), wait=0.3)
    _after_example(kafka_broker, session)


# sizes, api keys, versions ---------------------------------------------------------------
@FUZZ
@given(size=st.one_of(st.integers(MAX_REQUEST + 1, 2**31 - 1), st.integers(-(2**31), -1)),
       tail=st.binary(max_size=64))
def test_oversized_and_negative_size_prefixes_are_refused(kafka_broker, session, batch_check,
                                                          size, tail):
    assert throw(kafka_broker.port, struct.pack(">i", size) + tail, wait=2) == "closed"
    _after_example(kafka_broker, session)


@FUZZ
@given(key=st.integers(-(2**15), 2**15 - 1), version=st.integers(-(2**15), 2**15 - 1),
       body=st.binary(max_size=64))
def test_unknown_api_keys_and_versions_close_the_connection(kafka_broker, session, batch_check,
                                                            key, version, body):
    if key == 18 or (key in KNOWN and KNOWN[key][0] <= version <= KNOWN[key][1]):
        return  # supported: not what this test is about
    header = struct.pack(">hhih", key, version, 5, 4) + b"fuzz"
    assert throw(kafka_broker.port, _sized(header + body), wait=2) == "closed"
    _after_example(kafka_broker, session)


@FUZZ
@given(version=st.one_of(st.integers(4, 2**15 - 1), st.integers(-(2**15), -1)),
       body=st.binary(max_size=64))
def test_api_versions_unsupported_version_gets_v0_answer(kafka_broker, session, batch_check,
                                                         version, body):
    header = struct.pack(">hhih", 18, version, 1234, 4) + b"fuzz"
    with socket.create_connection(("127.0.0.1", kafka_broker.port), timeout=5) as sock:
        sock.sendall(_sized(header + body))
        correlation_id, response = decode_response(18, 0, read_frame(sock))
    assert correlation_id == 1234
    assert response.error_code == ErrorCode.unsupported_version
    versions = {k.api_key: (k.min_version, k.max_version) for k in response.api_keys}
    assert versions[18] == KNOWN[18]
    _after_example(kafka_broker, session)


def test_many_garbage_connections_at_once(kafka_broker, session):
    """A burst of half-open garbage connections, then the healthy one still works."""
    socks = []
    try:
        for i in range(200):
            sock = socket.create_connection(("127.0.0.1", kafka_broker.port), timeout=5)
            sock.sendall(struct.pack(">i", 1000 + i) + b"\x00\x12")  # incomplete frames
            socks.append(sock)
        session.ping()
        session.produce_and_consume()
    finally:
        for sock in socks:
            sock.close()
    assert kafka_broker.proc.poll() is None
    session.produce_and_consume()
