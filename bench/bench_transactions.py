"""Transactional produce (1,000 records per transaction) vs idempotent produce, and the latency
of commit_transaction, on 3 brokers with RF 3, with confluent-kafka.

Run: ``.venv/bin/python -m bench.bench_transactions [--runs 3] [--transactions 300]``

One `python main.py serve --brokers 3` cluster; in each run two fresh topics (3 partitions,
RF 3, min.insync.replicas=2), one per mode, alternating which mode goes first:

- idempotent: enable.idempotence=true (so acks=all), linger.ms=5, N records, then flush;
- transactional: transactional.id, linger.ms=5, N / 1000 transactions of 1,000 records each
  (begin, produce, commit_transaction); every commit_transaction call is timed.

Records are 100 bytes, round-robin over the partitions. Throughput is records / wall time
from the first produce to the last flush / commit. After each run the transactional topic is
checked: read_committed end (LSO) == high watermark on every partition (nothing left open).
Writes docs/benchmarks-transactions.md (unless --no-doc).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition

from bench.common import (
    RECORD_BYTES,
    CpuMeter,
    fmt,
    machine_facts,
    markdown_table,
    median,
    percentile,
)
from bench.produce_consume import create_topic
from core.cluster.local import LocalCluster, free_base_port

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks-transactions.md"
PARTITIONS = 3
PER_TXN = 1000
CLUSTER_CONFIG = {
    "offsets.topic.num.partitions": "3",
    "transaction.state.log.num.partitions": "3",
    "group.initial.rebalance.delay.ms": "0",
}


def _send(producer: Producer, topic: str, value: bytes, partition: int) -> None:
    while True:
        try:
            producer.produce(topic, value, partition=partition)
            return
        except BufferError:
            producer.poll(0.001)


def idempotent(bootstrap: str, topic: str, records: int) -> float:
    """Seconds to produce and flush `records` with an idempotent producer."""
    failures = [0]

    def on_delivery(err: Any, _msg: Any) -> None:
        if err is not None:
            failures[0] += 1

    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                         "linger.ms": 5, "on_delivery": on_delivery,
                         "delivery.report.only.error": True})
    producer.produce(topic, b"warmup", partition=0)
    producer.flush(30)
    value = b"x" * RECORD_BYTES
    started = time.perf_counter()
    for i in range(records):
        _send(producer, topic, value, i % PARTITIONS)
    left = producer.flush(120)
    elapsed = time.perf_counter() - started
    if failures[0] or left:
        raise RuntimeError(f"idempotent: {failures[0]} failed, {left} not delivered")
    return elapsed


def transactional(bootstrap: str, topic: str, transactions: int, txn_id: str,
                  flush_first: bool = False) -> tuple[float, list[float]]:
    """Seconds for `transactions` transactions of PER_TXN records, and each commit's ms
    (with flush_first, the records are flushed before the clock of commit_transaction starts,
    so it times EndTxn and the markers alone)."""
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": txn_id,
                         "linger.ms": 5})
    producer.init_transactions(60)
    producer.begin_transaction()  # warm-up: coordinator, partitions, connections
    for p in range(PARTITIONS):
        producer.produce(topic, b"warmup", partition=p)
    producer.commit_transaction(60)
    value = b"x" * RECORD_BYTES
    commits: list[float] = []
    started = time.perf_counter()
    for _ in range(transactions):
        producer.begin_transaction()
        for i in range(PER_TXN):
            _send(producer, topic, value, i % PARTITIONS)
        if flush_first:
            producer.flush(60)
        t0 = time.perf_counter()
        producer.commit_transaction(60)
        commits.append((time.perf_counter() - t0) * 1000)
    return time.perf_counter() - started, commits


def check_closed(bootstrap: str, topic: str) -> None:
    """LSO == HW on every partition (no transaction left open)."""
    for level in ("read_committed", "read_uncommitted"):
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-check",
                      "isolation.level": level})
        try:
            ends = [c.get_watermark_offsets(TopicPartition(topic, p), 10, cached=False)[1]
                    for p in range(PARTITIONS)]
        finally:
            c.close()
        if level == "read_committed":
            lso = ends
        else:
            hw = ends
    if lso != hw:
        raise RuntimeError(f"{topic}: LSO {lso} != HW {hw}")


def run(runs: int, transactions: int, flush_first: bool = False) -> dict[str, list[float]]:
    records = transactions * PER_TXN
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="kaflab-bench-txn-") as tmp:
        cluster = LocalCluster(Path(tmp) / "cluster", brokers=3, port=free_base_port(3),
                               config=CLUSTER_CONFIG, ready_timeout=90)
        with cluster:
            bootstrap = cluster.bootstrap
            assert bootstrap is not None
            pids = [p for p in cluster.broker_pids().values() if p]
            for run_no in range(runs):
                order = ["idempotent", "transactional"]
                if run_no % 2:
                    order.reverse()
                for mode in order:
                    topic = f"bench-{mode}-{run_no}"
                    create_topic(bootstrap, topic, PARTITIONS, 3,
                                 {"min.insync.replicas": "2"})
                    time.sleep(1.0)  # leaders and ISR settle
                    with CpuMeter(pids) as cpu:
                        if mode == "idempotent":
                            elapsed = idempotent(bootstrap, topic, records)
                        else:
                            elapsed, commits = transactional(bootstrap, topic, transactions,
                                                             f"bench-{run_no}", flush_first)
                            results.setdefault("commit_ms", []).extend(commits)
                            results.setdefault("commit_p50", []).append(median(commits))
                            results.setdefault("commit_p99", []).append(
                                percentile(commits, 99))
                            results.setdefault("commit_share", []).append(
                                sum(commits) / 1000 / elapsed)
                    if mode == "transactional":
                        check_closed(bootstrap, topic)
                    rate = records / elapsed
                    results.setdefault(mode, []).append(rate)
                    results.setdefault(f"{mode}.cpu", []).append(cpu.share)
                    print(f"run {run_no + 1} {mode}: {rate:,.0f} rec/s, brokers' CPU "
                          f"{cpu.share:.2f}" + (f", commit p50 {median(commits):.1f} ms p99 "
                                                f"{percentile(commits, 99):.1f} ms"
                                                if mode == "transactional" else ""),
                          flush=True)
                results.setdefault("ratio", []).append(
                    results["transactional"][-1] / results["idempotent"][-1])
    return results


def report(results: dict[str, list[float]], args: argparse.Namespace, command: str,
           facts: str) -> str:
    m = {k: median(v) for k, v in results.items() if k != "commit_ms"}
    commits = results["commit_ms"]
    mb = RECORD_BYTES / 1e6
    rows = [
        ["idempotent (enable.idempotence, acks=all)",
         f"{fmt(m['idempotent'])} ({fmt(m['idempotent'] * mb, 1)} MB/s)",
         fmt(m["idempotent.cpu"], 2), "", ""],
        [f"transactional, {PER_TXN:,} records per transaction",
         f"{fmt(m['transactional'])} ({fmt(m['transactional'] * mb, 1)} MB/s)",
         fmt(m["transactional.cpu"], 2), f"{m['ratio']:.2f}",
         f"{fmt(median(commits), 1)} / {fmt(percentile(commits, 99), 1)}"],
    ]
    table = markdown_table(["produce (records/s)", "median", "brokers' CPU (cores)",
                            "transactional / idempotent", "commit_transaction ms (p50 / p99)"],
                           rows)
    raw = "\n".join(f"- `{k}`: " + ", ".join(fmt(v, 2 if v < 100 else 0) for v in vals)
                    for k, vals in sorted(results.items()) if k != "commit_ms")
    return f"""# Transactions: throughput and commit latency

Command: `{command}`

Machine: {facts}.

One kaflab cluster started with `python main.py serve --brokers 3` (3 broker processes; the
client and the benchmark share the same 2 cores). Each run creates two topics with 3 partitions,
RF 3 and min.insync.replicas=2 and writes {args.transactions * PER_TXN:,} records of
{RECORD_BYTES} bytes to each (round-robin over the partitions), alternating which mode goes
first: an idempotent producer (`enable.idempotence=true`, so acks=all; `linger.ms=5`), and a
transactional one (`transactional.id`, `linger.ms=5`) committing every {PER_TXN:,} records
({args.transactions} transactions). Throughput is records over the wall time from the first
produce to the last flush / commit; the commit latency is each `commit_transaction()` call
(the producer flushes the transaction's last records, then EndTxn: the coordinator writes
PrepareCommit to `__transaction_state` (RF 3), sends WriteTxnMarkers to the 3 partition
leaders and writes CompleteCommit). After each run the transactional topic's read_committed end
offset (LSO) equals its high watermark on every partition. Medians of {args.runs} runs;
commit latency percentiles over all {len(commits):,} commits. `commit_share` is the part of the
transactional wall time spent inside commit_transaction().

{table}

Raw values per run:

{raw}
"""


def main(argv: list[str] | None = None) -> dict[str, list[float]]:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--transactions", type=int, default=300,
                        help=f"transactions per run ({PER_TXN:,} records each)")
    parser.add_argument("--flush-first", action="store_true",
                        help="flush before timing commit_transaction (EndTxn alone)")
    parser.add_argument("--no-doc", action="store_true")
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    facts = machine_facts()
    results = run(args.runs, args.transactions, args.flush_first)
    text = report(results, args, " ".join(
        [".venv/bin/python -m bench.bench_transactions", *argv]), facts)
    print(text)
    if not args.no_doc:
        DOC.write_text(text)
    return results


if __name__ == "__main__":
    main()
