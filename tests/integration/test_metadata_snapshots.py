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


def test_fetch_snapshot_over_the_wire(cluster: LocalCluster) -> None:
    """FetchSnapshot (59) answered by the quorum leader to a plain Kafka client: chunks that
    reassemble into a valid snapshot; Kafka's error codes for a bad id or position."""
    import asyncio

    from kio.schema.errors import ErrorCode

    from core.network.client import KafkaConnection
    from core.protocol.build import build
    from core.protocol.codec import request_class
    from core.raft.messages import FetchSnapshotRequest
    from core.raft.snapshot import SnapshotId, decode_snapshot
    from core.raft.wire import fetch_snapshot_response, to_kio

    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    leader = admin.list_topics(timeout=10).controller_id
    latest = FileSnapshotStore(quorum_dir(cluster, leader), fsync=False).latest()
    assert latest is not None
    cluster_id = admin.list_topics(timeout=10).cluster_id

    async def run() -> None:
        conn = await KafkaConnection.connect("127.0.0.1", port_of(cluster, leader), timeout=5)
        try:
            versions = await conn.send(build(request_class(18, 3), client_software_name="t",
                                             client_software_version="1"), version=3)
            assert {(k.api_key, k.min_version, k.max_version) for k in versions.api_keys} \
                >= {(59, 0, 1)}
            quorum = await conn.send(build(request_class(55, 0), topics=[dict(
                topic_name="__cluster_metadata", partitions=[dict(partition_index=0)])]),
                version=0)
            epoch = quorum.topics[0].partitions[0].leader_epoch

            async def fetch(sid: SnapshotId, position: int, max_bytes: int = 1000):
                request = FetchSnapshotRequest(-1, epoch, sid.end_offset, sid.epoch,
                                               position, max_bytes)
                raw = await conn.send(to_kio(request, cluster_id=cluster_id), version=1)
                return fetch_snapshot_response(raw)

            sid, data, chunk = latest, b"", None
            while chunk is None or len(data) < chunk.size:
                chunk = await fetch(sid, len(data))
                if chunk.error_code == ErrorCode.snapshot_not_found:  # replaced meanwhile
                    newer = FileSnapshotStore(quorum_dir(cluster, leader), fsync=False).latest()
                    assert newer is not None and newer > sid
                    sid, data, chunk = newer, b"", None
                    continue
                assert chunk.error_code == ErrorCode.none and chunk.position == len(data)
                assert 0 < len(chunk.unaligned_records) <= 1000
                data += chunk.unaligned_records
            assert len(data) == chunk.size > 1000  # several chunks
            assert decode_snapshot(data, sid)[0].startswith(b'{"end_offset"')
            missing = await fetch(SnapshotId(1, 999), 0)
            assert missing.error_code == ErrorCode.snapshot_not_found
            beyond = await fetch(sid, chunk.size + 10)
            assert beyond.error_code in (ErrorCode.position_out_of_range,
                                         ErrorCode.snapshot_not_found)
        finally:
            conn.close_nowait()

    asyncio.run(run())


def broker_state(cluster: LocalCluster, broker_id: int) -> str:
    status = cluster.control.status_sync()
    return next(b["state"] for b in status["brokers"] if b["id"] == broker_id)


def test_voter_whose_log_start_snapshot_is_corrupt_refuses_to_start(cluster: LocalCluster
                                                                     ) -> None:
    """The newest snapshot is the one the voter's metadata log starts after: corrupt, it is
    skipped, and the entries below the log start exist nowhere on the broker. A voter must
    not start over from an empty (or older) state, it may have acknowledged those entries
    (core/raft/node.py _restore_snapshot): it refuses to start, saying why. With the file
    restored it starts and catches up."""
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    controller = admin.list_topics(timeout=10).controller_id
    broker = next(b for b in (1, 2, 3) if b != controller)
    create_topics(admin, [f"corrupt-{i:02d}" for i in range(10)], rf=3)
    wait_for(lambda: metadata_via(cluster, broker) == metadata_via(cluster, controller),
             timeout=30, what="the broker caught up")
    cluster.control.stop_sync(broker)
    directory = quorum_dir(cluster, broker)
    store = FileSnapshotStore(directory, fsync=False)
    newest = store.latest()
    assert newest is not None
    assert log_start_offset(directory / "raft.log") == newest.end_offset
    path = store.path(newest)
    good = path.read_bytes()
    data = bytearray(good)
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    cluster.control.start_sync(broker)
    wait_for(lambda: broker_state(cluster, broker) == "crashed", timeout=30,
             what="the broker exits at start")
    text = broker_log(cluster, broker)
    assert "skipping corrupt metadata snapshot" in text
    assert (f"metadata quorum voter {broker} cannot start: its log starts at "
            f"{newest.end_offset}") in text
    assert log_start_offset(directory / "raft.log") == newest.end_offset, "log left alone"
    # the operator restores the snapshot file: the broker starts and catches up
    path.with_name(path.name + ".corrupt").unlink()
    path.write_bytes(good)
    cluster.control.start_sync(broker)
    wait_for(lambda: broker_state(cluster, broker) == "running", timeout=60,
             what="the broker runs again")
    create_topics(admin, ["corrupt-after"], rf=3)
    wait_for(lambda: metadata_via(cluster, broker) == metadata_via(cluster, controller),
             timeout=60, what="the broker's metadata equals the controller's")


def test_single_broker_starts_from_its_own_snapshot(broker_factory) -> None:
    """`serve --brokers 1` (LocalMetadataLog): with a small snapshot threshold the broker
    snapshots its metadata image, cuts __cluster_metadata.log before it, and a restart
    (SIGKILL: no clean shutdown) loads the snapshot plus the few entries after it and reports
    the same topics, partitions and leaders."""
    broker = broker_factory(**{"metadata.log.max.record.bytes.between.snapshots": "3000"})
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    create_topics(admin, [f"single-{i:02d}" for i in range(30)], rf=1)
    snapshots = broker.data_dir / "data" / "metadata-snapshots"
    wait_for(lambda: FileSnapshotStore(snapshots, fsync=False).latest() is not None,
             timeout=30, what="a metadata snapshot is written")
    log_file = broker.data_dir / "data" / "__cluster_metadata.log"
    with open(log_file, "rb") as f:
        assert f.read(8 + 10)[8:] == b"\x00log-start", "the log was cut before the snapshot"

    def topics() -> dict[str, object]:
        md = AdminClient({"bootstrap.servers": broker.bootstrap}).list_topics(timeout=10)
        return {name: {p: (pm.leader, list(pm.replicas)) for p, pm in t.partitions.items()}
                for name, t in md.topics.items() if name.startswith("single-")}

    before = topics()
    assert len(before) == 30
    broker.kill()
    broker.start()
    assert topics() == before
    assert "metadata loaded from local snapshot" in broker.log_text()
    create_topics(AdminClient({"bootstrap.servers": broker.bootstrap}), ["single-after"], rf=1)
    assert "single-after" in topics()
