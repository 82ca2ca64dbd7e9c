"""`python main.py serve ...` and `python main.py ctl ...`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from core.cluster.client import ClusterControl, ClusterControlError
from core.cluster.ctl_socket import BROKER_ACTIONS
from core.cluster.layout import default_data_dir, parse_overrides
from core.cluster.lock import AlreadyRunningError
from core.cluster.supervisor import StartupError, Supervisor

log = logging.getLogger("kaflab.cluster")


def _data_dir(args: argparse.Namespace) -> Path:
    raw = getattr(args, "data_dir", None)
    return Path(raw).expanduser().absolute() if raw else default_data_dir()


def run_serve(args: argparse.Namespace) -> int:
    """Run a local cluster in the foreground until SIGINT/SIGTERM; 0 on a clean stop."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="kaflab serve: %(message)s")
    try:
        overrides = parse_overrides(args.config)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.brokers < 1:
        print("error: --brokers must be at least 1", file=sys.stderr)
        return 2
    try:
        supervisor = Supervisor(_data_dir(args), brokers=args.brokers, port=args.port,
                                overrides=overrides,
                                fault_proxies=not getattr(args, "no_fault_proxies", False))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(_serve(supervisor))


async def _serve(supervisor: Supervisor) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # hangup: stop cleanly too
        loop.add_signal_handler(sig, stop.set)
    try:
        await supervisor.start()
    except AlreadyRunningError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (StartupError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    log.info("cluster in %s, brokers %s; waiting for them", supervisor.data_dir,
             supervisor.bootstrap_servers())
    ready = loop.create_task(supervisor.wait_ready())
    stopped = loop.create_task(stop.wait())
    await asyncio.wait({ready, stopped}, return_when=asyncio.FIRST_COMPLETED)
    code = 0
    if ready.done() and ready.exception() is not None:
        print(f"error: {ready.exception()}", file=sys.stderr)
        code = 1
    elif ready.done():
        print(f"ready bootstrap={supervisor.bootstrap_servers()}", flush=True)
        await stopped
    ready.cancel()
    stopped.cancel()
    log.info("stopping brokers")
    await supervisor.shutdown()
    log.info("stopped")
    return code


def run_ctl(args: argparse.Namespace) -> int:
    """Send one action to the serve running on --data-dir; print the result."""
    control = ClusterControl(_data_dir(args))
    action = args.action
    broker_id = getattr(args, "broker_id", None)
    if action in BROKER_ACTIONS and broker_id is None:
        print(f"error: ctl {action} needs a broker id", file=sys.stderr)
        return 1
    extra: dict[str, Any] = {}
    if action == "netfault":
        try:
            extra = parse_netfault(getattr(args, "fault_args", None) or [])
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    try:
        response = control.request_sync(action, broker_id if action in BROKER_ACTIONS else None,
                                        **extra)
    except ClusterControlError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if action == "status":
        print(format_status(response["status"]))
    else:
        print(response["message"])
    return 0


def parse_netfault(words: list[str]) -> dict[str, Any]:
    """`latency 200` | `drop` | `blackhole` | `isolate` | `clear` -> {"fault", "ms"}."""
    if not words:
        raise ValueError("ctl netfault ID needs a fault: latency MS|drop|blackhole|isolate|clear")
    fault, rest = words[0], words[1:]
    if fault == "latency":
        if len(rest) != 1:
            raise ValueError("ctl netfault ID latency needs a delay in milliseconds")
        try:
            ms = float(rest[0])
        except ValueError:
            raise ValueError(f"bad delay {rest[0]!r}: milliseconds expected") from None
        return {"fault": fault, "ms": ms}
    if rest:
        raise ValueError(f"unexpected {' '.join(rest)!r} after {fault}")
    return {"fault": fault}


def format_status(document: dict[str, Any]) -> str:
    """The status table: id, address, state, pid, a mark on the active controller, and each
    broker's network fault when any is active."""
    controller = document.get("controller_id", -1)
    faults = any(b.get("netfault") for b in document.get("brokers", []))
    rows = [("ID", "ADDRESS", "STATE", "PID", "CONTROLLER") + (("NETFAULT",) if faults else ())]
    for b in document.get("brokers", []):
        row = (str(b["id"]), f"{b['host']}:{b['port']}", str(b["state"]),
               "-" if b.get("pid") is None else str(b["pid"]),
               "*" if b["id"] == controller else "")
        if faults:
            row += ((b.get("netfault") or {}).get("text", "-"),)
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in rows]
    known = controller if controller is not None and controller >= 0 else "unknown"
    lines.append(f"controller: {known}   bootstrap: {document.get('bootstrap', '')}")
    return "\n".join(lines)
