"""SIGKILL a broker during heavy acks=all produce, again and again: each time it restarts, it
recovers its logs (torn tails truncated, indexes rebuilt), catches up from the leaders and is
back in every ISR (seen through an admin client); nothing acknowledged is lost or duplicated."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from core.cluster.local import LocalCluster, free_base_port
from tests.faults.harness import CLUSTER_CONFIG, ProducerWorker, check, read_all

pytestmark = pytest.mark.timeout(300)

TOPIC = "crash"
PARTITIONS = 3
KILLS = 4


def isr_of(admin: AdminClient) -> dict[int, tuple[int, list[int]]]:
    md = admin.list_topics(TOPIC, timeout=10)
    return {p: (m.leader, list(m.isrs)) for p, m in md.topics[TOPIC].partitions.items()}


def wait_for(predicate, timeout: float, what: str) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            if predicate():
                return time.monotonic() - start
        except Exception:  # metadata can be briefly unavailable
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


@pytest.fixture
def cluster(tmp_path: Path):
    local = LocalCluster(tmp_path / "cluster", brokers=3, port=free_base_port(3),
                         config=CLUSTER_CONFIG, ready_timeout=120)
    local.start()
    try:
        yield local
    finally:
        local.stop()


def test_sigkill_under_heavy_produce_recovers_and_rejoins_isr(cluster: LocalCluster) -> None:
    assert cluster.bootstrap
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    admin.create_topics([NewTopic(TOPIC, PARTITIONS, 3, config={
        "min.insync.replicas": "2", "segment.bytes": "262144"})])[TOPIC].result(30)
    wait_for(lambda: all(len(isr) == 3 for _, isr in isr_of(admin).values()), 30, "full ISR")
    partitions = [(TOPIC, p) for p in range(PARTITIONS)]
    workers = [ProducerWorker(i, cluster.bootstrap, partitions, rate=1500) for i in range(2)]
    for w in workers:
        w.start()
    control = cluster.control
    rejoin_times = []
    try:
        wait_for(lambda: sum(w.acked_count() for w in workers) > 2000, 60, "first acks")
        for round_ in range(KILLS):
            # alternate: the leader of a partition, then a follower-only broker, ...
            state = isr_of(admin)
            leader = state[round_ % PARTITIONS][0]
            victim = leader if round_ % 2 == 0 else next(
                b for b in (1, 2, 3) if b != leader)
            before = sum(w.acked_count() for w in workers)
            control.kill_sync(victim)
            wait_for(lambda v=victim: all(v not in isr for _, isr in isr_of(admin).values()),
                     30, f"broker {victim} out of every ISR")
            wait_for(lambda b=before: sum(w.acked_count() for w in workers) > b + 500, 30,
                     "writes continue with one broker dead")
            time.sleep(1.0)
            control.start_sync(victim)
            took = wait_for(lambda: all(len(isr) == 3 for _, isr in isr_of(admin).values()),
                            90, f"broker {victim} back in every ISR")
            rejoin_times.append(took)
    finally:
        for w in workers:
            w.stop()
    print("rejoin seconds:", [round(t, 1) for t in rejoin_times])
    records = read_all(cluster.bootstrap, {tp: 0 for tp in partitions})
    verdict = check(workers, records, [])
    assert verdict.acknowledged > 5000, verdict
    assert verdict.lost == 0, verdict.problems
    assert verdict.duplicated == 0, verdict.problems
    assert verdict.out_of_order == 0, verdict.problems
    assert verdict.offset_gaps == 0, verdict.problems
    # every replica holds the same log: the restarted brokers caught up completely
    dirs = sorted(Path(cluster.data_dir).glob(f"broker-*/data/{TOPIC}-0"))
    assert len(dirs) == 3
    sizes = {d.parent.parent.name: sum(f.stat().st_size for f in d.glob("*.log")) for d in dirs}
    wait_for(lambda: len({sum(f.stat().st_size for f in d.glob("*.log")) for d in dirs}) == 1,
             30, f"replica logs of {TOPIC}-0 equal in size ({sizes})")
