"""Replicated produce (3 brokers, RF=3, acks=all, min.insync.replicas=2) vs one broker, acks=1.

Run: ``.venv/bin/python -m bench.replicated [--runs 3] [--records 500000]``

In one run: a single kaflab broker (acks=1, RF=1) and a 3-broker cluster started through
`python main.py serve` (topic with RF=3 and min.insync.replicas=2, acks=all), one producer with
librdkafka's defaults, 100-byte records, 1 partition; alternating which goes first. Reports
records/s, the ratio replicated / single (goal >= 0.5) and the brokers' CPU.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from confluent_kafka.admin import AdminClient

from bench.common import (
    RECORD_BYTES,
    CpuMeter,
    fmt,
    machine_facts,
    markdown_table,
    median,
    single_broker,
    update_doc,
)
from bench.produce_consume import create_topic, produce
from core.cluster.local import LocalCluster, free_base_port


def wait_isr(bootstrap: str, topic: str, size: int, timeout_s: float = 60.0,
             polls: int = 3) -> int:
    """Wait until partition 0 of `topic` has `size` in-sync replicas and the same leader in
    `polls` consecutive metadata answers (0.1 s apart); returns that leader."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    deadline = time.monotonic() + timeout_s
    stable, last = 0, -1
    while time.monotonic() < deadline:
        try:
            md = admin.list_topics(topic, timeout=5).topics.get(topic)
            if md is not None and md.error is None and 0 in md.partitions:
                part = md.partitions[0]
                if part.leader >= 0 and len(part.isrs) >= size:
                    stable = stable + 1 if part.leader == last else 1
                    last = int(part.leader)
                    if stable >= polls:
                        return last
                else:
                    stable = 0
        except Exception:  # a broker may be down: retry until the deadline
            stable = 0
        time.sleep(0.1)
    raise TimeoutError(f"{topic}: ISR never reached {size}")


def run(runs: int, records: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="kaflab-bench-") as tmp:
        cluster = LocalCluster(Path(tmp) / "cluster", brokers=3, port=free_base_port(3),
                               config={"offsets.topic.num.partitions": "1",
                                       "group.initial.rebalance.delay.ms": "0"})
        with single_broker(Path(tmp) / "single") as single, cluster:
            assert cluster.bootstrap is not None
            pids = [p for p in cluster.broker_pids().values() if p]
            for run_no in range(runs):
                order = ["single", "replicated"]
                if run_no % 2:
                    order.reverse()
                for name in order:
                    topic = f"rep-{run_no}-{name}"
                    if name == "single":
                        create_topic(single.bootstrap, topic)
                        with CpuMeter([single.pid]) as cpu:
                            elapsed, failed = produce(single.bootstrap, topic, records,
                                                      {"acks": 1})
                    else:
                        create_topic(cluster.bootstrap, topic, rf=3,
                                     config={"min.insync.replicas": "2"})
                        wait_isr(cluster.bootstrap, topic, 3)
                        with CpuMeter(pids) as cpu:
                            elapsed, failed = produce(cluster.bootstrap, topic, records,
                                                      {"acks": "all"})
                    if failed:
                        raise RuntimeError(f"{failed} records not acknowledged ({name})")
                    results.setdefault(name, []).append(records / elapsed)
                    results.setdefault(f"{name}.cpu", []).append(cpu.share)
                    results.setdefault(f"{name}.cpu_us", []).append(
                        cpu.cpu_seconds / records * 1e6)
                    print(f"run {run_no + 1} {name}: {records / elapsed:,.0f} rec/s, "
                          f"brokers' CPU {cpu.share:.2f}", flush=True)
                results.setdefault("ratio", []).append(
                    results["replicated"][-1] / results["single"][-1])
    return results


def report(results: dict[str, list[float]], args: argparse.Namespace, command: str,
           facts: str) -> str:
    m = {k: median(v) for k, v in results.items()}
    mb = RECORD_BYTES / 1e6
    rows = [["1 broker, RF=1, acks=1", f"{fmt(m['single'])} ({fmt(m['single'] * mb, 1)} MB/s)",
             f"{fmt(m['single.cpu'], 2)} ({fmt(m['single.cpu_us'], 2)} µs/rec)", "", ""],
            ["3 brokers, RF=3, acks=all, min.insync.replicas=2",
             f"{fmt(m['replicated'])} ({fmt(m['replicated'] * mb, 1)} MB/s)",
             f"{fmt(m['replicated.cpu'], 2)} ({fmt(m['replicated.cpu_us'], 2)} µs/rec)",
             f"{m['ratio']:.2f} (goal >= 0.5)", "yes" if m["ratio"] >= 0.5 else "**no**"]]
    table = markdown_table(["produce (records/s)", "median", "brokers' CPU (cores, all PIDs)",
                            "replicated / single (median of per-run ratios)", "met"], rows)
    raw = "\n".join(f"- `{k}`: " + ", ".join(fmt(v, 2 if v < 100 else 0) for v in vals)
                    for k, vals in sorted(results.items()))
    return f"""## Replicated produce vs single broker

Command: `{command}`

Machine: {facts}. Medians of {args.runs} runs of {args.records:,} records of {RECORD_BYTES}
bytes, one partition, one producer with librdkafka's defaults; the 3-broker cluster is started
with `python main.py serve --brokers 3` (so 3 broker processes, the client and the benchmark
share the 2 cores), the single broker with `python main.py broker`, in the same run.

{table}

Raw values per run:

{raw}
"""


def main(argv: list[str] | None = None) -> dict[str, list[float]]:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--records", type=int, default=500_000)
    parser.add_argument("--no-doc", action="store_true")
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    facts = machine_facts()
    results = run(args.runs, args.records)
    text = report(results, args, " ".join([".venv/bin/python -m bench.replicated", *argv]),
                  facts)
    print(text)
    if not args.no_doc:
        update_doc("replicated", text)
    return results


if __name__ == "__main__":
    main()
