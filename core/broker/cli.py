"""`python main.py broker --config FILE`: run one broker process until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import logging
import os
import signal
import sys
import threading
import time

from core.common.config import BrokerConfig, load_properties
from core.common.errors import KafkaError
from core.raft.node import LostLogError


def run_broker(args: argparse.Namespace) -> int:
    """Load the config file (flags override), start the broker, stop cleanly on a signal."""
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr,
        format="[%(asctime)s] %(levelname)s %(name)s: %(message)s")
    try:
        props = load_properties(args.config)
    except OSError as exc:
        print(f"error: cannot read broker config {args.config}: {exc.strerror}", file=sys.stderr)
        return 2
    for override in args.override:
        key, sep, value = override.partition("=")
        if not sep:
            print(f"error: --override needs KEY=VALUE, got {override!r}", file=sys.stderr)
            return 2
        props[key.strip()] = value.strip()
    try:
        config = BrokerConfig(props)
    except KafkaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(_serve(config))


def _dump_tasks() -> None:
    """SIGUSR1: log where every asyncio task is waiting (for diagnosing a stuck request)."""
    logger = logging.getLogger("kaflab.tasks")
    for task in asyncio.all_tasks():
        chain = []
        awaited = task.get_coro()
        while awaited is not None and len(chain) < 20:
            frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
            if frame is not None:
                chain.append(f"{frame.f_code.co_name}:{frame.f_lineno}")
            awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)
        logger.warning("task %s: %s", task.get_name(), " -> ".join(chain))


async def _serve(config: BrokerConfig) -> int:
    from core.broker.server import BrokerServer

    broker = BrokerServer(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, _dump_tasks)
    try:
        await broker.start()
    except (OSError, LostLogError) as exc:
        logging.getLogger(__name__).error("broker %s cannot start: %s", config["node.id"], exc)
        return 1
    print(f"broker {broker.node_id} started on {broker.host}:{broker.port}"
          f" metrics_port={broker.metrics_port}", flush=True)
    await stop.wait()
    await broker.stop()
    exit_if_stuck(EXIT_GRACE_S)
    return 0


#: how long the process may take to exit once the broker has stopped (logs closed)
EXIT_GRACE_S = 5.0


def exit_if_stuck(after_s: float) -> None:
    """Once the broker has stopped (logs flushed, checkpoints written, files closed), the
    interpreter still cancels the remaining tasks and joins executor threads; a task that
    swallows its cancellation or a thread blocked in a system call would keep the process
    alive until the supervisor's SIGKILL (seen once: 30 s). After `after_s`, log every
    thread's stack (to find the culprit) and exit with 0: nothing is left to lose."""
    def watchdog() -> None:
        time.sleep(after_s)
        logging.getLogger(__name__).error(
            "process still running %.0f s after the broker stopped: exiting; threads:", after_s)
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        sys.stderr.flush()
        os._exit(0)

    threading.Thread(target=watchdog, name="exit-watchdog", daemon=True).start()
