"""TimelineRecorder against a real broker: snapshots recorded every tick, events parsed from
broker / serve log files as they are written, and "state at time T" before and after a
topic was created."""

from __future__ import annotations

import asyncio
import time

import pytest

from core.admin.client import AdminClient
from core.timeline.recorder import TimelineRecorder
from core.timeline.store import TimelineStore

pytestmark = pytest.mark.timeout(60)


def test_recorder_snapshots_events_and_state_at(kafka_broker, topic_name, tmp_path):
    data_dir = tmp_path / "cluster"
    (data_dir / "broker-1").mkdir(parents=True)
    broker_log = data_dir / "broker-1" / "broker.log"
    serve_log = data_dir / "serve.log"
    broker_log.write_text("[2020-01-01 00:00:00,000] INFO x: created topic old: 1 partitions\n")
    serve_log.write_text("kaflab serve: started broker 1 (pid 1) on 127.0.0.1:1\n")

    async def scenario() -> tuple[float, float]:
        recorder = TimelineRecorder(tmp_path / "t.sqlite", kafka_broker.bootstrap,
                                    data_dir=data_dir, interval_s=0.3)
        task = asyncio.ensure_future(recorder.run())
        try:
            while recorder.snapshots < 3:
                await asyncio.sleep(0.1)
            before = time.time()
            async with AdminClient(kafka_broker.bootstrap) as admin:
                await admin.create_topic(topic_name, 2, 1)
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())
            with open(broker_log, "a") as fh:
                fh.write(f"[{stamp},500] INFO core.metadata.controller: created topic "
                         f"{topic_name}: 2 partitions, replication factor 1\n")
                fh.write(f"[{stamp},600] INFO core.broker.quorum: ISR of {topic_name}-0 "
                         "shrunk from [1, 2] to [1]\n")
                fh.write(f"[{stamp},700] INFO core.broker.server: nothing to see\n")
            with open(serve_log, "a") as fh:
                fh.write("kaflab serve: broker 2 (pid 42) exited with -9: killed\n")
            recorder.note("scenario-fault", "kill broker 2")
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                await asyncio.sleep(0.3)
                snap = recorder.poller.latest
                if snap is not None and snap.topic(topic_name) is not None \
                        and recorder.snapshots >= 6:
                    break
            after = time.time()
            await asyncio.sleep(1.5)
        finally:
            recorder.stop()
            await task
            await recorder.aclose()
        return before, after

    before, after = asyncio.run(scenario())
    store = TimelineStore(tmp_path / "t.sqlite")
    try:
        assert store.count() >= 6
        then = store.state_at(before - 0.01)
        assert then is not None and then.topic(topic_name) is None
        now = store.state_at(after + 0.5)
        assert now is not None and len(now.topic(topic_name).partitions) == 2
        assert store.state_at(store.span()[0] - 10) is None
        events = store.events_between(before - 60, after + 60)
        kinds = [e.kind for e in events]
        assert "topic-created" in kinds and "isr-shrink" in kinds
        assert "broker-killed" in kinds and "scenario-fault" in kinds
        killed = next(e for e in events if e.kind == "broker-killed")
        assert killed.broker == 2 and killed.is_fault
        # lines that were in the files before recording started are not events
        assert all("old" not in e.text for e in events)
        assert all("nothing to see" not in e.text for e in events)
    finally:
        store.close()
