"""Fixtures that start real broker processes on 127.0.0.1 and always end them by PID."""

from __future__ import annotations

import os
import re
import signal
import socket
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: configs that keep tests fast without changing semantics under test
TEST_DEFAULTS = {
    "group.initial.rebalance.delay.ms": "0",
    "offsets.topic.num.partitions": "4",
    "offsets.topic.replication.factor": "1",
    "log.flush.offset.checkpoint.interval.ms": "1000",
}


def wait_for(predicate: Callable[[], object], timeout: float = 30.0,
             what: str = "condition") -> None:
    """Poll `predicate` (exceptions count as "not yet") until true; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception:
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BrokerProcess:
    """One `python main.py broker` process with its own data dir and config file."""

    def __init__(self, data_dir: Path, node_id: int = 1, port: int | None = None,
                 overrides: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.node_id = node_id
        self.port = port or free_port()
        self.metrics_port = free_port()
        self.config_path = data_dir / "server.properties"
        props = {
            "node.id": str(node_id),
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "log.dirs": str(data_dir / "data"),
            "metrics.port": str(self.metrics_port),
            **TEST_DEFAULTS,
            **(overrides or {}),
        }
        data_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        self.log_path = data_dir / "broker.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self, timeout: float = 30.0) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child process
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "main.py"), "broker", "--config", str(self.config_path)],
            stdout=subprocess.PIPE, stderr=log, cwd=ROOT)
        log.close()
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        line = b""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"broker exited with {self.proc.returncode}: "
                                   f"{self.log_path.read_text()[-3000:]}")
            line = self.proc.stdout.readline()
            if b"started" in line:
                break
        else:
            self.stop()
            raise TimeoutError("broker did not start")
        match = re.search(rb"metrics_port=(\d+)", line)
        if match:
            self.metrics_port = int(match.group(1))
        self._wait_port(deadline)

    def _wait_port(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"broker port {self.port} not open")

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM and wait (a clean, flushing shutdown); SIGKILL if it hangs."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(5)
        finally:
            if self.proc.stdout:
                self.proc.stdout.close()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
            if self.proc.stdout:
                self.proc.stdout.close()

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def broker_factory(tmp_path: Path) -> Iterator:
    """Start brokers with custom configs: `broker_factory(**{"num.partitions": "3"})`."""
    started: list[BrokerProcess] = []

    def make(**overrides: str) -> BrokerProcess:
        broker = BrokerProcess(tmp_path / f"broker-{len(started)}", overrides=overrides)
        started.append(broker)
        broker.start()
        return broker

    yield make
    for broker in started:
        broker.stop()


def running_broker(tmp_path_factory: pytest.TempPathFactory, name: str,
                   overrides: dict[str, str] | None = None) -> Iterator[BrokerProcess]:
    """A started single broker under a fresh temporary dir, stopped by PID when the generator
    is closed: the body of a module-scoped fixture (`yield from running_broker(...)`)."""
    broker = BrokerProcess(tmp_path_factory.mktemp(name), overrides=overrides)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="module")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    """One single-broker cluster shared by a test module (use unique topic names)."""
    yield from running_broker(tmp_path_factory, "broker")


@pytest.fixture
def topic_name() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


#: a 3-broker cluster that moves nothing on its own: replicas out of the ISR after 3 s, no
#: automatic leader rebalance or topic creation, groups start at once, 3 offsets partitions
QUIET_CLUSTER_CONFIG = {
    "replica.lag.time.max.ms": "3000",
    "auto.leader.rebalance.enable": "false",
    "auto.create.topics.enable": "false",
    "group.initial.rebalance.delay.ms": "0",
    "offsets.topic.num.partitions": "3",
}


def running_local_cluster(tmp_path_factory: pytest.TempPathFactory, name: str,
                          config: dict[str, str], *, brokers: int = 3, spare_ports: int = 0,
                          ready_timeout: float = 120, **kwargs: object) -> Iterator:
    """A started LocalCluster (`serve` subprocess, free ports) under a fresh temporary dir,
    stopped by PID when the generator is closed: the body of a module-scoped fixture.
    ``spare_ports`` keeps that many more consecutive ports free, for brokers a test adds."""
    from core.cluster import LocalCluster, free_base_port

    local = LocalCluster(tmp_path_factory.mktemp(name) / "c", brokers=brokers,
                         port=free_base_port(brokers + spare_ports), config=config,
                         ready_timeout=ready_timeout, **kwargs)
    local.start()
    try:
        yield local
    finally:
        local.stop()


def raw_request(port: int, key: int, version: int, **fields: Any) -> Any:
    """One Kafka request/response exchange on a fresh connection to 127.0.0.1:`port`, built
    from kio's schema (for what no client library sends); returns the decoded response."""
    from core.protocol.build import build
    from core.protocol.codec import decode_response, encode_request, request_class

    frame = encode_request(key, version, 42, "raw-test", build(request_class(key, version),
                                                                **fields))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(frame)
        (size,) = struct.unpack(">i", _read_exactly(sock, 4))
        correlation_id, body = decode_response(key, version, _read_exactly(sock, size))
    assert correlation_id == 42
    return body


def _read_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        assert chunk, "broker closed the connection"
        data += chunk
    return data
