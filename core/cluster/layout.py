"""On-disk layout of a local cluster and each broker's server.properties (Kafka names).

    D/serve.lock                 the running serve's lock (flock) holding its pid
    D/ctl.sock                   the running serve's control socket (JSON lines)
    D/cluster.json               brokers, their pids, ports, states and the active controller
                                 (with fault proxies: each broker's internal listen_port)
    D/broker-<id>/server.properties
    D/broker-<id>/broker.log     the broker process's stdout and stderr
    D/broker-<id>/data           log.dirs

Pure functions only: no processes, no sockets except `free_port`/`port_is_free`.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
MAX_VOTERS = 3
LOCK_FILE = "serve.lock"
CTL_SOCKET = "ctl.sock"
CLUSTER_JSON = "cluster.json"


def default_data_dir() -> Path:
    """platformdirs' user data dir for kaflab, plus /cluster."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("kaflab")) / "cluster"


@dataclass(frozen=True, slots=True)
class BrokerPaths:
    """Where broker `broker_id` keeps its config, log file and data under cluster dir D."""

    root: Path

    @classmethod
    def of(cls, data_dir: str | os.PathLike[str], broker_id: int) -> BrokerPaths:
        return cls(Path(data_dir) / f"broker-{broker_id}")

    @property
    def config(self) -> Path:
        return self.root / "server.properties"

    @property
    def log_file(self) -> Path:
        return self.root / "broker.log"

    @property
    def data(self) -> Path:
        return self.root / "data"


def broker_port(base_port: int, broker_id: int) -> int:
    """Broker i listens on P + i - 1."""
    return base_port + broker_id - 1


def bootstrap(base_port: int, broker_ids: list[int] | range) -> str:
    """`127.0.0.1:P,127.0.0.1:P+1,...` for the given broker ids."""
    return ",".join(f"{HOST}:{broker_port(base_port, i)}" for i in broker_ids)


def quorum_voters(base_port: int, brokers: int) -> str:
    """controller.quorum.voters: every broker up to 3, beyond that the first 3."""
    return ",".join(f"{i}@{HOST}:{broker_port(base_port, i)}"
                    for i in range(1, min(MAX_VOTERS, brokers) + 1))


def parse_overrides(items: list[str] | None) -> dict[str, str]:
    """`KEY=VALUE` strings (the --config flags) to a dict; raises ValueError on a bad item."""
    overrides: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"bad --config {item!r}: expected KEY=VALUE")
        overrides[key] = value.strip()
    return overrides


def broker_properties(*, broker_id: int, base_port: int, voters_of: int, data_dir: Path,
                      metrics_port: int, overrides: Mapping[str, str] | None = None,
                      replication_brokers: int | None = None,
                      listen_port: int | None = None) -> dict[str, str]:
    """The server.properties of one broker, Kafka property names, overrides applied last.

    `voters_of` is the cluster size the quorum was laid out for (voters = first min(3, it));
    `replication_brokers` (default: voters_of) sizes the default replication factors.
    `listen_port` (fault proxies on): the broker binds this internal port and advertises
    P+i-1, where its proxy listens; the quorum voters are the proxies' addresses as always.
    """
    n = replication_brokers if replication_brokers is not None else voters_of
    rf = str(min(3, max(1, n)))
    voter = broker_id <= min(MAX_VOTERS, voters_of)
    public = f"PLAINTEXT://{HOST}:{broker_port(base_port, broker_id)}"
    props = {
        "node.id": str(broker_id),
        "process.roles": "broker,controller" if voter else "broker",
        "listeners": public if listen_port is None else f"PLAINTEXT://{HOST}:{listen_port}",
        "log.dirs": str(data_dir),
        "metrics.port": str(metrics_port),
        "controller.quorum.voters": quorum_voters(base_port, voters_of),
        "default.replication.factor": rf,
        "offsets.topic.replication.factor": rf,
        "min.insync.replicas": "1",
    }
    if listen_port is not None:
        props["advertised.listeners"] = public
    props.update(overrides or {})
    return props


def render_properties(props: Mapping[str, str], header: str = "") -> str:
    """Java .properties text, one `key=value` a line, in insertion order."""
    lines = [f"# {line}" for line in header.splitlines()]
    lines += [f"{key}={value}" for key, value in props.items()]
    return "\n".join(lines) + "\n"


def write_atomic(path: Path, text: str) -> None:
    """Write text to path via a temp file in the same directory and rename (never torn)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def port_is_free(port: int, host: str = HOST) -> bool:
    """True when nothing listens on host:port (bound with SO_REUSEADDR, like our brokers)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def free_port(host: str = HOST, avoid: set[int] | frozenset[int] = frozenset()) -> int:
    """A port the OS reports free right now, not in `avoid`."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = sock.getsockname()[1]
        if port not in avoid:
            return port
    raise OSError("no free port found")
