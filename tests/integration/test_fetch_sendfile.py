"""Fetch served through sendfile returns the same bytes as Fetch served by read-and-copy.

With KAFLAB_SENDFILE=1 the broker sends record bytes it appended itself (CRC-checked at
append), or that an earlier fetch read and CRC-checked, from the segment file with os.sendfile
(by default it reads and copies them); bytes found on disk are read, checked and copied at
their first fetch (core/broker/handlers/fetch.py,
core/network/server.py). Raw Fetch requests on one socket: the response frames of every pass
must be equal, and the record bytes must equal the segment files.
"""

from __future__ import annotations

import socket
import struct
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from core.protocol.build import build
from core.protocol.codec import decode_response, encode_request, request_class
from tests.fixtures import BrokerProcess

pytestmark = pytest.mark.timeout(120)

SEGMENT_BYTES = 256 * 1024
RECORDS = 20_000
FETCH_VERSION = 12


def _value(i: int) -> bytes:
    return f"v{i:08d}:".encode() + bytes([65 + i % 26]) * 100


def _fill(broker: BrokerProcess, topic: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1,
                                  config={"segment.bytes": str(SEGMENT_BYTES)})])[topic].result(30)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": 1, "linger.ms": 20,
                         "batch.size": 64 * 1024})
    for i in range(RECORDS):
        producer.produce(topic, _value(i), partition=i % partitions)
        if i % 5000 == 0:
            producer.poll(0)
    assert producer.flush(30) == 0


class RawFetcher:
    """Fetch requests on one plain socket; returns whole response frames."""

    def __init__(self, broker: BrokerProcess) -> None:
        self.sock = socket.create_connection(("127.0.0.1", broker.port), timeout=20)
        self.correlation = 0

    def fetch(self, topic: str, offsets: dict[int, int], partition_max: int,
              max_bytes: int = 50 * 1024 * 1024) -> tuple[bytes, Any]:
        self.correlation += 1
        body = build(request_class(1, FETCH_VERSION), replica_id=-1, max_wait=0, min_bytes=0,
                     max_bytes=max_bytes, isolation_level=0, session_id=0, session_epoch=-1,
                     topics=[dict(topic=topic, partitions=[
                         dict(partition=p, current_leader_epoch=-1, fetch_offset=o,
                              last_fetched_epoch=-1, log_start_offset=-1,
                              partition_max_bytes=partition_max)
                         for p, o in sorted(offsets.items())])],
                     forgotten_topics_data=[], rack_id="")
        self.sock.sendall(encode_request(1, FETCH_VERSION, self.correlation, "raw", body))
        (size,) = struct.unpack(">i", self._recv(4))
        frame = self._recv(size)
        correlation, response = decode_response(1, FETCH_VERSION, frame)
        assert correlation == self.correlation
        return frame, response

    def _recv(self, n: int) -> bytes:
        out = bytearray()
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            assert chunk, "broker closed the connection"
            out += chunk
        return bytes(out)

    def read_all(self, topic: str, partitions: int, partition_max: int
                 ) -> tuple[list[bytes], dict[int, bytes]]:
        """Fetch every partition from 0 to its high watermark: (response frames without their
        correlation id, records per partition)."""
        offsets = dict.fromkeys(range(partitions), 0)
        records = {p: bytearray() for p in offsets}
        frames = []
        while offsets:
            frame, response = self.fetch(topic, offsets, partition_max)
            frames.append(frame[4:])  # all but the correlation id
            for part in response.responses[0].partitions:
                p = part.partition_index
                assert part.error_code == 0, part
                data = bytes(part.records or b"")
                records[p] += data
                offsets[p] = _next_offset(data, offsets[p])
                if offsets[p] >= part.high_watermark:
                    del offsets[p]
        return frames, {p: bytes(r) for p, r in records.items()}

    def close(self) -> None:
        self.sock.close()


def _next_offset(data: bytes, default: int) -> int:
    """The offset after the last whole batch in ``data``."""
    pos, nxt = 0, default
    while pos + 61 <= len(data):
        base, length = struct.unpack_from(">qi", data, pos)
        (last_delta,) = struct.unpack_from(">i", data, pos + 23)
        nxt = base + last_delta + 1
        pos += 12 + length
    return nxt


def _segment_bytes(broker: BrokerProcess, topic: str, partition: int) -> bytes:
    files = sorted((broker.data_dir / "data" / f"{topic}-{partition}").glob("*.log"))
    return b"".join(Path(f).read_bytes() for f in files)


@pytest.mark.parametrize("sendfile", ["1", "0"])
def test_sendfile_fetch_is_byte_identical_to_copied_fetch(
        broker_factory: Any, monkeypatch: pytest.MonkeyPatch, sendfile: str) -> None:
    """Three passes over the same log: bytes this broker appended (checked at append: sent
    with sendfile, or read without a second check), read + CRC check + copy after a restart
    (the segments now come from disk), and the now known-good ranges again. Same frames, same
    bytes as the files, with KAFLAB_SENDFILE=1 and with the default (read + copy)."""
    monkeypatch.setenv("KAFLAB_SENDFILE", sendfile)  # the broker process inherits it
    broker = broker_factory()
    _fill(broker, "sf", 1)
    assert len(list((broker.data_dir / "data" / "sf-0").glob("*.log"))) >= 4
    passes = []
    for restart in (False, True, False):
        if restart:
            broker.restart()
        raw = RawFetcher(broker)
        try:
            passes.append(raw.read_all("sf", 1, partition_max=1024 * 1024))
        finally:
            raw.close()
    (appended, records), (copied, again), (checked, third) = passes
    assert len(copied) > 4
    assert appended == copied == checked
    assert records[0] == again[0] == third[0] == _segment_bytes(broker, "sf", 0)
    assert "fails its CRC32C" not in broker.log_text()


def test_large_multi_partition_fetch_spanning_segments(
        broker_factory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """One request for 3 partitions with 50 MiB limits: with KAFLAB_SENDFILE=1 responses carry
    one file region per partition (each up to the end of a 256 KiB segment); a consumer reading
    it all through sendfile sees every record once, in order, CRC-checked by the client."""
    monkeypatch.setenv("KAFLAB_SENDFILE", "1")
    broker = broker_factory()
    _fill(broker, "span", 3)
    raw = RawFetcher(broker)
    try:
        first, records = raw.read_all("span", 3, partition_max=50 * 1024 * 1024)
        second, again = raw.read_all("span", 3, partition_max=50 * 1024 * 1024)
    finally:
        raw.close()
    assert second == first
    for p in range(3):
        assert records[p] == again[p] == _segment_bytes(broker, "span", p)
        assert len(list((broker.data_dir / "data" / f"span-{p}").glob("*.log"))) >= 2
    # a real client, after the broker has checked every range: everything via sendfile
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "span",
                         "enable.auto.commit": False, "check.crcs": True,
                         "fetch.max.bytes": 50 * 1024 * 1024,
                         "max.partition.fetch.bytes": 50 * 1024 * 1024})
    consumer.assign([TopicPartition("span", p, 0) for p in range(3)])
    got: dict[int, list[bytes]] = {0: [], 1: [], 2: []}
    try:
        while sum(map(len, got.values())) < RECORDS:
            for msg in consumer.consume(10_000, 5.0):
                assert msg.error() is None, msg.error()
                assert msg.offset() == len(got[msg.partition()])
                got[msg.partition()].append(msg.value())
    finally:
        consumer.close()
    for p in range(3):
        assert got[p] == [_value(i) for i in range(p, RECORDS, 3)]
