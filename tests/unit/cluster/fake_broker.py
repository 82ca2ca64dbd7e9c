"""A stand-in broker process for the supervisor's own unit tests (not a Kafka broker).

`python fake_broker.py CONFIG` reads the server.properties the supervisor wrote, listens on its
listener port and answers ApiVersions v3, Metadata v12 (controller = the lowest quorum voter
whose port accepts connections) and BrokerHeartbeat (appended to <log.dirs>/heartbeats.jsonl).
Test knobs, as ordinary config keys: fake.crash=<code> exits at once, fake.ignore.sigterm=true,
fake.delay.ms=<n> waits before listening.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import struct
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from core.common.config import load_properties
from core.protocol.build import build
from core.protocol.codec import (
    decode_body,
    decode_header,
    encode_response,
    response_class,
)


async def _port_open(host: str, port: int) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 0.3)
    except (OSError, TimeoutError):
        return False
    writer.close()
    return True


class FakeBroker:
    def __init__(self, props: dict[str, str]) -> None:
        self.props = props
        self.node_id = int(props["node.id"])
        hostport = props["listeners"].split("://", 1)[1]
        self.host, port = hostport.rsplit(":", 1)
        self.port = int(port)
        self.voters = []
        for voter in filter(None, props.get("controller.quorum.voters", "").split(",")):
            vid, _, address = voter.partition("@")
            host, _, vport = address.rpartition(":")
            self.voters.append((int(vid), host, int(vport)))
        self.data = Path(props["log.dirs"])

    async def controller(self) -> int:
        for vid, host, port in sorted(self.voters):
            if vid == self.node_id or await _port_open(host, port):
                return vid
        return -1

    async def live_brokers(self) -> list[dict]:
        """Like a controller's registered brokers: every broker of this cluster layout whose
        port answers (read from the sibling broker-*/server.properties files)."""
        brokers = []
        for config in sorted(self.data.parent.parent.glob("broker-*/server.properties")):
            props = dict(line.split("=", 1) for line in config.read_text().splitlines()
                         if "=" in line and not line.startswith("#"))
            host, _, port = props["listeners"].split("://", 1)[1].rpartition(":")
            if int(props["node.id"]) == self.node_id or await _port_open(host, int(port)):
                brokers.append({"node_id": int(props["node.id"]), "host": host,
                                "port": int(port), "rack": None})
        return brokers

    async def respond(self, frame: bytes) -> bytes:
        header, pos = decode_header(frame)
        request = decode_body(header, frame, pos)
        key, version = header.api_key, header.api_version
        cls = response_class(key, version)
        if key == 18:
            body = build(cls, error_code=0, throttle_time=0, api_keys=[
                {"api_key": 18, "min_version": 0, "max_version": 3},
                {"api_key": 3, "min_version": 12, "max_version": 12},
                {"api_key": 63, "min_version": 0, "max_version": 1},
            ])
        elif key == 3:
            body = build(cls, throttle_time=0, cluster_id="fake", controller_id=await
                         self.controller(), brokers=await self.live_brokers(), topics=[])
        elif key == 63:
            with open(self.data / "heartbeats.jsonl", "a") as handle:
                handle.write(json.dumps({
                    "broker_id": int(request.broker_id), "broker_epoch": int(request.broker_epoch),
                    "want_fence": bool(request.want_fence), "version": version}) + "\n")
            body = build(cls, throttle_time=0, error_code=0, is_caught_up=True,
                         is_fenced=False, should_shut_down=False)
        else:
            raise ValueError(f"fake broker: unsupported api {key}")
        return encode_response(key, version, header.correlation_id, body)

    async def serve_connection(self, reader: asyncio.StreamReader,
                               writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                (size,) = struct.unpack(">i", await reader.readexactly(4))
                writer.write(await self.respond(await reader.readexactly(size)))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()

    async def run(self) -> None:
        delay = int(self.props.get("fake.delay.ms", "0"))
        if delay:
            await asyncio.sleep(delay / 1000)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        if self.props.get("fake.ignore.sigterm") == "true":
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        else:
            loop.add_signal_handler(signal.SIGTERM, stop.set)
        server = await asyncio.start_server(self.serve_connection, self.host, self.port)
        print(f"fake broker {self.node_id} listening on {self.port} pid {os.getpid()}",
              flush=True)
        async with server:
            await stop.wait()
        print(f"fake broker {self.node_id} stopped cleanly", flush=True)


def main() -> int:
    props = load_properties(sys.argv[-1])
    if "fake.crash" in props:
        print("fake broker crashing on purpose", flush=True)
        return int(props["fake.crash"])
    asyncio.run(FakeBroker(props).run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
