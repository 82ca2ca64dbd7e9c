"""cluster.json: the supervisor's published view of the cluster, and reading it back.

Shape (extra keys may be added; these are the contract):
    {"brokers": [{"id", "host", "port", "pid", "metrics_port", "state"}], "controller_id"}
`controller_id` is -1 while unknown (Kafka's convention); `pid` is null when no process runs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from core.cluster.layout import CLUSTER_JSON, write_atomic

STARTING = "starting"
RUNNING = "running"
PAUSED = "paused"
STOPPED = "stopped"
KILLED = "killed"
CRASHED = "crashed"
STATES = (STARTING, RUNNING, PAUSED, STOPPED, KILLED, CRASHED)
ALIVE_STATES = (STARTING, RUNNING, PAUSED)


def cluster_json_path(data_dir: str | os.PathLike[str]) -> Path:
    return Path(data_dir) / CLUSTER_JSON


def write_cluster_json(data_dir: str | os.PathLike[str], document: dict[str, Any]) -> None:
    """Atomically replace D/cluster.json (temp file + rename)."""
    write_atomic(cluster_json_path(data_dir), json.dumps(document, indent=2) + "\n")


def read_cluster_json(data_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """D/cluster.json as a dict, or None when there is none (or it cannot be parsed)."""
    try:
        text = cluster_json_path(data_dir).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        return None
    return document if isinstance(document, dict) else None
