"""Run every client benchmark and update docs/benchmarks.md (what `make bench` calls).

Run: ``.venv/bin/python -m bench.run_all [--quick]``

Each benchmark starts its own brokers on free 127.0.0.1 ports in a temporary directory, stops
them by PID and rewrites its own section of docs/benchmarks.md. ``--quick`` runs fewer and
shorter rounds (for a smoke test; the figures in the doc then say so in their command line).
Roughly 6-8 minutes in full on a 2-core machine, about 2 in quick mode.
"""

from __future__ import annotations

import argparse
import sys
import time

from bench import failover, groups, produce_consume, replicated

FULL = {
    "produce_consume": [],
    "replicated": [],
    "failover": [],
    "groups": [],
}
QUICK = {
    "produce_consume": ["--runs", "1", "--records", "300000", "--seconds", "3"],
    "replicated": ["--runs", "1", "--records", "200000"],
    "failover": ["--kills", "3", "--manual-kills", "0"],
    "groups": ["--runs", "1"],
}
MODULES = {"produce_consume": produce_consume, "replicated": replicated, "failover": failover,
           "groups": groups}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=sorted(MODULES), action="append",
                        help="run only this benchmark (repeatable)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    plan = QUICK if args.quick else FULL
    failed = []
    for name, module in MODULES.items():
        if args.only and name not in args.only:
            continue
        print(f"=== bench.{name} {' '.join(plan[name])}", flush=True)
        started = time.monotonic()
        try:
            module.main(plan[name])
        except Exception as exc:  # one failing benchmark must not hide the others' figures
            print(f"bench.{name} failed: {exc!r}", file=sys.stderr, flush=True)
            failed.append(name)
        print(f"=== bench.{name} took {time.monotonic() - started:.0f} s", flush=True)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
