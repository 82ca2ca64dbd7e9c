"""Real stream-processing libraries, unchanged, against a 3-broker kaflab cluster (RF 3).

- quixstreams: resources/examples/wordcount_app.py, a windowed word count (repartition topic,
  RocksDB state with a changelog topic, processing_guarantee="exactly-once"), run twice as a
  command-line process; the second run starts from an empty state directory, so it must
  restore its windows from the changelog topic. A read_committed reader of the output sees,
  for each (word, window), exactly the counts 1..n, and n is what plain Python computes.
- faust-streaming: resources/examples/faust_table_app.py, a Table of word counts (group-by
  through an internal topic, changelog topic); the latest changelog value of each word equals
  plain Python's count.

Every process (the `serve` cluster, each app) is ended by PID in this module.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

pytest.importorskip("confluent_kafka")
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from core.cluster.local import LocalCluster
from tests.fixtures import running_local_cluster

pytestmark = pytest.mark.timeout(170)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "resources" / "examples"
WINDOW_MS = 10_000
BASE_TS = 1_700_000_000_000  # a window boundary
CONFIG = {
    "offsets.topic.num.partitions": "3",
    "transaction.state.log.num.partitions": "3",
    "group.initial.rebalance.delay.ms": "0",
    "min.insync.replicas": "2",
}


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


wordcount = _load("wordcount_app")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    yield from running_local_cluster(tmp_path_factory, "streams", CONFIG, ready_timeout=90,
                                     stop_timeout=40)


def _bootstrap(cluster: LocalCluster) -> str:
    assert cluster.bootstrap is not None
    return cluster.bootstrap


def _create(bootstrap: str, topic: str, partitions: int = 2) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 3)])[topic].result(30)


def _run(argv: list[str], log: Path, timeout: float, env: dict[str, str] | None = None,
         ) -> int:
    """Run a command to completion (or SIGKILL it by PID after `timeout`)."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=str(ROOT),
                                env=env, stdin=subprocess.DEVNULL)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
            raise AssertionError(f"{argv[1]} still running after {timeout}s:\n"
                                 + log.read_text(errors="replace")[-3000:]) from None
        finally:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(10)


def _read_all(bootstrap: str, topic: str, timeout: float = 20.0,
              ) -> list[tuple[int, int, bytes | None, bytes | None]]:
    """Every record of `topic` up to its current end, read_committed:
    (partition, offset, key, value), in offset order per partition."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"r-{uuid.uuid4().hex}",
                         "enable.auto.commit": False, "isolation.level": "read_committed"})
    try:
        parts = sorted(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), 10,
                                                  cached=False)[1] for p in parts}
        consumer.assign([TopicPartition(topic, p, 0) for p in parts])
        out: list[tuple[int, int, bytes | None, bytes | None]] = []
        positions = dict.fromkeys(parts, 0)
        deadline = time.monotonic() + timeout
        while any(positions[p] < ends[p] for p in parts):
            if time.monotonic() > deadline:
                raise AssertionError(f"{topic}: read {positions}, ends {ends}")
            msg = consumer.poll(0.2)
            if msg is None:
                # read_committed skips control records: ask where we are
                for tp in consumer.position([TopicPartition(topic, p) for p in parts]):
                    if tp.offset >= 0:
                        positions[tp.partition] = max(positions[tp.partition], tp.offset)
                continue
            if msg.error():
                continue
            out.append((msg.partition(), msg.offset(), msg.key(), msg.value()))
            positions[msg.partition()] = msg.offset() + 1
        return out
    finally:
        consumer.close()


def _topics(bootstrap: str) -> set[str]:
    return set(AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics)


# quixstreams ------------------------------------------------------------------------------
def test_quixstreams_windowed_count_exactly_once(cluster: LocalCluster, tmp_path: Path) -> None:
    pytest.importorskip("quixstreams")
    bootstrap = _bootstrap(cluster)
    tag = uuid.uuid4().hex[:6]
    source, sink, group = f"sentences-{tag}", f"word-counts-{tag}", f"wc-{tag}"
    _create(bootstrap, source, 2)
    _create(bootstrap, sink, 2)
    lines = wordcount.sample_lines(240, seed=11)
    step = WINDOW_MS // 16  # 15 windows in all; the two runs share the window at the seam

    def app(state: str) -> None:
        code = _run([sys.executable, str(EXAMPLES / "wordcount_app.py"),
                     "--bootstrap", bootstrap, "--input", source, "--output", sink,
                     "--group", group, "--window-ms", str(WINDOW_MS),
                     "--state-dir", str(tmp_path / state), "--timeout", "4"],
                    tmp_path / "app.log", timeout=75)
        assert code == 0, (tmp_path / "app.log").read_text(errors="replace")[-3000:]

    first = wordcount.produce_sample(bootstrap, source, lines[:130], start_ms=BASE_TS,
                                     step_ms=step)
    app("state-a")
    second = wordcount.produce_sample(bootstrap, source, lines[130:],
                                      start_ms=BASE_TS + 130 * step, step_ms=step)
    app("state-b")  # empty state: windows come back from the changelog topic

    expected = wordcount.expected_counts(first + second, WINDOW_MS)
    sequences: dict[tuple[str, int], list[int]] = defaultdict(list)
    for _, _, key, value in _read_all(bootstrap, sink):
        row = json.loads(value or b"null")
        assert key is not None and key.decode() == row["word"]
        assert row["end"] - row["start"] == WINDOW_MS
        sequences[(row["word"], row["start"])].append(row["count"])
    got = {k: counts[-1] for k, counts in sequences.items()}
    assert got == expected
    # exactly once: no count repeated or skipped, even across the restart
    for k, counts in sequences.items():
        assert counts == list(range(1, len(counts) + 1)), (k, counts)
    # the seam window really was continued by the second run, from restored state
    seam = BASE_TS + (130 * step) // WINDOW_MS * WINDOW_MS
    assert any(s == seam for _, s in expected)
    topics = _topics(bootstrap)
    changelogs = [t for t in topics if t.startswith(f"changelog__{group}")]
    repartitions = [t for t in topics if t.startswith(f"repartition__{group}")]
    assert changelogs and repartitions, sorted(topics)
    assert _read_all(bootstrap, changelogs[0]), "empty changelog topic"
    txns = asyncio.run(_list_transactions(bootstrap))
    assert any(state == "CompleteCommit" for state in txns.values()), txns


async def _list_transactions(bootstrap: str) -> dict[str, str]:
    from core.admin.client import AdminClient as KaflabAdmin
    async with KaflabAdmin(bootstrap) as admin:
        return {t.transactional_id: t.state for t in await admin.list_transactions()}


# faust-streaming --------------------------------------------------------------------------
def test_faust_table_word_counts(cluster: LocalCluster, tmp_path: Path) -> None:
    pytest.importorskip("faust")
    bootstrap = _bootstrap(cluster)
    tag = uuid.uuid4().hex[:6]
    source, app_id = f"fsentences-{tag}", f"fwc-{tag}"
    _create(bootstrap, source, 2)
    lines = wordcount.sample_lines(200, seed=5)
    wordcount.produce_sample(bootstrap, source, lines, start_ms=BASE_TS, step_ms=100)
    expected = Counter(w for line in lines for w in line.split())

    env = dict(os.environ, FAUST_APP_ID=app_id, FAUST_INPUT=source, FAUST_PARTITIONS="2",
               FAUST_REPLICATION="3", FAUST_DATA_DIR=str(tmp_path / "faust-data"))
    log = tmp_path / "faust.log"
    changelog = f"{app_id}-word_counts-changelog"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, str(EXAMPLES / "faust_table_app.py"), "worker", "--without-web",
             "--bootstrap", bootstrap, "-l", "info"],
            stdout=out, stderr=subprocess.STDOUT, cwd=str(tmp_path), env=env,
            stdin=subprocess.DEVNULL)
    got: dict[str, int] = {}
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
            if changelog in _topics(bootstrap):
                got = {}
                for _, _, key, value in _read_all(bootstrap, changelog):
                    got[json.loads(key or b"null")] = json.loads(value or b"null")
                if got == dict(expected):
                    break
            time.sleep(1.0)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(10)
    assert got == dict(expected), log.read_text(errors="replace")[-3000:]
    assert f"{app_id}-words" in _topics(bootstrap)
