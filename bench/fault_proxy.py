"""The cost of the supervisor's network-fault proxies: produce and consume through them vs direct.

Run: ``.venv/bin/python -m bench.fault_proxy [--runs 3] [--records 200000]``

Two 3-broker `serve` clusters run side by side, one with the fault proxies (the default) and
one with ``--no-fault-proxies``. In each run, alternating which goes first: one confluent-kafka
producer writes `records` 100-byte records with acks=all to a 1-partition RF=3 topic
(min.insync.replicas=2), then a consumer reads them back, then 200 single records are produced
one at a time (acks=all, flushed each) for the round-trip time. With proxies every byte crosses them
three times (the producer's, and each follower's replication fetches), all in the serve process,
so its CPU is reported too (brokers' CPU separately). Medians over the runs.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import psutil
from confluent_kafka import Producer

from bench.common import CpuMeter
from bench.produce_consume import consume, create_topic, produce
from bench.replicated import wait_isr
from core.cluster.local import LocalCluster, free_base_port

CONFIG = {"offsets.topic.num.partitions": "1", "group.initial.rebalance.delay.ms": "0"}


def round_trips(bootstrap: str, topic: str, count: int = 200) -> float:
    """Median ms of one acks=all record produced and flushed (leader + follower fetches)."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0})
    producer.produce(topic, b"warmup")
    producer.flush(30)
    times = []
    for _ in range(count):
        started = time.perf_counter()
        producer.produce(topic, b"x" * 100)
        producer.flush(30)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def run(runs: int, records: int) -> dict[str, list[float]]:
    """{"<mode>.<metric>": [one value a run]} for mode proxied / direct."""
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="kaflab-bench-proxy-") as tmp:
        clusters = {
            "proxied": LocalCluster(Path(tmp) / "proxied", brokers=3, port=free_base_port(3),
                                    config=CONFIG),
            "direct": LocalCluster(Path(tmp) / "direct", brokers=3, port=free_base_port(3),
                                   config=CONFIG, extra_args=["--no-fault-proxies"]),
        }
        with clusters["proxied"], clusters["direct"]:
            for run_no in range(runs):
                order = ["proxied", "direct"] if run_no % 2 == 0 else ["direct", "proxied"]
                for mode in order:
                    cluster = clusters[mode]
                    assert cluster.bootstrap is not None and cluster.pid is not None
                    topic = f"proxy-{run_no}-{mode}"
                    create_topic(cluster.bootstrap, topic, rf=3,
                                 config={"min.insync.replicas": "2"})
                    wait_isr(cluster.bootstrap, topic, 3)
                    brokers = [p for p in cluster.broker_pids().values() if p]
                    with CpuMeter([cluster.pid]) as serve_cpu, CpuMeter(brokers) as cpu:
                        elapsed, failed = produce(cluster.bootstrap, topic, records,
                                                  {"acks": "all"})
                    if failed:
                        raise RuntimeError(f"{failed} records not acknowledged ({mode})")
                    with CpuMeter([cluster.pid]) as serve_cpu_c:
                        read_s = consume(cluster.bootstrap, topic, records)
                    rtt = round_trips(cluster.bootstrap, topic)
                    for key, value in (("produce", records / elapsed),
                                       ("acks_all_rtt_ms", rtt),
                                       ("consume", records / read_s),
                                       ("serve_cpu_produce", serve_cpu.share),
                                       ("serve_cpu_consume", serve_cpu_c.share),
                                       ("brokers_cpu_produce", cpu.share)):
                        results.setdefault(f"{mode}.{key}", []).append(value)
                    print(f"run {run_no + 1} {mode}: produce {records / elapsed:,.0f} rec/s "
                          f"(serve CPU {serve_cpu.share:.2f}, brokers {cpu.share:.2f}), "
                          f"consume {records / read_s:,.0f} rec/s "
                          f"(serve CPU {serve_cpu_c.share:.2f}), acks=all round trip "
                          f"{rtt:.2f} ms", flush=True)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--records", type=int, default=200_000)
    args = parser.parse_args(argv)
    results = run(args.runs, args.records)
    print(f"\n{args.runs} runs x {args.records} records, {psutil.cpu_count()} cores; medians:")
    for key in sorted(results):
        print(f"  {key:28s} {statistics.median(results[key]):12,.2f}")
    for metric in ("produce", "consume", "acks_all_rtt_ms"):
        ratio = (statistics.median(results[f"proxied.{metric}"])
                 / statistics.median(results[f"direct.{metric}"]))
        print(f"  {metric}: proxied / direct = {ratio:.2f}")


if __name__ == "__main__":
    main()
