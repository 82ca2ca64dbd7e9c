"""A/B: broker CPU per record and client throughput of two source trees, in the same run.

Run: ``.venv/bin/python -m bench.ab --base-root /path/to/other/tree [--runs 5]``

Starts one broker from this tree and one from ``--base-root`` (e.g. a copy of the tree with
a change reverted) and alternates, per run, produce of ``--records`` 100-byte records
(acks=1) and a consume of them (``fetch.queue.backoff.ms=10``) against each. Reports medians
of records/s and of the broker's CPU microseconds per record (psutil, 10 ms resolution).
Nothing is written to docs/; use it to measure one hot-path change at a time.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench.common import Broker, CpuMeter, fmt, markdown_table, median
from bench.produce_consume import TUNED_CONSUMER, consume, create_topic, produce


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-root", required=True, type=Path)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--records", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    res: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="kaflab-ab-") as tmp:
        brokers = {"this tree": Broker(Path(tmp) / "new"),
                   "base": Broker(Path(tmp) / "base", root=args.base_root.resolve())}
        try:
            for b in brokers.values():
                b.start()
            for run in range(args.runs):
                names = list(brokers) if run % 2 == 0 else list(reversed(brokers))
                for name in names:
                    b = brokers[name]
                    topic = f"ab-{run}"
                    create_topic(b.bootstrap, topic)
                    with CpuMeter([b.pid]) as cpu:
                        elapsed, failed = produce(b.bootstrap, topic, args.records)
                    if failed:
                        raise RuntimeError(f"{failed} records not acknowledged by {name}")
                    res.setdefault(f"{name} produce", []).append(args.records / elapsed)
                    res.setdefault(f"{name} produce cpu", []).append(
                        cpu.cpu_seconds / args.records * 1e6)
                    with CpuMeter([b.pid]) as cpu:
                        elapsed = consume(b.bootstrap, topic, args.records, TUNED_CONSUMER)
                    res.setdefault(f"{name} consume", []).append(args.records / elapsed)
                    res.setdefault(f"{name} consume cpu", []).append(
                        cpu.cpu_seconds / args.records * 1e6)
                print(f"run {run + 1} done", flush=True)
        finally:
            for b in brokers.values():
                b.stop()
    rows = [[name, fmt(median(res[f"{name} produce"])), fmt(median(res[f"{name} produce cpu"]), 3),
             fmt(median(res[f"{name} consume"])), fmt(median(res[f"{name} consume cpu"]), 3)]
            for name in ("base", "this tree")]
    print(markdown_table(["broker", "produce rec/s", "produce broker µs/rec",
                          "consume rec/s", "consume broker µs/rec"], rows))


if __name__ == "__main__":
    main()
