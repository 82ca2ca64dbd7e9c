"""Shared pieces of the client benchmarks: broker processes, CPU sampling, medians, the doc.

Every process a benchmark starts is ended by that benchmark, by PID (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
RECORD_BYTES = 100

#: configs that keep a benchmark broker quiet without changing the data path
BROKER_DEFAULTS = {
    "group.initial.rebalance.delay.ms": "0",
    "offsets.topic.num.partitions": "1",
    "offsets.topic.replication.factor": "1",
    "num.partitions": "1",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Broker:
    """One `python main.py broker --config FILE` process with its own data dir."""

    def __init__(self, data_dir: Path, node_id: int = 1, port: int | None = None,
                 overrides: dict[str, str] | None = None, root: Path = ROOT) -> None:
        self.root = root  # the source tree whose main.py runs (bench.ab compares two)
        self.data_dir = data_dir
        self.node_id = node_id
        self.port = port or free_port()
        self.config_path = data_dir / "server.properties"
        props = {
            "node.id": str(node_id),
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "log.dirs": str(data_dir / "data"),
            "metrics.port": str(free_port()),
            **BROKER_DEFAULTS,
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
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 60.0) -> Broker:
        """Spawn and wait for the "started" line and the open port."""
        return self.spawn().wait_started(timeout)

    def spawn(self) -> Broker:
        """Start the process without waiting (brokers of one quorum start together)."""
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, str(self.root / "main.py"), "broker", "--config",
                 str(self.config_path)],
                stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, cwd=self.root)
        return self

    def wait_started(self, timeout: float = 60.0) -> Broker:
        assert self.proc is not None and self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"broker exited with {self.proc.returncode}: "
                                   f"{self.log_path.read_text()[-3000:]}")
            if b"started" in self.proc.stdout.readline():
                break
        else:
            self.stop()
            raise TimeoutError("broker did not start")
        wait_for_port(self.port, deadline)
        return self

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM by PID and wait; SIGKILL if it hangs."""
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        if proc.stdout:
            proc.stdout.close()

    def kill(self) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
        if proc is not None and proc.stdout:
            proc.stdout.close()


def wait_for_port(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"port {port} not open")


@contextlib.contextmanager
def single_broker(data_dir: Path, **overrides: str) -> Iterator[Broker]:
    broker = Broker(data_dir, overrides=overrides)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


class CpuMeter:
    """CPU share of a set of PIDs (user+system seconds per wall second, 1.0 = one core).

    psutil reads the kernel's tick counts (10 ms resolution). With ``precise=True`` and
    ``perf`` installed, the CPU time is perf's task-clock of those PIDs instead (nanoseconds;
    perf attaches at enter and is stopped by PID at exit), for phases of a few 10s of ms.
    """

    def __init__(self, pids: Sequence[int], precise: bool = False) -> None:
        self._pids = list(pids)
        self._procs = [psutil.Process(p) for p in pids]
        self._start = 0.0
        self._cpu0 = 0.0
        self._perf: subprocess.Popen[str] | None = None
        self._precise = precise and shutil.which("perf") is not None

    def _cpu(self) -> float:
        total = 0.0
        for p in self._procs:
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                total += t.user + t.system
        return total

    def __enter__(self) -> CpuMeter:
        if self._precise:
            self._perf = subprocess.Popen(
                ["perf", "stat", "-x,", "-e", "task-clock", "-p",
                 ",".join(map(str, self._pids))],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            time.sleep(0.2)  # perf attaches
        self._start = time.monotonic()
        self._cpu0 = self._cpu()
        self.share = 0.0
        self.cpu_seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        wall = time.monotonic() - self._start
        self.cpu_seconds = self._cpu() - self._cpu0
        perf = self._perf
        if perf is not None:
            self._perf = None
            perf.send_signal(signal.SIGINT)
            try:
                _, err = perf.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                perf.kill()
                _, err = perf.communicate()
            for line in err.splitlines():
                fields = line.split(",")
                if len(fields) > 2 and fields[2] == "task-clock" and fields[0]:
                    with contextlib.suppress(ValueError):
                        self.cpu_seconds = float(fields[0]) / 1000.0  # msec
        self.share = self.cpu_seconds / wall if wall > 0 else 0.0


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(q / 100.0 * len(ordered)) - 1))
    return ordered[rank]


def machine_facts() -> str:
    import confluent_kafka

    load = os.getloadavg()
    return (f"nproc={os.cpu_count()}, {platform.processor() or platform.machine()}, "
            f"Python {platform.python_version()}, confluent-kafka "
            f"{confluent_kafka.version()} (librdkafka {confluent_kafka.libversion()[0]}), "
            f"Linux {platform.release()}, load average at start "
            f"{load[0]:.2f}/{load[1]:.2f}/{load[2]:.2f}")


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


_DOC_HEADER = """# Benchmarks

Client benchmarks of kaflab with real clients (confluent-kafka / librdkafka), produced by the
modules in `bench/` (`make bench` runs them all: `python -m bench.run_all`). Each module starts
its own brokers on free 127.0.0.1 ports in a temporary directory, stops them by PID, and
rewrites its own section below. Figures are medians over several runs; the broker and the
clients share one small machine, and other engineers run test suites on it at the same time,
so absolute numbers are noisy: compare ratios measured in the same run.
"""


def update_doc(section: str, body: str, doc: Path = DOC) -> None:
    """Replace (or append) the section between `<!-- bench:NAME -->` markers."""
    start, end = f"<!-- bench:{section} -->", f"<!-- /bench:{section} -->"
    block = f"{start}\n{body.rstrip()}\n{end}"
    text = doc.read_text() if doc.exists() else _DOC_HEADER
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _m: block, text)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text if text.endswith("\n") else text + "\n")


def fmt(value: float, digits: int = 0) -> str:
    if value != value:  # nan
        return "n/a"
    return f"{value:,.{digits}f}"


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


class SinkProcess:
    """`python -m bench.sink` on a free port (see bench/sink.py), stopped by PID."""

    def __init__(self, batch_records: int = 9000, record_bytes: int = RECORD_BYTES,
                 fetch_delay_ms: float = 0.0) -> None:
        self.args = ["--batch-records", str(batch_records), "--record-bytes", str(record_bytes),
                     "--fetch-delay-ms", str(fetch_delay_ms)]
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def __enter__(self) -> SinkProcess:
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.sink", *self.args],
                                     stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, cwd=ROOT)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()
        if not line.startswith("ready port="):
            self.__exit__()
            raise RuntimeError(f"sink did not start: {line!r}")
        self.port = int(line.strip().split("=", 1)[1])
        return self

    def __exit__(self, *exc: object) -> None:
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        if proc.stdout:
            proc.stdout.close()
