"""A loopback Kafka "sink": the ceiling a client reaches against a server that does no work.

Run: ``python -m bench.sink --port P [--batch-records 9000] [--record-bytes 100]
[--fetch-delay-ms D]``; prints ``ready port=P`` when listening. It is a tiny asyncio server
using core.protocol.codec that answers ApiVersions, Metadata (itself as broker 1, leader of
partition 0 of every topic asked for), Produce (acknowledges everything, stores nothing), Fetch
(serves one canned record batch, repeated, with its base offset patched to the requested offset:
an endless log) and FindCoordinator (itself). Nothing is written to disk and no record is looked
at, so a client's throughput against it is what the client (and loopback TCP) can do on this
machine.

``--fetch-delay-ms`` holds every Fetch answer back by D ms (responses still leave in request
order): it models a slower server, to show how a client's throughput depends on how fast the
server answers (librdkafka's queue backoff, see docs/benchmarks.md "Single broker").
"""

from __future__ import annotations

import argparse
import asyncio
import struct
import time
import uuid
from collections import deque

from core.protocol.build import build
from core.protocol.codec import (
    decode_body,
    decode_header,
    encode_response,
    request_class,
    response_class,
)
from core.records.batch import build_batch

APIS = {0: (3, 9), 1: (4, 12), 3: (1, 12), 10: (0, 3), 18: (0, 3)}
_SIZE = struct.Struct(">i")
_OFFSET = struct.Struct(">q")


class Sink:
    def __init__(self, host: str, port: int, batch: bytes, batch_records: int,
                 fetch_delay_s: float = 0.0) -> None:
        self.host = host
        self.fetch_delay_s = fetch_delay_s
        self.port = port
        self.batch = batch
        self.batch_records = batch_records
        self.produced = 0

    def handle(self, frame: bytes) -> bytes:
        header, pos = decode_header(frame)
        key, version = header.api_key, header.api_version
        request_class(key, version)
        request = decode_body(header, frame, pos)
        cls = response_class(key, version)
        if key == 18:
            body = build(cls, error_code=0, throttle_time=0, finalized_features_epoch=-1,
                         api_keys=[dict(api_key=k, min_version=lo, max_version=hi)
                                   for k, (lo, hi) in sorted(APIS.items())])
        elif key == 3:
            names = [t.name for t in (request.topics or [])]
            body = build(cls, throttle_time=0, cluster_id="sink", controller_id=1,
                         brokers=[dict(node_id=1, host=self.host, port=self.port, rack=None)],
                         cluster_authorized_operations=-2147483648,
                         topics=[dict(error_code=0, name=n, topic_id=uuid.UUID(int=1),
                                      is_internal=False, topic_authorized_operations=-2147483648,
                                      partitions=[dict(error_code=0, partition_index=0,
                                                       leader_id=1, leader_epoch=0,
                                                       replica_nodes=[1], isr_nodes=[1],
                                                       offline_replicas=[])])
                                 for n in names])
        elif key == 0:
            responses = []
            for t in request.topic_data:
                parts = []
                for p in t.partition_data:
                    parts.append(dict(index=p.index, error_code=0, base_offset=self.produced,
                                      log_append_time=-1, log_start_offset=0, record_errors=[]))
                    self.produced += 1
                responses.append(dict(name=t.name, partition_responses=parts))
            if request.acks == 0:
                return b""
            body = build(cls, throttle_time=0, responses=responses)
        elif key == 1:
            topics = []
            for t in request.topics:
                parts = []
                for p in t.partitions:
                    parts.append(dict(partition_index=p.partition, error_code=0,
                                      high_watermark=1 << 62, last_stable_offset=1 << 62,
                                      log_start_offset=0, aborted_transactions=None,
                                      preferred_read_replica=-1,
                                      records=self._records(p.fetch_offset,
                                                            p.partition_max_bytes)))
                topics.append(dict(topic=t.topic, partitions=parts))
            body = build(cls, throttle_time=0, error_code=0, session_id=0, responses=topics)
        elif key == 10:
            body = build(cls, throttle_time=0, error_code=0, node_id=1, host=self.host,
                         port=self.port, error_message=None)
        else:
            raise ValueError(f"api {key} not served by the sink")
        return encode_response(key, version, header.correlation_id, body)

    def _records(self, offset: int, max_bytes: int) -> bytes:
        count = max(1, max_bytes // len(self.batch))
        out = bytearray(self.batch * count)
        for i in range(count):  # per batch, not per record
            _OFFSET.pack_into(out, i * len(self.batch), offset + i * self.batch_records)
        return bytes(out)


class _Protocol(asyncio.Protocol):
    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        #: responses held back by --fetch-delay-ms: (due time, bytes), in request order
        self.held: deque[tuple[float, bytes]] = deque()
        self.loop = asyncio.get_event_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        pos = 0
        while len(buffer) - pos >= 4:
            (size,) = _SIZE.unpack_from(buffer, pos)
            if len(buffer) - pos - 4 < size:
                break
            frame = bytes(buffer[pos + 4:pos + 4 + size])
            pos += 4 + size
            delay = self.sink.fetch_delay_s if frame[1] == 1 and frame[0] == 0 else 0.0
            response = self.sink.handle(frame)
            if response and self.transport is not None:
                if delay or self.held:
                    due = self.loop.time() + delay
                    self.held.append((due, response))
                    self.loop.call_at(due, self._release)
                else:
                    self.transport.write(response)
        del buffer[:pos]

    def _release(self) -> None:
        now = self.loop.time()
        while self.held and self.held[0][0] <= now:
            _, response = self.held.popleft()
            if self.transport is not None and not self.transport.is_closing():
                self.transport.write(response)


async def serve(host: str, port: int, batch_records: int, record_bytes: int,
                fetch_delay_ms: float = 0.0) -> None:
    batch = build_batch([(None, b"x" * record_bytes, ())] * batch_records,
                        timestamp_ms=int(time.time() * 1000))
    sink = Sink(host, port, batch, batch_records, fetch_delay_ms / 1000.0)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Protocol(sink), host, port, reuse_address=True)
    sink.port = server.sockets[0].getsockname()[1]
    print(f"ready port={sink.port}", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--batch-records", type=int, default=9000)
    parser.add_argument("--record-bytes", type=int, default=100)
    parser.add_argument("--fetch-delay-ms", type=float, default=0.0,
                        help="hold every Fetch answer back this long (models a slower server)")
    args = parser.parse_args(argv)
    try:
        asyncio.run(serve(args.host, args.port, args.batch_records, args.record_bytes,
                          args.fetch_delay_ms))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
