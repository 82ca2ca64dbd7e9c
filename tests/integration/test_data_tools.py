"""Data tools on a real 3-broker `serve` cluster: export (JSON Lines, CSV, filters) and
re-publish, record + replay a time window with its timing, exact counts where end minus
start overcounts (transaction markers), group offsets save/restore (empty groups only), the
topology scripts (the Python one recreates a deleted topic), and a cluster snapshot restored
over later changes. Every process is ended by PID (LocalCluster.stop)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from itertools import pairwise
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer

from core.admin.client import AdminClient
from core.admin.export import ExportSpec, count_records, export, read_export, republish
from core.admin.offsets_io import GroupNotEmptyError, restore_offsets, save_offsets
from core.admin.replay import ORIGINAL_TIMESTAMP_HEADER, record_window, replay
from core.admin.snapshot_io import restore_snapshot, save_snapshot
from core.admin.topology_script import collect, python_script, shell_script
from core.cluster.local import LocalCluster, free_base_port
from tests.fixtures import wait_for

pytestmark = pytest.mark.timeout(240)


def run(cluster, fn):
    async def go():
        async with AdminClient(cluster.bootstrap) as admin:
            return await fn(admin)
    return asyncio.run(go())


def wait(predicate, timeout: float = 20.0, what: str = "condition") -> None:
    wait_for(predicate, timeout, what)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    data_dir: Path = tmp_path_factory.mktemp("data-tools")
    local = LocalCluster(data_dir, brokers=3, port=free_base_port(3), config={
        "offsets.topic.num.partitions": "3", "offsets.topic.replication.factor": "3",
        "transaction.state.log.num.partitions": "2",
        "group.initial.rebalance.delay.ms": "0"})
    local.start()
    try:
        yield local
    finally:
        local.stop()


def create(cluster, name: str, partitions: int = 1, rf: int = 3, configs=None) -> None:
    admin_client = __import__("confluent_kafka.admin", fromlist=["AdminClient"])
    admin = admin_client.AdminClient({"bootstrap.servers": cluster.bootstrap})
    admin.create_topics([admin_client.NewTopic(name, partitions, rf, config=configs or {})]
                        )[name].result(15)
    wait(lambda: all(name in admin.list_topics(timeout=5).topics for _ in range(3)),
         what=f"{name} in metadata")
    time.sleep(0.7)  # every broker's metadata


def produce(cluster, topic: str, records, **conf) -> None:
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", **conf})
    for key, value, headers, partition in records:
        producer.produce(topic, value, key, partition=partition, headers=headers)
    assert producer.flush(30) == 0


def test_export_jsonl_csv_and_republish(cluster, tmp_path):
    create(cluster, "orders", 2)
    binary = bytes(range(256))
    records = [(f"k{i}".encode(), f"order {i} {'blue' if i % 3 == 0 else 'red'}".encode(),
                [("source", b"test")], i % 2) for i in range(40)]
    records.append((b"bin", binary, [("raw", b"\xff\x00")], 0))
    produce(cluster, "orders", records)

    n = run(cluster, lambda a: export(a, ExportSpec("orders"), tmp_path / "all.jsonl"))
    assert n == 41
    back = read_export(tmp_path / "all.jsonl")
    assert {(r.key, r.value) for r in back} == {(k, v) for k, v, _, _ in records}
    raw = next(r for r in back if r.key == b"bin")
    assert raw.value == binary and raw.headers == (("raw", b"\xff\x00"),)
    lines = (tmp_path / "all.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["encoding"] in ("utf-8", "base64")

    spec = ExportSpec("orders", partitions=[0], contains="blue")
    n = run(cluster, lambda a: export(a, spec, tmp_path / "blue.csv", "csv"))
    blue = read_export(tmp_path / "blue.csv")
    assert n == len(blue) == sum(1 for k, v, _, p in records if p == 0 and b"blue" in v)
    assert all(b"blue" in r.value and r.partition == 0 for r in blue)
    assert (tmp_path / "blue.csv").read_text().startswith("topic,partition,offset,timestamp")

    window = ExportSpec("orders", partitions=[1], start_offset=5, end_offset=10)
    n = run(cluster, lambda a: export(a, window, tmp_path / "range.jsonl"))
    assert [r.offset for r in read_export(tmp_path / "range.jsonl")] == [5, 6, 7, 8, 9]

    edited = run(cluster, lambda a: republish(a, blue[0], value="edited!"))
    again = run(cluster, lambda a: export(
        a, ExportSpec("orders", partitions=[edited.partition], start_offset=edited.offset),
        tmp_path / "edited.jsonl"))
    assert again == 1
    [r] = read_export(tmp_path / "edited.jsonl")
    assert (r.key, r.value, r.headers) == (blue[0].key, b"edited!", blue[0].headers)


def test_record_and_replay_keeps_relative_timing(cluster, tmp_path):
    create(cluster, "clicks", 1)
    create(cluster, "clicks-replay", 1)
    start = int(time.time() * 1000)
    for burst in range(3):
        produce(cluster, "clicks", [(None, f"b{burst}-{i}".encode(), None, 0)
                                    for i in range(5)])
        time.sleep(0.6)
    end = int(time.time() * 1000)
    window = run(cluster, lambda a: record_window(a, "clicks", start, end,
                                                  path=tmp_path / "w.jsonl"))
    assert len(window) == 15
    span = (window[-1].timestamp - window[0].timestamp) / 1000
    assert span >= 1.0
    t0 = time.monotonic()
    report = run(cluster, lambda a: replay(a, tmp_path / "w.jsonl", "clicks-replay", speed=2))
    elapsed = time.monotonic() - t0
    assert report.sent == 15 and report.failed == 0
    assert span / 2 - 0.1 <= report.elapsed_s <= elapsed
    assert report.elapsed_s < span  # faster than 1x
    got = run(cluster, lambda a: export(a, ExportSpec("clicks-replay"), tmp_path / "r.jsonl"))
    replayed = read_export(tmp_path / "r.jsonl")
    assert got == 15 and [r.value for r in replayed] == [r.value for r in window]
    assert dict(replayed[0].headers)[ORIGINAL_TIMESTAMP_HEADER] == str(
        window[0].timestamp).encode()
    gaps = [b.timestamp - a.timestamp for a, b in pairwise(replayed)]
    assert max(gaps) >= 200  # the pause between bursts survives (halved)


def test_exact_count_is_not_end_minus_start(cluster):
    create(cluster, "txn", 1)
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "transactional.id": "t-1"})
    producer.init_transactions(30)
    for _ in range(2):
        producer.begin_transaction()
        for i in range(10):
            producer.produce("txn", f"v{i}".encode(), partition=0)
        producer.commit_transaction(30)
    counts = run(cluster, lambda a: count_records(a, "txn"))
    ends = run(cluster, lambda a: a.list_offsets([("txn", 0)], "latest"))
    assert counts == {0: 20}
    assert ends[("txn", 0)].offset == 22  # two commit markers take offsets


def test_offsets_save_and_restore_needs_an_empty_group(cluster, tmp_path):
    create(cluster, "work", 2)
    produce(cluster, "work", [(None, b"x", None, i % 2) for i in range(20)])
    conf = {"bootstrap.servers": cluster.bootstrap, "group.id": "workers",
            "auto.offset.reset": "earliest", "enable.auto.commit": False}
    consumer = Consumer(conf)
    consumer.subscribe(["work"])
    got = 0
    deadline = time.monotonic() + 30
    while got < 20 and time.monotonic() < deadline:
        got += len([m for m in consumer.consume(50, timeout=0.5) if m.error() is None])
    consumer.commit(asynchronous=False)
    consumer.close()
    doc = run(cluster, lambda a: save_offsets(a, "workers", tmp_path / "g.json"))
    assert {(o["topic"], o["partition"], o["offset"]) for o in doc["offsets"]} == {
        ("work", 0, 10), ("work", 1, 10)}
    run(cluster, lambda a: a.alter_consumer_group_offsets("workers", {("work", 0): 1,
                                                                      ("work", 1): 2}))
    restored = run(cluster, lambda a: restore_offsets(a, tmp_path / "g.json"))
    assert restored == {("work", 0): 10, ("work", 1): 10}
    committed = run(cluster, lambda a: a.list_consumer_group_offsets("workers"))
    assert {tp: c.offset for tp, c in committed.items()} == restored

    member = Consumer(conf)  # an active member: Kafka's rule says no
    member.subscribe(["work"])
    try:
        wait(lambda: member.poll(0.2) is not None or bool(member.assignment()), 30,
             "the consumer to join")
        with pytest.raises(GroupNotEmptyError, match="not empty"):
            run(cluster, lambda a: restore_offsets(a, tmp_path / "g.json"))
    finally:
        member.close()


def test_topology_scripts_recreate_topics(cluster, tmp_path):
    create(cluster, "configured", 3, 2, {"retention.ms": "123456", "cleanup.policy": "compact"})
    topics = run(cluster, collect)
    spec = next(t for t in topics if t.name == "configured")
    assert (spec.partitions, spec.replication_factor) == (3, 2)
    assert spec.configs == {"cleanup.policy": "compact", "retention.ms": "123456"}
    assert not any(t.name.startswith("__") for t in topics)
    shell = shell_script(topics)
    assert "--topic configured --partitions 3 --replication-factor 2" in shell.replace(
        " \\\n    ", " ")
    assert "--config retention.ms=123456" in shell and "--config cleanup.policy=compact" in shell
    script = tmp_path / "recreate.py"
    script.write_text(python_script(topics))
    compile(script.read_text(), str(script), "exec")
    (tmp_path / "recreate.sh").write_text(shell)
    assert subprocess.run(["sh", "-n", str(tmp_path / "recreate.sh")]).returncode == 0

    from confluent_kafka.admin import AdminClient as CAdmin
    from confluent_kafka.admin import ConfigResource
    admin = CAdmin({"bootstrap.servers": cluster.bootstrap})
    admin.delete_topics(["configured"])["configured"].result(15)
    wait(lambda: "configured" not in admin.list_topics(timeout=5).topics, what="deletion")
    time.sleep(0.7)
    done = subprocess.run([sys.executable, str(script), cluster.bootstrap], capture_output=True,
                          text=True, timeout=60, env=dict(os.environ))
    assert done.returncode == 0, done.stderr
    assert "created configured" in done.stdout
    wait(lambda: "configured" in admin.list_topics(timeout=5).topics, what="re-creation")
    resource = ConfigResource("topic", "configured")
    entries = admin.describe_configs([resource])[resource].result(15)
    assert entries["retention.ms"].value == "123456"
    assert len(admin.list_topics("configured", timeout=5).topics["configured"].partitions) == 3


def test_snapshot_restore_brings_back_the_saved_data(cluster, tmp_path):
    create(cluster, "snap", 1)
    produce(cluster, "snap", [(None, f"before-{i}".encode(), None, 0) for i in range(30)])
    steps: list[str] = []
    manifest = asyncio.run(save_snapshot(cluster.data_dir, tmp_path / "snapshot",
                                         progress=lambda m, f: steps.append(m)))
    assert [b["id"] for b in manifest["brokers"]] == [1, 2, 3]
    assert (tmp_path / "snapshot" / "broker-1" / "data").is_dir()
    states = {b["state"] for b in cluster.control.status_sync()["brokers"]}
    assert states == {"running"}  # resumed
    produce(cluster, "snap", [(None, b"after", None, 0) for _ in range(10)])
    create(cluster, "created-after", 1)

    asyncio.run(restore_snapshot(tmp_path / "snapshot", cluster.data_dir, timeout=60))
    wait(lambda: run(cluster, lambda a: count_records(a, "snap")) == {0: 30}, 30,
         "the snapshot's records")
    md = run(cluster, lambda a: a.metadata())
    assert "created-after" not in md.topics and "snap" in md.topics
    values = read_export_values(cluster, tmp_path)
    assert values == [f"before-{i}".encode() for i in range(30)]


def read_export_values(cluster, tmp_path) -> list[bytes]:
    run(cluster, lambda a: export(a, ExportSpec("snap"), tmp_path / "snap.jsonl"))
    return [r.value for r in read_export(tmp_path / "snap.jsonl")]
