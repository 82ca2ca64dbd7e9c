"""The ctl socket, D/ctl.sock: newline-delimited JSON, one request and one response a line.

Request:  {"action": "status"|"ping"|"start"|"stop"|"kill"|"pause"|"resume"|"restart"|"add",
           "id": <broker id, for per-broker actions>}
          {"action": "netfault", "id": N, "fault": "latency"|"drop"|"blackhole"|"isolate"|
           "clear", "ms": M}   (also spelled {"cmd": "netfault", "broker": N, ...})
Response: {"ok": true, "message": str, "status": <cluster.json document>}
          {"ok": false, "error": str}

Unix socket paths are limited to ~107 bytes; for a deeper data dir we bind/connect through
/proc/self/fd/<dir fd>/ctl.sock, which names the same file with a short path (Linux).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from core.cluster.layout import CTL_SOCKET

MAX_SUN_PATH = 100
ACTIONS = ("ping", "status", "start", "stop", "kill", "pause", "resume", "restart", "add",
           "netfault")
BROKER_ACTIONS = ("start", "stop", "kill", "pause", "resume", "restart", "netfault")


def ctl_socket_path(data_dir: str | os.PathLike[str]) -> Path:
    return Path(data_dir) / CTL_SOCKET


@contextlib.contextmanager
def addressable(path: Path) -> Iterator[str]:
    """A path string for bind/connect to `path` that fits in sockaddr_un."""
    text = str(path)
    if len(text.encode()) < MAX_SUN_PATH:
        yield text
        return
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


def encode_message(message: dict[str, Any]) -> bytes:
    return (json.dumps(message, separators=(",", ":")) + "\n").encode()


def decode_message(line: bytes) -> dict[str, Any]:
    message = json.loads(line)
    if not isinstance(message, dict):
        raise ValueError("expected a JSON object")
    return message
