"""SnapshotPoller never raises for cluster-side failures: errors land in snapshot.errors."""

from __future__ import annotations

import asyncio
import os
import socket

import pytest

from core.admin.poller import SnapshotPoller

pytestmark = pytest.mark.timeout(20)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_cluster_gives_an_error_snapshot_with_process_info():
    async def main():
        poller = SnapshotPoller(f"127.0.0.1:{_closed_port()}", interval_s=0.05,
                                process_info=lambda: {1: (os.getpid(), "paused"), 2: (None, "")},
                                request_timeout=1)
        snaps = []
        async for snap in poller.snapshots():
            snaps.append(snap)
            if len(snaps) == 2:
                poller.stop()
        await poller.close()
        return snaps

    snaps = asyncio.run(main())
    assert len(snaps) == 2
    last = snaps[-1]
    assert last.errors and last.errors[0].startswith("metadata:")
    states = {b.id: b.state for b in last.brokers}
    assert states == {1: "paused", 2: "offline"}
    me = last.broker(1)
    assert me.pid == os.getpid() and me.memory_bytes and me.cpu_percent is not None
