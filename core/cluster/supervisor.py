"""The supervisor: broker processes of a local cluster, their states, cluster.json, ctl socket.

One asyncio task per broker process waits on it, so a death is noticed at once; the dead
broker is marked crashed/killed in cluster.json and the active controller is told to fence it
(`_tell_controller_broker_died`). If the dead broker led the metadata quorum, the survivors
first get the EndQuorumEpoch it would have sent had it resigned (`_end_dead_leader_epoch`,
core.cluster.quorum_probe), so they elect a new controller at once. A poller asks the
brokers for the controller id about once a second. Brokers run in their own process groups:
Ctrl-C on `serve` reaches only the supervisor, which then stops them cleanly (SIGTERM,
bounded wait, SIGKILL).

Brokers left running by a previous serve (killed with SIGKILL, say) are re-attached rather than
started twice: their pid is in cluster.json and their command line names their config file.

Fault proxies (``fault_proxies=True``, `serve`'s default): each broker binds an internal port
(stable across restarts, recorded as ``listen_port``) and advertises P+i-1, where the
supervisor runs its proxy (core.netfaults); the quorum voters name the proxies too. So every
byte to a broker, from clients and from its peers, crosses that broker's proxy, and
``netfault`` (latency / drop / blackhole / isolate / clear) acts on it. The supervisor's own
probes and fencing go to the internal ports: they are the operator's view, not traffic.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from core.cluster import ctl_socket
from core.cluster.kafka_probe import (
    ProbeError,
    fence_broker,
    probe_api_versions,
    probe_controller,
    probe_registered,
)
from core.cluster.layout import (
    HOST,
    BrokerPaths,
    bootstrap,
    broker_port,
    broker_properties,
    free_port,
    port_is_free,
    render_properties,
    write_atomic,
)
from core.cluster.lock import ServeLock
from core.cluster.quorum_probe import QuorumView, describe_quorum, end_dead_leader_epoch
from core.cluster.state import (
    ALIVE_STATES,
    CRASHED,
    KILLED,
    PAUSED,
    RUNNING,
    STARTING,
    STOPPED,
    read_cluster_json,
    write_cluster_json,
)
from core.common.config import load_properties
from core.netfaults.faults import FAULTS, FaultTable
from core.netfaults.proxy import ProxySet

log = logging.getLogger("kaflab.cluster")

MAIN_PY = Path(__file__).resolve().parents[2] / "main.py"

BrokerCommand = Callable[[int, Path], Sequence[str]]
"""(broker_id, config_path) -> argv of the broker process."""


def default_broker_command(broker_id: int, config: Path) -> list[str]:
    """`python main.py broker --config D/broker-<id>/server.properties`.

    KAFLAB_BROKER_COMMAND (a shell-quoted command prefix, `--config PATH` is appended)
    substitutes another broker program, for tests and debugging.
    """
    prefix = os.environ.get("KAFLAB_BROKER_COMMAND")
    if prefix:
        return [*shlex.split(prefix), "--config", str(config)]
    return [sys.executable, str(MAIN_PY), "broker", "--config", str(config)]


class CtlError(Exception):
    """A ctl request that cannot be done (unknown broker, not running, ...): a one-line reason."""


class StartupError(Exception):
    """The cluster could not come up (port in use, a broker exited during startup, ...)."""


@dataclass
class BrokerProcess:
    """One broker's supervisor-side record."""

    id: int
    port: int
    metrics_port: int
    paths: BrokerPaths
    state: str = STOPPED
    pid: int | None = None
    exit_code: int | None = None
    answered: bool = False  # answered ApiVersions since this process started
    intent: str | None = None  # "stop" | "kill" while we are ending it
    started_at: float | None = None
    proc: asyncio.subprocess.Process | None = None
    exited: asyncio.Event = field(default_factory=asyncio.Event)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    adopted: bool = False
    listen_port: int | None = None  # the internal port behind the fault proxy (if any)
    netfault: dict[str, Any] | None = None  # the active network fault (None: healthy)

    @property
    def alive(self) -> bool:
        return self.state in ALIVE_STATES

    @property
    def direct_port(self) -> int:
        """Where the broker process itself listens (the proxy's upstream when proxied)."""
        return self.listen_port if self.listen_port is not None else self.port

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "host": HOST, "port": self.port, "pid": self.pid,
            "metrics_port": self.metrics_port, "state": self.state,
            "exit_code": self.exit_code, "started_at": self.started_at,
            "log_file": str(self.paths.log_file), "config_file": str(self.paths.config),
            "listen_port": self.listen_port, "netfault": self.netfault,
        }


class Supervisor:
    """Runs a local cluster of `brokers` broker processes on ports P.. under data dir D."""

    def __init__(self, data_dir: str | os.PathLike[str], brokers: int = 3, port: int = 9092,
                 overrides: Mapping[str, str] | None = None,
                 broker_command: BrokerCommand | None = None, *,
                 stop_timeout: float = 30.0, poll_interval: float = 1.0,
                 env: Mapping[str, str] | None = None, fault_proxies: bool = False) -> None:
        if brokers < 1:
            raise ValueError("need at least one broker")
        if not 1 <= port <= 65535 - brokers:
            raise ValueError(f"bad port {port}")
        self.data_dir = Path(data_dir).expanduser().absolute()
        self.initial_brokers = brokers
        self.base_port = port
        self.overrides = dict(overrides or {})
        self.broker_command = broker_command or default_broker_command
        self.stop_timeout = stop_timeout
        self.poll_interval = poll_interval
        self.env = dict(env) if env is not None else None
        self.fault_proxies = fault_proxies
        self.faults = FaultTable()
        self.proxies: ProxySet | None = None
        self.brokers: dict[int, BrokerProcess] = {}
        self.controller_id = -1
        #: the Raft leader's last DescribeQuorum (voters' progress, for preferred successors)
        self.quorum_view: QuorumView | None = None
        self.ready = asyncio.Event()
        self.failed: StartupError | None = None
        self._failure = asyncio.Event()
        self._lock = ServeLock(self.data_dir)
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = False
        self._finished = False
        self._add_lock = asyncio.Lock()

    # ----------------------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Take the lock, lay out D, re-attach or start every broker, open the ctl socket.

        Raises AlreadyRunningError (another serve on D) or StartupError.
        """
        self._lock.acquire()
        try:
            await self._start_locked()
        except BaseException:
            await self.shutdown()
            raise

    async def _start_locked(self) -> None:
        previous = read_cluster_json(self.data_dir) or {}
        previous_brokers = {int(b["id"]): b for b in previous.get("brokers", [])
                            if isinstance(b, dict) and "id" in b}
        taken = {broker_port(self.base_port, i) for i in range(1, self.initial_brokers + 1)}
        for broker_id in range(1, self.initial_brokers + 1):
            entry = previous_brokers.get(broker_id, {})
            paths = BrokerPaths.of(self.data_dir, broker_id)
            b = BrokerProcess(broker_id, broker_port(self.base_port, broker_id), 0, paths)
            if self.fault_proxies:
                b.listen_port = self._stable_listen_port(b, entry, taken=taken)
                taken.add(b.listen_port)
            pid = self._adoptable_pid(b, entry)
            metrics = self._stable_metrics_port(b, entry, adopted=pid is not None, taken=taken)
            b.metrics_port = metrics
            taken.add(metrics)
            self.brokers[broker_id] = b
            self._write_config(b)
            if pid is not None:
                self._adopt(b, pid)
        busy = [b.port for b in self.brokers.values()
                if (self.fault_proxies or not b.adopted) and not port_is_free(b.port)]
        if busy:
            raise StartupError(f"port(s) {', '.join(map(str, busy))} already in use "
                               f"(another cluster or program?); choose another --port")
        await self._start_ctl_server()
        if self.fault_proxies:
            await self._start_proxies()
        self._publish()
        for b in self.brokers.values():
            if not b.adopted:
                await self._spawn(b, startup=True)
        self._spawn_task(self._poll_controller(), "controller poller")
        self._spawn_task(self._watch_ready(), "readiness")

    async def wait_ready(self, timeout: float | None = None) -> None:
        """Until every broker answers and a controller is known; raises StartupError/Timeout."""
        ready = asyncio.ensure_future(self.ready.wait())
        failed = asyncio.ensure_future(self._failure.wait())
        try:
            await asyncio.wait({ready, failed}, timeout=timeout,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            ready.cancel()
            failed.cancel()
        if self.failed is not None:
            raise self.failed
        if not self.ready.is_set():
            raise TimeoutError(f"cluster not ready after {timeout}s: {self.summary()}")

    def bootstrap_servers(self) -> str:
        return bootstrap(self.base_port, sorted(self.brokers))

    def summary(self) -> str:
        parts = [f"broker {b.id} {b.state}" for b in self.brokers.values()]
        return ", ".join(parts) + f", controller {self.controller_id}"

    async def shutdown(self) -> None:
        """Stop every broker cleanly (SIGTERM, bounded wait, SIGKILL), publish, release D."""
        if self._closing:
            return
        self._closing = True
        if self._server is not None:
            self._server.close()
        if self.faults.active:  # controlled shutdowns must reach the controller
            log.info("network faults cleared: serve is stopping")
            self.faults.clear_all()
        # the active controller last, so the others' controlled shutdowns can reach it
        alive = [b for b in self.brokers.values() if b.alive]
        for group in ([b for b in alive if b.id != self.controller_id],
                      [b for b in alive if b.id == self.controller_id]):
            await asyncio.gather(*(self._stop(b, self.stop_timeout) for b in group),
                                 return_exceptions=True)
        await self._abort()

    async def _abort(self) -> None:
        self._closing = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.proxies is not None:
            await self.proxies.close()
            self.proxies = None
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None
            with contextlib.suppress(FileNotFoundError):
                ctl_socket.ctl_socket_path(self.data_dir).unlink()
        self._finished = True
        if self.brokers:
            self._publish()
        self._lock.release()

    def _spawn_task(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("task %s failed", task.get_name(), exc_info=task.exception())

    def _fail(self, error: StartupError) -> None:
        if self.failed is None and not self.ready.is_set():
            self.failed = error
            self._failure.set()

    # ----------------------------------------------------------------------------- layout

    def _write_config(self, b: BrokerProcess) -> None:
        b.paths.root.mkdir(parents=True, exist_ok=True)
        b.paths.data.mkdir(exist_ok=True)
        props = broker_properties(broker_id=b.id, base_port=self.base_port,
                                  voters_of=self.initial_brokers, data_dir=b.paths.data,
                                  metrics_port=b.metrics_port, overrides=self.overrides,
                                  listen_port=b.listen_port)
        write_atomic(b.paths.config, render_properties(
            props, header=f"broker {b.id}, written by the kaflab supervisor"))

    def _stable_metrics_port(self, b: BrokerProcess, entry: Mapping[str, Any], *,
                             adopted: bool, taken: set[int]) -> int:
        """The metrics port recorded for this broker (cluster.json or its config), if usable."""
        candidates: list[int] = []
        if isinstance(entry.get("metrics_port"), int):
            candidates.append(entry["metrics_port"])
        with contextlib.suppress(OSError, ValueError):
            candidates.append(int(load_properties(str(b.paths.config)).get("metrics.port", "")))
        for port in candidates:
            if port > 0 and port not in taken and (adopted or port_is_free(port)):
                return port
        return free_port(avoid=taken)

    def _stable_listen_port(self, b: BrokerProcess, entry: Mapping[str, Any], *,
                            taken: set[int]) -> int:
        """The internal port recorded for this broker (cluster.json or its config), if usable.

        A broker a previous serve left running keeps its port (it is adopted on it)."""
        candidates: list[int] = []
        if isinstance(entry.get("listen_port"), int):
            candidates.append(entry["listen_port"])
        with contextlib.suppress(OSError, ValueError, KeyError):
            listeners = load_properties(str(b.paths.config))["listeners"]
            candidates.append(int(listeners.rsplit(":", 1)[1]))
        for port in candidates:
            if port > 0 and port != b.port and port not in taken:
                return port
        return free_port(avoid=taken)

    async def _start_proxies(self) -> None:
        """A proxy on each broker's public port P+i-1, forwarding to its internal port."""
        self.proxies = ProxySet(self.faults, rewrite=False)
        for b in self.brokers.values():
            await self._add_proxy(b)

    async def _add_proxy(self, b: BrokerProcess) -> None:
        assert self.proxies is not None and b.listen_port is not None
        try:
            await self.proxies.add(b.id, (HOST, b.listen_port), listen_port=b.port)
        except OSError as exc:
            raise StartupError(f"cannot listen on {HOST}:{b.port} for broker {b.id}'s "
                               f"fault proxy: {exc.strerror or exc}") from None

    def _adoptable_pid(self, b: BrokerProcess, entry: Mapping[str, Any]) -> int | None:
        """The pid of this broker's process left by a previous serve, if it still runs."""
        pid = entry.get("pid")
        if not isinstance(pid, int) or pid <= 0 or pid == os.getpid():
            return None
        try:
            proc = psutil.Process(pid)
            cmdline = proc.cmdline()
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
        except (psutil.Error, OSError):
            return None
        if str(b.paths.config) not in cmdline:
            return None
        if entry.get("port") != b.port or entry.get("listen_port") != b.listen_port:
            log.warning("broker %d (pid %d) of a previous serve listens on another port; "
                        "stopping it", b.id, pid)
            with contextlib.suppress(psutil.Error):
                proc.terminate()
                proc.wait(self.stop_timeout)
            with contextlib.suppress(psutil.Error):
                proc.kill()
            return None
        return pid

    # ----------------------------------------------------------------------------- processes

    def _adopt(self, b: BrokerProcess, pid: int) -> None:
        """Watch a broker process a previous serve started (not our child: use a pidfd)."""
        status = psutil.Process(pid).status()
        b.pid = pid
        b.adopted = True
        b.answered = False
        b.exit_code = None
        b.intent = None
        b.exited = asyncio.Event()
        b.state = PAUSED if status == psutil.STATUS_STOPPED else STARTING
        log.info("re-attached to broker %d (pid %d, %s)", b.id, pid, b.state)
        self._spawn_task(self._watch_adopted(b, pid), f"watch broker {b.id}")
        self._spawn_task(self._await_answer(b, pid), f"probe broker {b.id}")

    async def _spawn(self, b: BrokerProcess, *, startup: bool = False) -> None:
        """Start broker b's process; it is `starting` until it answers ApiVersions."""
        deadline = time.monotonic() + 3.0
        while not port_is_free(b.direct_port):
            if b.listen_port is not None and time.monotonic() > deadline - 2.0:
                self._move_listen_port(b)  # internal: any free port will do
                continue
            if time.monotonic() > deadline:
                error = f"port {b.port} of broker {b.id} is in use by another program"
                if startup:
                    raise StartupError(error)
                raise CtlError(error)
            await asyncio.sleep(0.1)
        argv = list(self.broker_command(b.id, b.paths.config))
        env = dict(os.environ if self.env is None else self.env)
        env.setdefault("PYTHONUNBUFFERED", "1")
        b.paths.root.mkdir(parents=True, exist_ok=True)
        with open(b.paths.log_file, "ab") as log_file:
            log_file.write(f"--- kaflab supervisor {time.strftime('%Y-%m-%d %H:%M:%S')}: "
                           f"starting broker {b.id}: {' '.join(argv)}\n".encode())
            log_file.flush()
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
                process_group=0, cwd=str(MAIN_PY.parent), env=env)
        b.proc = proc
        b.pid = proc.pid
        b.adopted = False
        b.answered = False
        b.exit_code = None
        b.intent = None
        b.exited = asyncio.Event()
        b.state = STARTING
        b.started_at = time.time()
        log.info("started broker %d (pid %d) on %s:%d%s", b.id, proc.pid, HOST, b.port,
                 "" if b.listen_port is None else f" (behind its proxy, on {b.listen_port})")
        self._publish()
        self._spawn_task(self._watch_child(b, proc), f"watch broker {b.id}")
        self._spawn_task(self._await_answer(b, proc.pid), f"probe broker {b.id}")

    def _move_listen_port(self, b: BrokerProcess) -> None:
        """Broker b's internal port is taken by someone else: a new one, config and proxy."""
        taken = {p for o in self.brokers.values() for p in (o.port, o.metrics_port,
                                                              o.direct_port)}
        old, b.listen_port = b.listen_port, free_port(avoid=taken)
        log.warning("internal port %s of broker %d is in use; moving it to %d", old, b.id,
                    b.listen_port)
        self._write_config(b)
        if self.proxies is not None and b.id in self.proxies:
            self.proxies.set_upstream(b.id, (HOST, b.listen_port))

    async def _watch_child(self, b: BrokerProcess, proc: asyncio.subprocess.Process) -> None:
        code = await proc.wait()
        self._on_exit(b, proc.pid, code)

    async def _watch_adopted(self, b: BrokerProcess, pid: int) -> None:
        loop = asyncio.get_running_loop()
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            self._on_exit(b, pid, None)
            return
        except OSError:  # no pidfd support: poll
            while psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie":
                await asyncio.sleep(0.1)
            self._on_exit(b, pid, None)
            return
        exited = asyncio.Event()
        loop.add_reader(pidfd, exited.set)
        try:
            await exited.wait()
        finally:
            loop.remove_reader(pidfd)
            os.close(pidfd)
        self._on_exit(b, pid, None)

    def _on_exit(self, b: BrokerProcess, pid: int, code: int | None) -> None:
        """A broker process ended: record why, publish, and tell the controller at once."""
        if b.pid != pid:
            return
        if b.intent == "stop":
            state = STOPPED
        elif b.intent == "kill" or code == -signal.SIGKILL:
            state = KILLED
        else:
            state = CRASHED
        was_starting = b.state == STARTING and not b.answered
        b.state, b.exit_code, b.pid, b.proc, b.answered = state, code, None, None, False
        b.exited.set()
        log.log(logging.INFO if state != CRASHED else logging.WARNING,
                "broker %d (pid %d) exited with %s: %s", b.id, pid, code, state)
        if self.controller_id == b.id:
            self.controller_id = -1
        self._publish()
        if not self._closing:
            self._spawn_task(self._end_dead_leader_epoch(b.id), f"end epoch of {b.id}")
            self._spawn_task(self._tell_controller_broker_died(b.id), f"fence broker {b.id}")
            if was_starting and state == CRASHED:
                self._fail(StartupError(
                    f"broker {b.id} exited with code {code} during startup; "
                    f"see {b.paths.log_file}\n{tail(b.paths.log_file)}"))

    async def _await_answer(self, b: BrokerProcess, pid: int) -> None:
        """Probe broker b until it answers ApiVersions, then mark it running."""
        while b.pid == pid and not self._closing:
            if b.state != PAUSED and await probe_api_versions(HOST, b.direct_port, timeout=1.0):
                if b.pid != pid:
                    return
                b.answered = True
                if b.state == STARTING:
                    b.state = RUNNING
                    log.info("broker %d is up on %s:%d", b.id, HOST, b.port)
                    self._publish()
                return
            await asyncio.sleep(0.1)

    def _signal(self, b: BrokerProcess, sig: int) -> None:
        """Send sig to broker b's process group (its own), or to the process alone."""
        pid = b.pid
        if pid is None:
            return
        try:
            if os.getpgid(pid) == pid:
                os.killpg(pid, sig)
            else:
                os.kill(pid, sig)
        except ProcessLookupError:
            pass

    def _voter_ids(self) -> list[int]:
        """controller.quorum.voters, as the brokers' own config files say."""
        for b in self.brokers.values():
            with contextlib.suppress(OSError):
                voters = load_properties(str(b.paths.config)).get("controller.quorum.voters", "")
                return [int(v.split("@", 1)[0]) for v in voters.split(",") if "@" in v]
        return []

    async def _end_dead_leader_epoch(self, dead_id: int) -> None:
        """If the dead broker led the metadata quorum, send the surviving voters the
        EndQuorumEpoch it would have sent had it resigned (KIP-595), so they elect a new
        controller at once rather than after controller.quorum.fetch.timeout.ms."""
        voters = self._voter_ids()
        if dead_id not in voters:
            return
        survivors = {b.id: (HOST, b.direct_port) for b in self.brokers.values()
                     if b.id != dead_id and b.id in voters and b.state == RUNNING}
        if not survivors:
            return
        sent = await end_dead_leader_epoch(dead_id, survivors, voters, self.quorum_view)
        if sent is not None:
            log.info("broker %d led the metadata quorum (epoch %d): EndQuorumEpoch sent on its "
                     "behalf, preferred successors %s", dead_id, *sent)

    async def _refresh_quorum_view(self) -> None:
        """Remember the Raft leader's DescribeQuorum (per-voter log end offsets)."""
        controller = self.brokers.get(self.controller_id)
        if controller is None or controller.state != RUNNING:
            return
        view = await describe_quorum(HOST, controller.direct_port)
        if view is not None and view.error_code == 0 and view.leader_id == controller.id:
            self.quorum_view = view

    async def _tell_controller_broker_died(self, dead_id: int, within: float = 15.0) -> None:
        """Fence a dead broker at the active controller so leadership moves at once.

        Sends BrokerHeartbeat(broker_id=dead, broker_epoch=-1, want_fence=True) to the active
        controller; if the dead broker was the controller, waits for the new one first.
        """
        deadline = time.monotonic() + within
        # ask often while a new quorum leader is being elected (tens of ms with the
        # EndQuorumEpoch sent on the dead leader's behalf), then back off
        eager_until = time.monotonic() + 3.0
        refresh = False
        while time.monotonic() < deadline and not self._closing:
            controller = self.brokers.get(self.controller_id)
            if (refresh or controller is None or controller.id == dead_id
                    or controller.state != RUNNING):
                await self._refresh_controller(exclude=dead_id)
                controller = self.brokers.get(self.controller_id)
            if controller is not None and controller.id != dead_id and controller.state == RUNNING:
                try:
                    await fence_broker(HOST, controller.direct_port, dead_id)
                    log.info("told controller %d that broker %d died", controller.id, dead_id)
                    return
                except ProbeError as exc:  # e.g. NOT_CONTROLLER: ask who leads now
                    log.debug("fencing broker %d at %d: %s", dead_id, controller.id, exc)
                    refresh = True
            await asyncio.sleep(0.03 if time.monotonic() < eager_until else 0.2)
        if not self._closing:
            log.warning("could not tell a controller that broker %d died", dead_id)

    # ----------------------------------------------------------------------------- controller

    async def _poll_controller(self) -> None:
        while not self._closing:
            await self._refresh_controller()
            await self._refresh_quorum_view()
            await asyncio.sleep(self.poll_interval if self.ready.is_set() else 0.1)

    async def _refresh_controller(self, exclude: int | None = None) -> None:
        """Ask every running broker for the controller; a self-claim wins, else the majority."""
        asked = [b for b in self.brokers.values() if b.state == RUNNING and b.id != exclude]
        answers = await asyncio.gather(*(probe_controller(HOST, b.direct_port) for b in asked))
        dead = {b.id for b in self.brokers.values() if not b.alive}
        votes = {b.id: a for b, a in zip(asked, answers, strict=True)
                 if a is not None and a >= 0 and a != exclude and a not in dead}
        claims = [bid for bid, a in votes.items() if a == bid]
        if claims:
            controller = max(claims, key=lambda c: sum(1 for a in votes.values() if a == c))
        elif votes:
            values = list(votes.values())
            controller = max(set(values), key=values.count)
        else:
            controller = -1
        if controller != self.controller_id and not self._closing:
            self.controller_id = controller
            log.info("controller is now %d", controller)
            self._publish()

    async def _all_registered(self) -> bool:
        """Whether every broker lists every broker as live (registered and unfenced).

        Clients trust whichever broker answers their Metadata: if one of them had not yet
        applied the latest registrations, a client could forget a broker (librdkafka then
        waits for a controller it no longer knows). So ready means all views agree.
        """
        expected = set(self.brokers)
        views = await asyncio.gather(*(probe_registered(HOST, b.direct_port)
                                       for b in self.brokers.values()))
        return all(view is not None and expected <= view for view in views)

    async def _watch_ready(self) -> None:
        while not self.ready.is_set() and not self._closing:
            if all(b.state == RUNNING for b in self.brokers.values()) and self.controller_id >= 0 \
                    and await self._all_registered():
                self.ready.set()
                self._publish()
                return
            await asyncio.sleep(0.05)

    # ----------------------------------------------------------------------------- cluster.json

    def snapshot(self) -> dict[str, Any]:
        """The cluster.json document."""
        return {
            "brokers": [b.to_json() for b in sorted(self.brokers.values(), key=lambda b: b.id)],
            "controller_id": self.controller_id,
            "bootstrap": self.bootstrap_servers(),
            "ready": self.ready.is_set(),
            "serve_pid": None if self._finished else os.getpid(),
            "data_dir": str(self.data_dir),
            "base_port": self.base_port,
            "fault_proxies": self.fault_proxies,
            "updated_at": time.time(),
        }

    def _publish(self) -> None:
        try:
            write_cluster_json(self.data_dir, self.snapshot())
        except OSError as exc:
            log.error("cannot write cluster.json: %s", exc)

    # ----------------------------------------------------------------------------- actions

    def _broker(self, broker_id: int | None) -> BrokerProcess:
        if broker_id is None:
            raise CtlError("this action needs a broker id")
        b = self.brokers.get(broker_id)
        if b is None:
            ids = ", ".join(str(i) for i in sorted(self.brokers))
            raise CtlError(f"no broker {broker_id} (brokers: {ids})")
        return b

    async def _stop(self, b: BrokerProcess, timeout: float) -> None:
        if not b.alive:
            return
        b.intent = "stop"
        self._signal(b, signal.SIGTERM)
        if b.state == PAUSED:
            self._signal(b, signal.SIGCONT)
        try:
            await asyncio.wait_for(b.exited.wait(), timeout)
        except TimeoutError:
            log.warning("broker %d did not stop within %.0fs: SIGKILL", b.id, timeout)
            self._signal(b, signal.SIGKILL)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(b.exited.wait(), 10.0)

    async def start_broker(self, broker_id: int) -> str:
        b = self._broker(broker_id)
        async with b.lock:
            if b.alive:
                raise CtlError(f"broker {b.id} is already running (pid {b.pid}, {b.state})")
            await self._spawn(b)
            return f"broker {b.id} started (pid {b.pid})"

    async def stop_broker(self, broker_id: int, timeout: float | None = None) -> str:
        b = self._broker(broker_id)
        async with b.lock:
            if not b.alive:
                raise CtlError(f"broker {b.id} is not running ({b.state})")
            pid = b.pid
            await self._stop(b, self.stop_timeout if timeout is None else timeout)
            return f"broker {b.id} stopped (pid {pid}, exit code {b.exit_code})"

    async def kill_broker(self, broker_id: int) -> str:
        b = self._broker(broker_id)
        async with b.lock:
            if not b.alive:
                raise CtlError(f"broker {b.id} is not running ({b.state})")
            pid = b.pid
            b.intent = "kill"
            self._signal(b, signal.SIGKILL)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(b.exited.wait(), 10.0)
            return f"broker {b.id} killed (pid {pid})"

    async def pause_broker(self, broker_id: int) -> str:
        b = self._broker(broker_id)
        async with b.lock:
            if b.state == PAUSED:
                return f"broker {b.id} is already paused (pid {b.pid})"
            if not b.alive:
                raise CtlError(f"broker {b.id} is not running ({b.state})")
            self._signal(b, signal.SIGSTOP)
            b.state = PAUSED
            self._publish()
            return f"broker {b.id} paused (pid {b.pid})"

    async def resume_broker(self, broker_id: int) -> str:
        b = self._broker(broker_id)
        async with b.lock:
            if b.state in (RUNNING, STARTING):
                return f"broker {b.id} is not paused ({b.state})"
            if b.state != PAUSED:
                raise CtlError(f"broker {b.id} is not running ({b.state})")
            self._signal(b, signal.SIGCONT)
            b.state = RUNNING if b.answered else STARTING
            self._publish()
            return f"broker {b.id} resumed (pid {b.pid})"

    async def restart_broker(self, broker_id: int) -> str:
        b = self._broker(broker_id)
        async with b.lock:
            old = b.pid
            await self._stop(b, self.stop_timeout)
            await self._spawn(b)
            was = f"pid {old}" if old else "not running"
            return f"broker {b.id} restarted ({was} -> pid {b.pid})"

    async def add_broker(self) -> str:
        """A new broker N+1 on the next port (not a quorum voter); returns a message."""
        async with self._add_lock:
            broker_id = max(self.brokers) + 1
            port = broker_port(self.base_port, broker_id)
            taken = {b.port for b in self.brokers.values()}
            taken |= {b.metrics_port for b in self.brokers.values()} | {port}
            taken |= {b.direct_port for b in self.brokers.values()}
            b = BrokerProcess(broker_id, port, free_port(avoid=taken),
                              BrokerPaths.of(self.data_dir, broker_id))
            if self.proxies is not None:
                b.listen_port = free_port(avoid=taken | {b.metrics_port})
            self.brokers[broker_id] = b
            self._write_config(b)
            async with b.lock:
                try:
                    if self.proxies is not None:
                        try:
                            await self._add_proxy(b)
                        except StartupError as exc:
                            raise CtlError(str(exc)) from None
                    await self._spawn(b)
                except CtlError:
                    del self.brokers[broker_id]
                    if self.proxies is not None and broker_id in self.proxies:
                        await self.proxies.proxies.pop(broker_id).close()
                    self._publish()
                    raise
            return f"broker {b.id} added on {HOST}:{b.port} (pid {b.pid})"

    async def netfault(self, broker_id: int, fault: str, ms: float | None = None) -> str:
        """Apply a network fault to broker ``broker_id``'s proxy (see core.netfaults.faults).

        ``fault``: latency (with ``ms``), drop, blackhole, isolate or clear. Logged (the
        timeline follows serve.log) and published in cluster.json (each broker's netfault).
        """
        b = self._broker(broker_id)
        if self.proxies is None:
            raise CtlError("network faults need the fault proxies "
                           "(this serve runs with --no-fault-proxies)")
        if fault not in FAULTS and fault != "heal":
            raise CtlError(f"unknown network fault {fault!r} (one of {', '.join(FAULTS)})")
        if fault == "latency" and (not isinstance(ms, int | float) or isinstance(ms, bool)
                                   or ms < 0):
            raise CtlError("latency needs a delay in milliseconds (>= 0)")
        state = self.faults.apply(b.id, fault, ms)
        for other in self.brokers.values():
            fault_json = self.faults.get(other.id).to_json()
            other.netfault = fault_json
        if state.healthy:
            message = f"network fault on broker {b.id} cleared"
        else:
            what = {"isolate": "cut off from the other brokers",
                    "blackhole": "nothing moves to or from it",
                    "drop": "its connections are reset"}.get(state.mode, "")
            message = (f"network fault on broker {b.id}: {state.describe()}"
                       + (f" ({what})" if what else ""))
        log.info("%s", message)
        self._publish()
        return message

    async def handle(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """One ctl request -> response (see core.cluster.ctl_socket)."""
        action = request.get("action", request.get("cmd"))
        broker_id = request.get("id", request.get("broker"))
        if broker_id is not None and not isinstance(broker_id, int):
            return {"ok": False, "error": f"bad broker id {broker_id!r}"}
        actions = {
            "start": self.start_broker, "stop": self.stop_broker, "kill": self.kill_broker,
            "pause": self.pause_broker, "resume": self.resume_broker,
            "restart": self.restart_broker,
        }
        try:
            if self._closing:
                raise CtlError("serve is shutting down")
            if action in ("ping", "status"):
                message = "ok"
            elif action == "add":
                message = await self.add_broker()
            elif action == "netfault":
                message = await self.netfault(self._broker(broker_id).id,
                                              str(request.get("fault")), request.get("ms"))
            elif action in actions:
                message = await actions[action](self._broker(broker_id).id)
            else:
                raise CtlError(f"unknown action {action!r}")
        except CtlError as exc:
            return {"ok": False, "error": str(exc)}
        return {"ok": True, "message": message, "status": self.snapshot()}

    # ----------------------------------------------------------------------------- ctl socket

    async def _start_ctl_server(self) -> None:
        path = ctl_socket.ctl_socket_path(self.data_dir)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # stale: we hold the lock, so no serve owns it
        with ctl_socket.addressable(path) as address:
            self._server = await asyncio.start_unix_server(self._serve_ctl, path=address)
        os.chmod(path, 0o600)

    async def _serve_ctl(self, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                try:
                    request = ctl_socket.decode_message(line)
                except ValueError as exc:
                    response: dict[str, Any] = {"ok": False, "error": f"bad request: {exc}"}
                else:
                    response = await self.handle(request)
                writer.write(ctl_socket.encode_message(response))
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()


def tail(path: Path, lines: int = 20) -> str:
    """The last lines of a log file (for error messages)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 8192))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
