"""Metadata start-up benchmark: full metadata log replay versus newest snapshot + log tail.

Run: ``.venv/bin/python -m bench.bench_metadata [--topics 500 2000] [--churn 100000]
[--repeats 5] [--dir /tmp] [--write-doc]``

For each topic count it builds a metadata log of 3 brokers, N topics x 3 partitions and
`--churn` ISR changes (PartitionChanged, the bulk of a long-lived cluster's metadata log) and
measures, in this process, on real files, with the broker's own code:

* quorum (``serve --brokers 3``): open ``FileLog`` raft.log, decode every record
  (``decode_record``) and fold it, versus open ``FileSnapshotStore``, read the newest snapshot
  and fold its records (the log after it is empty);
* single broker (``serve --brokers 1``): ``LocalMetadataLog`` opened and replayed into the
  broker's batch listener (decode + ``MetadataImage.apply_batch``), with no snapshot versus
  with the snapshot it wrote itself (metadata.log.max.record.bytes.between.snapshots reached);
* the fold itself: one record at a time (``MetadataImage.apply``, what the broker did per
  committed entry before batches: it copies the topics map per record) versus one batch
  (``apply_batch``), same decoded records.

Every figure is the median of `--repeats` runs (the one-record-at-a-time fold: of
`--slow-repeats`), alternating the measured paths inside each repeat. Prints a markdown
section; with --write-doc it replaces/appends the "Metadata start-up and snapshots" section of
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from core.metadata.image import MetadataImage, image_records
from core.metadata.log import LocalMetadataLog
from core.metadata.records import (
    MetadataRecord,
    PartitionChanged,
    PartitionCreated,
    RegisterBroker,
    TopicCreated,
    UnfenceBroker,
    decode_record,
)
from core.raft.file_log import FileLog
from core.raft.log import LogEntry
from core.raft.snapshot import FileSnapshotStore, SnapshotId

PARTITIONS = 3
SECTION = "metadata-startup"
TITLE = "## Metadata start-up and snapshots"


def cluster_records(topics: int, churn: int) -> list[MetadataRecord]:
    """3 brokers, `topics` x PARTITIONS partitions, then `churn` ISR changes."""
    records: list[MetadataRecord] = [
        RegisterBroker(b, "127.0.0.1", 9091 + b, None, b, f"inc-{b}") for b in (1, 2, 3)]
    records += [UnfenceBroker(b, b) for b in (1, 2, 3)]
    for t in range(topics):
        records.append(TopicCreated(f"topic-{t:05d}", f"id-{t:05d}"))
        records += [PartitionCreated(f"topic-{t:05d}", p, [1, 2, 3], [1, 2, 3], 1 + p)
                    for p in range(PARTITIONS)]
    for i in range(churn):
        t, p = i % topics, (i // topics) % PARTITIONS
        records.append(PartitionChanged(f"topic-{t:05d}", p, isr=[1, 2] if i % 2 else [1, 2, 3]))
    return records


def decode_all(datas: Sequence[bytes]) -> list[MetadataRecord]:
    return [decode_record(d) for d in datas]


def fold_batch(datas: Sequence[bytes]) -> MetadataImage:
    return MetadataImage().apply_batch(decode_all(datas), len(datas) - 1)


def fold_one_by_one(records: Sequence[MetadataRecord]) -> MetadataImage:
    """The broker's fold before batches: one MetadataImage.apply per committed entry."""
    image = MetadataImage()
    for offset, record in enumerate(records):
        image = image.apply(record, offset)
    return image


class Broker:
    """The broker's side of LocalMetadataLog: its batch listener and image (server.py)."""

    def __init__(self) -> None:
        self.image = MetadataImage()

    def on_entries(self, entries: Sequence[tuple[int, bytes]]) -> None:
        self.image = self.image.apply_batch(decode_all([e for _, e in entries]),
                                            entries[-1][0])


def open_local(path: Path, snapshot_max_bytes: int) -> tuple[LocalMetadataLog, Broker]:
    broker = Broker()
    log = LocalMetadataLog(path, 1, snapshot_max_bytes=snapshot_max_bytes,
                           image=lambda: broker.image, fsync=False)
    log.add_batch_listener(broker.on_entries)
    log.replay()
    return log, broker


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def same(a: MetadataImage, b: MetadataImage) -> bool:
    return a.topics == b.topics and a.brokers == b.brokers


def measure(root: Path, topics: int, churn: int, repeats: int,
            slow_repeats: int) -> dict[str, Any]:
    records = cluster_records(topics, churn)
    datas = [r.encode() for r in records]
    end = len(datas)
    # quorum files: a raft.log with everything; a snapshot + empty log
    full_dir, snap_dir = root / "full", root / "snap"
    full = FileLog(full_dir / "raft.log", fsync=False)
    full.append([LogEntry(1, d) for d in datas])
    full.close()
    image = fold_batch(datas)
    store = FileSnapshotStore(snap_dir, fsync=True)
    create_s, _ = timed(lambda: store.write(
        SnapshotId(end, 1), [r.encode() for r in image_records(image, end, 1)]))
    tail = FileLog(snap_dir / "raft.log", fsync=False)
    tail.truncate_fully_and_start_at(end, 1)
    tail.close()

    def quorum_replay() -> MetadataImage:
        log = FileLog(full_dir / "raft.log", fsync=False)
        try:
            return fold_batch([e.data for e in log.read(0, log.end_offset())])
        finally:
            log.close()

    def quorum_snapshot() -> MetadataImage:
        snapshots = FileSnapshotStore(snap_dir, fsync=False)
        sid = snapshots.latest()
        assert sid is not None
        result = fold_batch(snapshots.read_records(sid))
        log = FileLog(snap_dir / "raft.log", fsync=False)
        assert log.start_offset() == end == log.end_offset()
        log.close()
        return result

    # single broker: the same entries through LocalMetadataLog, without and with a snapshot
    local_full, local_snap = root / "local-full", root / "local-snap"
    for directory, max_bytes in ((local_full, 1 << 62), (local_snap, 1)):
        directory.mkdir()
        log, _ = open_local(directory / "__cluster_metadata.log", 1 << 62)
        log.snapshot_max_bytes = max_bytes  # the last append crosses it (or never does)
        asyncio.run(log.append(datas))
        log.close()
    snap_store = FileSnapshotStore(local_snap / "metadata-snapshots", fsync=False)
    assert snap_store.latest() == SnapshotId(end, 0), snap_store.latest()

    def local(directory: Path) -> Callable[[], MetadataImage]:
        def run() -> MetadataImage:
            log, broker = open_local(directory / "__cluster_metadata.log", 1 << 62)
            log.close()
            return broker.image
        return run

    paths = {"quorum replay": quorum_replay, "quorum snapshot": quorum_snapshot,
             "local replay": local(local_full), "local snapshot": local(local_snap)}
    times: dict[str, list[float]] = {name: [] for name in paths}
    for i in range(repeats):
        order = list(paths) if i % 2 == 0 else list(reversed(paths))
        for name in order:
            seconds, result = timed(paths[name])
            assert same(result, image), name
            times[name].append(seconds)
    def quorum_replay_before() -> MetadataImage:
        log = FileLog(full_dir / "raft.log", fsync=False)
        try:
            return fold_one_by_one(decode_all([e.data for e in log.read(0, log.end_offset())]))
        finally:
            log.close()

    slow = {"one by one": lambda: fold_one_by_one(records),
            "batch": lambda: MetadataImage().apply_batch(records, end - 1),
            "replay before": quorum_replay_before}
    fold_times: dict[str, list[float]] = {name: [] for name in slow}
    for i in range(slow_repeats):
        for name in (list(slow) if i % 2 == 0 else list(reversed(slow))):
            seconds, result = timed(slow[name])
            assert same(result, image), name
            fold_times[name].append(seconds)
    return {
        "topics": topics, "records": end,
        "raft_log_mb": (full_dir / "raft.log").stat().st_size / 1e6,
        "snapshot_mb": (store.size(SnapshotId(end, 1)) or 0) / 1e6,
        "snapshot_records": len(store.read_records(SnapshotId(end, 1))),
        "create_ms": create_s * 1000,
        "times": times, "fold": fold_times,
    }


def ms(values: Sequence[float]) -> str:
    return f"{statistics.median(values) * 1000:,.0f}"


def spread(values: Sequence[float]) -> str:
    return "-".join(f"{v * 1000:,.0f}" for v in (min(values), max(values)))


def render(results: list[dict[str, Any]], command: str, repeats: int,
           slow_repeats: int) -> str:
    load = os.getloadavg()
    lines = [
        TITLE, "",
        f"Command: `{command}` (in-process, real files in a temporary directory, fsync off "
        "for the reads; the broker's own decode_record and MetadataImage fold). "
        f"nproc={os.cpu_count()}, Python {platform.python_version()}, Linux "
        f"{platform.release()}, load average at start {load[0]:.2f}/{load[1]:.2f}/"
        f"{load[2]:.2f}. Medians of {repeats} runs (fold one record at a time: "
        f"{slow_repeats}), min-max in brackets.", "",
        "| topics (x3 partitions) | log records | raft.log MB | snapshot MB (records) | "
        "quorum: full replay, before (one apply per record) ms | quorum: full replay ms | "
        "quorum: snapshot load ms | single broker: full replay ms | single broker: snapshot "
        "load ms | fold only, one record at a time ms | fold only, one batch ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        t, f = r["times"], r["fold"]
        lines.append(
            f"| {r['topics']:,} | {r['records']:,} | {r['raft_log_mb']:.1f} | "
            f"{r['snapshot_mb']:.2f} ({r['snapshot_records']:,}) | "
            f"{ms(f['replay before'])} [{spread(f['replay before'])}] | "
            f"{ms(t['quorum replay'])} [{spread(t['quorum replay'])}] | "
            f"{ms(t['quorum snapshot'])} [{spread(t['quorum snapshot'])}] | "
            f"{ms(t['local replay'])} [{spread(t['local replay'])}] | "
            f"{ms(t['local snapshot'])} [{spread(t['local snapshot'])}] | "
            f"{ms(f['one by one'])} [{spread(f['one by one'])}] | "
            f"{ms(f['batch'])} [{spread(f['batch'])}] |")
    lines += [
        "",
        "*Full replay*: open the metadata log, decode every record and fold it; *before* is "
        "the broker's fold before this change (one `MetadataImage.apply` per committed entry, "
        "which copies the topics map each time: quadratic in topics x records), the other "
        "columns the current one (one `apply_batch` per delivered batch, linear). *Snapshot "
        "load*: the newest `.checkpoint` file read, CRC-checked, decoded and folded; the log "
        "after it is empty here (right after a snapshot). The single-broker columns go "
        "through `LocalMetadataLog` and the broker's batch listener. The two *fold only* "
        "columns fold the same already-decoded records.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--topics", type=int, nargs="+", default=[500, 2000])
    parser.add_argument("--churn", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--slow-repeats", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--write-doc", action="store_true")
    args = parser.parse_args(argv)
    results = []
    for topics in args.topics:
        root = Path(tempfile.mkdtemp(prefix="bench-metadata-", dir=args.dir))
        try:
            results.append(measure(root, topics, args.churn, args.repeats, args.slow_repeats))
        finally:
            shutil.rmtree(root, ignore_errors=True)
    command = ".venv/bin/python -m bench.bench_metadata " + " ".join(
        ["--topics", *map(str, args.topics), "--churn", str(args.churn),
         "--repeats", str(args.repeats), "--slow-repeats", str(args.slow_repeats)])
    body = render(results, command, args.repeats, args.slow_repeats)
    print(body)
    if args.write_doc:
        from bench.common import update_doc
        update_doc(SECTION, body)


if __name__ == "__main__":
    main()
