"""Driving a running `serve` from elsewhere (the console, `ctl`, tests): ClusterControl.

It talks JSON lines over D/ctl.sock (see core.cluster.ctl_socket). Every action has an async
method (`await control.kill(2)`) and a blocking twin with a `_sync` suffix
(`control.kill_sync(2)`); the blocking ones use a plain socket, never an event loop, so they are
safe from any thread. `read_cluster_json(D)` reads the published state without a serve.
"""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path
from typing import Any

from core.cluster import ctl_socket
from core.cluster.layout import default_data_dir
from core.cluster.lock import lock_holder
from core.cluster.state import read_cluster_json

__all__ = ["ClusterControl", "ClusterControlError", "NotRunningError", "read_cluster_json"]


class ClusterControlError(Exception):
    """The serve refused the request (unknown broker, broker not running, ...)."""


class NotRunningError(ClusterControlError):
    """No serve answers on this data dir."""


class ClusterControl:
    """Client of the ctl socket of the `serve` running on `data_dir` (default: the user's)."""

    def __init__(self, data_dir: str | os.PathLike[str] | None = None,
                 timeout: float = 60.0) -> None:
        self.data_dir = Path(data_dir).expanduser().absolute() if data_dir else default_data_dir()
        self.timeout = timeout

    @property
    def socket_path(self) -> Path:
        return ctl_socket.ctl_socket_path(self.data_dir)

    def _not_running(self, why: object) -> NotRunningError:
        return NotRunningError(f"no kaflab serve running on {self.data_dir} ({why})")

    @staticmethod
    def _result(response: dict[str, Any]) -> dict[str, Any]:
        if not response.get("ok"):
            raise ClusterControlError(str(response.get("error", "request failed")))
        return response

    # ------------------------------------------------------------------ async

    async def request(self, action: str, broker_id: int | None = None,
                      **extra: Any) -> dict[str, Any]:
        """Send one ctl request; returns the response ({"ok", "message", "status"})."""
        message = ctl_socket.encode_message({"action": action, "id": broker_id, **extra})
        try:
            with ctl_socket.addressable(self.socket_path) as address:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_unix_connection(address, limit=16 * 1024 * 1024), 5.0)
        except (OSError, TimeoutError) as exc:
            raise self._not_running(exc.strerror if isinstance(exc, OSError) else "timeout") \
                from None
        try:
            writer.write(message)
            await writer.drain()
            line = await asyncio.wait_for(reader.readline(), self.timeout)
        except (OSError, TimeoutError) as exc:
            raise self._not_running(exc) from None
        finally:
            writer.close()
        if not line:
            raise self._not_running("connection closed")
        return self._result(ctl_socket.decode_message(line))

    async def status(self) -> dict[str, Any]:
        """The live cluster document (cluster.json's shape)."""
        return (await self.request("status"))["status"]

    async def start(self, broker_id: int) -> str:
        return (await self.request("start", broker_id))["message"]

    async def stop(self, broker_id: int) -> str:
        return (await self.request("stop", broker_id))["message"]

    async def kill(self, broker_id: int) -> str:
        return (await self.request("kill", broker_id))["message"]

    async def pause(self, broker_id: int) -> str:
        return (await self.request("pause", broker_id))["message"]

    async def resume(self, broker_id: int) -> str:
        return (await self.request("resume", broker_id))["message"]

    async def restart(self, broker_id: int) -> str:
        return (await self.request("restart", broker_id))["message"]

    async def add(self) -> str:
        return (await self.request("add"))["message"]

    async def netfault(self, broker_id: int, fault: str, ms: float | None = None) -> str:
        """Network fault on broker ``broker_id``'s proxy: ``latency`` (``ms``), ``drop``,
        ``blackhole``, ``isolate`` (cut off from the other brokers only) or ``clear``."""
        return (await self.request("netfault", broker_id, fault=fault, ms=ms))["message"]

    async def is_running_async(self) -> bool:
        try:
            await self.request("ping")
        except ClusterControlError:
            return False
        return True

    # ------------------------------------------------------------------ blocking

    def request_sync(self, action: str, broker_id: int | None = None,
                     **extra: Any) -> dict[str, Any]:
        """Blocking `request` over a plain socket."""
        message = ctl_socket.encode_message({"action": action, "id": broker_id, **extra})
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(5.0)
            try:
                with ctl_socket.addressable(self.socket_path) as address:
                    sock.connect(address)
            except OSError as exc:
                raise self._not_running(exc.strerror or exc) from None
            sock.settimeout(self.timeout)
            try:
                sock.sendall(message)
                chunks = bytearray()
                while not chunks.endswith(b"\n"):
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    chunks += chunk
            except OSError as exc:
                raise self._not_running(exc) from None
        finally:
            sock.close()
        if not chunks:
            raise self._not_running("connection closed")
        return self._result(ctl_socket.decode_message(bytes(chunks)))

    def status_sync(self) -> dict[str, Any]:
        return self.request_sync("status")["status"]

    def start_sync(self, broker_id: int) -> str:
        return self.request_sync("start", broker_id)["message"]

    def stop_sync(self, broker_id: int) -> str:
        return self.request_sync("stop", broker_id)["message"]

    def kill_sync(self, broker_id: int) -> str:
        return self.request_sync("kill", broker_id)["message"]

    def pause_sync(self, broker_id: int) -> str:
        return self.request_sync("pause", broker_id)["message"]

    def resume_sync(self, broker_id: int) -> str:
        return self.request_sync("resume", broker_id)["message"]

    def restart_sync(self, broker_id: int) -> str:
        return self.request_sync("restart", broker_id)["message"]

    def add_sync(self) -> str:
        return self.request_sync("add")["message"]

    def netfault_sync(self, broker_id: int, fault: str, ms: float | None = None) -> str:
        """Blocking ``netfault``."""
        return self.request_sync("netfault", broker_id, fault=fault, ms=ms)["message"]

    def is_running(self) -> bool:
        """True when a serve answers on the ctl socket (blocking, at most a few seconds)."""
        if lock_holder(self.data_dir) is None:
            return False
        try:
            self.request_sync("ping")
        except ClusterControlError:
            return False
        return True

    def serve_pid(self) -> int | None:
        """The pid of the serve holding the data dir's lock, or None."""
        pid = lock_holder(self.data_dir)
        return pid if pid and pid > 0 else None

    def read_cluster_json(self) -> dict[str, Any] | None:
        """D/cluster.json (may be stale if no serve runs)."""
        return read_cluster_json(self.data_dir)
