"""Metadata snapshots (KIP-630) on a real 3-broker cluster.

A small metadata.log.max.record.bytes.between.snapshots makes every quorum member snapshot its
metadata image often and delete its metadata log before the snapshot. A broker that was down
while many topics were created comes back with a log that ends below the leader's log start:
it must catch up through FetchSnapshot, and then report the same topics, partitions, leaders,
replicas and ISRs as the others. A restarted broker starts from its own snapshot.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from core.cluster.layout import BrokerPaths
from core.cluster.local import LocalCluster, free_base_port
from core.raft.file_log import FileLog
from core.raft.snapshot import FileSnapshotStore
from tests.fixtures import wait_for

pytestmark = pytest.mark.timeout(300)

SNAPSHOT_BYTES = 2000


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    data_dir: Path = tmp_path_factory.mktemp("snapshots")
    local = LocalCluster(data_dir, brokers=3, port=free_base_port(3), config={
        "metadata.log.max.record.bytes.between.snapshots": str(SNAPSHOT_BYTES),
        "offsets.topic.num.partitions": "3", "group.initial.rebalance.delay.ms": "0",
        "auto.leader.rebalance.enable": "false"})
    local.start()
    try:
        yield local
    finally:
        local.stop()


def quorum_dir(cluster: LocalCluster, broker_id: int) -> Path:
    return BrokerPaths.of(cluster.data_dir, broker_id).root / "data" / "metadata-quorum"


def log_start_offset(path: Path) -> int:
    """Read-only peek at raft.log: a first record flagged 'base' carries the start offset."""
    with open(path, "rb") as f:
        head = f.read(8 + 13)
    if len(head) < 21:
        return 0
    offset, _epoch, flags = struct.unpack_from(">qiB", head, 8)
    return offset if flags & 0x02 else 0


def port_of(cluster: LocalCluster, broker_id: int) -> int:
    doc = cluster.control.read_cluster_json()
    assert doc is not None
    return next(b["port"] for b in doc["brokers"] if b["id"] == broker_id)


def metadata_via(cluster: LocalCluster, broker_id: int) -> dict[str, object]:
    """Topics -> partition -> (leader, replicas, isr) as one broker reports them."""
    admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{port_of(cluster, broker_id)}"})
    md = admin.list_topics(timeout=10)
    return {name: {p: (pm.leader, list(pm.replicas), sorted(pm.isrs))
                   for p, pm in topic.partitions.items()}
            for name, topic in md.topics.items() if not name.startswith("__")}


def broker_log(cluster: LocalCluster, broker_id: int) -> str:
    path = BrokerPaths.of(cluster.data_dir, broker_id).root / "broker.log"
    return path.read_text(errors="replace")


def create_topics(admin: AdminClient, names: list[str], rf: int) -> None:
    futures = admin.create_topics([NewTopic(n, num_partitions=2, replication_factor=rf)
                                   for n in names], operation_timeout=30)
    for future in futures.values():
        future.result(60)


def test_lagging_broker_catches_up_through_fetch_snapshot(cluster: LocalCluster) -> None:
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    controller = admin.list_topics(timeout=10).controller_id
    victim = next(b for b in (1, 2, 3) if b != controller)
    cluster.control.stop_sync(victim)
    victim_log = FileLog(quorum_dir(cluster, victim) / "raft.log", fsync=False)
    victim_end = victim_log.end_offset()
    victim_log.close()

    names = [f"snap-{i:03d}" for i in range(60)]
    create_topics(admin, names, rf=2)
    leader_log = quorum_dir(cluster, controller) / "raft.log"
    wait_for(lambda: log_start_offset(leader_log) > victim_end, timeout=30,
             what="the leader deleted its metadata log past the stopped broker's end")
    assert list(quorum_dir(cluster, controller).glob("*.checkpoint"))

    cluster.control.start_sync(victim)
    expected = metadata_via(cluster, controller)
    assert set(names) <= set(expected)
    wait_for(lambda: metadata_via(cluster, victim) == metadata_via(cluster, controller),
             timeout=60, what="the restarted broker's metadata equals the controller's")
    assert "metadata loaded from snapshot fetched from the leader" in broker_log(cluster, victim)
    store = FileSnapshotStore(quorum_dir(cluster, victim), fsync=False)
    assert store.latest() is not None
    assert log_start_offset(quorum_dir(cluster, victim) / "raft.log") > victim_end
    # and it keeps following the log after the snapshot
    create_topics(admin, ["after-snapshot"], rf=3)
    wait_for(lambda: "after-snapshot" in metadata_via(cluster, victim), timeout=30,
             what="a topic created after the catch-up reaches the restarted broker")


def test_restarted_broker_loads_its_own_snapshot(cluster: LocalCluster) -> None:
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    controller = admin.list_topics(timeout=10).controller_id
    broker = next(b for b in (1, 2, 3) if b != controller)
    create_topics(admin, [f"own-{i:02d}" for i in range(20)], rf=3)
    wait_for(lambda: FileSnapshotStore(quorum_dir(cluster, broker), fsync=False).latest(),
             timeout=30, what="the broker wrote a snapshot of its own")
    before = broker_log(cluster, broker).count("metadata loaded from local snapshot")
    cluster.control.restart_sync(broker)
    wait_for(lambda: broker_log(cluster, broker).count("metadata loaded from local snapshot")
             > before, timeout=30, what="the restarted broker loaded its local snapshot")
    wait_for(lambda: metadata_via(cluster, broker) == metadata_via(cluster, controller),
             timeout=60, what="the restarted broker's metadata equals the controller's")
