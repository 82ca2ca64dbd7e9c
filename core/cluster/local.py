"""LocalCluster: run `python main.py serve` as a subprocess (for tests and the console).

    with LocalCluster(tmp_path / "cluster", brokers=3, port=free_base_port(3)) as cluster:
        cluster.bootstrap          # "127.0.0.1:P,127.0.0.1:P+1,..."
        cluster.control.kill_sync(2)

start() waits for the `ready` line (raising LocalClusterError with the logs' tails on timeout
or early exit); stop() sends SIGTERM to serve's pid, SIGKILL after a timeout, and then makes
sure no broker process listed in cluster.json outlives it.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

import psutil

from core.cluster.client import ClusterControl
from core.cluster.layout import HOST
from core.cluster.state import read_cluster_json
from core.cluster.supervisor import MAIN_PY, tail

READY_PREFIX = "ready bootstrap="


class LocalClusterError(RuntimeError):
    """serve did not become ready (or exited); the message carries the logs' tails."""


#: where the kernel picks the local ports of outgoing connections (Linux default)
_DEFAULT_EPHEMERAL = (32768, 60999)


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return _DEFAULT_EPHEMERAL


def free_base_port(count: int = 3, host: str = HOST, attempts: int = 200) -> int:
    """A base port P such that P..P+count-1 are all free now (best effort, racy by nature).

    P is taken below the kernel's ephemeral range: a port in that range can be handed to any
    outgoing connection (a client's, a broker's) between now and when a broker binds it (seen
    in CI: the port kept for a broker that joins later was taken by then)."""
    low, _high = _ephemeral_range()
    first = 10_000 if low > 20_000 else 1_024
    last = low - count  # the whole window stays below the ephemeral range
    for _ in range(attempts):
        if last > first:
            base = random.randrange(first, last)
        else:  # an unusual range: fall back to a port the kernel picks
            with socket.socket() as probe:
                probe.bind((host, 0))
                base = probe.getsockname()[1]
        if base + count > 65535:
            continue
        socks: list[socket.socket] = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                socks.append(sock)
                sock.bind((host, port))
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise OSError(f"no {count} consecutive free ports")


class LocalCluster:
    """A `serve` subprocess on `port`.. with data under `data_dir`; a context manager."""

    def __init__(self, data_dir: str | os.PathLike[str], brokers: int = 3, port: int = 9092,
                 config: Mapping[str, str] | None = None, *, ready_timeout: float = 60.0,
                 stop_timeout: float = 40.0, python: str = sys.executable,
                 env: Mapping[str, str] | None = None,
                 extra_args: Sequence[str] = ()) -> None:
        self.data_dir = Path(data_dir).expanduser().absolute()
        self.brokers = brokers
        self.port = port
        self.config = dict(config or {})
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.python = python
        self.env = dict(env) if env is not None else None
        self.extra_args = list(extra_args)
        self.process: subprocess.Popen[bytes] | None = None
        self.bootstrap: str | None = None
        self.returncode: int | None = None
        self.stdout_lines: list[str] = []
        self._ready = threading.Event()
        self._reader: threading.Thread | None = None
        self._stderr: IO[bytes] | None = None

    @property
    def serve_log(self) -> Path:
        """serve's stderr (appended across runs)."""
        return self.data_dir / "serve.log"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def control(self) -> ClusterControl:
        return ClusterControl(self.data_dir)

    def command(self) -> list[str]:
        argv = [self.python, str(MAIN_PY), "serve", "--brokers", str(self.brokers),
                "--port", str(self.port), "--data-dir", str(self.data_dir)]
        for key, value in self.config.items():
            argv += ["--config", f"{key}={value}"]
        return argv + self.extra_args

    def start(self) -> LocalCluster:
        """Spawn serve and wait for its ready line; raises LocalClusterError (after stopping)."""
        if self.process is not None:
            raise RuntimeError("already started")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ if self.env is None else self.env)
        env.setdefault("PYTHONUNBUFFERED", "1")
        self._stderr = open(self.serve_log, "ab")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            self.command(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=self._stderr, cwd=str(MAIN_PY.parent), env=env)
        self._reader = threading.Thread(target=self._read_stdout, daemon=True,
                                        name=f"serve-{self.process.pid}-stdout")
        self._reader.start()
        deadline = time.monotonic() + self.ready_timeout
        while not self._ready.wait(0.05):
            if self.process.poll() is not None or time.monotonic() > deadline:
                why = (f"serve exited with code {self.process.returncode}"
                       if self.process.poll() is not None
                       else f"serve not ready after {self.ready_timeout:.0f}s")
                report = self.diagnostics()
                self.stop()
                raise LocalClusterError(f"{why}\n{report}")
        return self

    def _read_stdout(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for raw in self.process.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.stdout_lines.append(line)
            if line.startswith(READY_PREFIX) and not self._ready.is_set():
                self.bootstrap = line[len(READY_PREFIX):].strip()
                self._ready.set()

    def diagnostics(self) -> str:
        """Tails of serve's stderr and every broker log, for failure messages."""
        parts = [f"--- {self.serve_log}\n{tail(self.serve_log, 30)}"]
        for log_file in sorted(self.data_dir.glob("broker-*/broker.log")):
            parts.append(f"--- {log_file}\n{tail(log_file, 30)}")
        return "\n".join(parts)

    def stop(self, timeout: float | None = None) -> int | None:
        """SIGTERM serve (by pid), SIGKILL after `timeout`; then end leftover brokers.

        Returns serve's exit code (None if it was never started).
        """
        timeout = self.stop_timeout if timeout is None else timeout
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGKILL)
                process.wait(10)
        self.returncode = process.returncode
        self._kill_leftover_brokers()
        if self._reader is not None:
            self._reader.join(5)
        if process.stdout is not None:
            process.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        return self.returncode

    def _kill_leftover_brokers(self) -> None:
        """SIGKILL broker pids from cluster.json that still run (only if they are ours)."""
        document = read_cluster_json(self.data_dir) or {}
        for entry in document.get("brokers", []):
            pid = entry.get("pid")
            if not isinstance(pid, int) or pid <= 0:
                continue
            try:
                proc = psutil.Process(pid)
                if str(self.data_dir) not in " ".join(proc.cmdline()):
                    continue
                proc.kill()
                proc.wait(5)
            except (psutil.Error, OSError):
                continue

    def broker_pids(self) -> dict[int, int | None]:
        """{broker id: pid or None} from cluster.json."""
        document = read_cluster_json(self.data_dir) or {}
        return {int(b["id"]): b.get("pid") for b in document.get("brokers", [])}

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
