"""`python main.py data ...`: moving data around from the command line.

    data export --topic T [--partition N]... [--from-offset O] [--to-offset O]
                [--from-time T] [--to-time T] [--contains S] [--format jsonl|csv] -o FILE
    data replay --topic SRC --from-time T --to-time T --to DEST [--speed X] [--save FILE]
    data replay --input FILE --to DEST [--speed X]
    data offsets-save --group G -o FILE          data offsets-restore -i FILE [--group G]
    data offsets-reset --group G --topic T[:P,P] (--to-earliest | --to-latest |
                --to-offset N | --to-datetime T) [--execute]
    data snapshot-save --data-dir D -o DIR       data snapshot-restore --data-dir D -i DIR
    data script [--shell FILE] [--python FILE]
    data reassign --topic T --partition P --replicas 2,3 [--cancel] [--no-wait]
    data reassign --topic T --replication-factor N
    data decommission --broker N [--stop --data-dir D]
    data rolling-restart --data-dir D [--broker N]...

Times are epoch milliseconds or ISO 8601 (`2024-05-01T12:00:00`). Without
--bootstrap-server, commands with --data-dir use that cluster's brokers, else 127.0.0.1:9092.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import sys
from pathlib import Path
from typing import Any

from core.admin.client import AdminClient
from core.common.errors import KafkaError

COMMANDS = ("export", "replay", "offsets-save", "offsets-restore", "offsets-reset",
            "snapshot-save",
            "snapshot-restore", "script", "reassign", "decommission", "rolling-restart")


def parse_time(text: str | None) -> int | None:
    """Epoch ms or ISO 8601 (local time when no zone is given) -> epoch ms."""
    if text is None:
        return None
    text = text.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    when = datetime.datetime.fromisoformat(text)
    return int(when.timestamp() * 1000)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="main.py data", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    def cmd(name: str, help_: str, *, data_dir: bool = False) -> argparse.ArgumentParser:
        c = sub.add_parser(name, help=help_)
        c.add_argument("--bootstrap-server", help="default: the --data-dir cluster or "
                                                  "127.0.0.1:9092")
        c.add_argument("--data-dir", required=data_dir,
                       help="data directory of a local kaflab cluster (serve)")
        return c

    c = cmd("export", "export a selection of a topic to JSON Lines or CSV")
    c.add_argument("--topic", required=True)
    c.add_argument("--partition", type=int, action="append")
    c.add_argument("--from-offset", type=int)
    c.add_argument("--to-offset", type=int, help="exclusive")
    c.add_argument("--from-time")
    c.add_argument("--to-time")
    c.add_argument("--contains", help="keep records whose key, value or a header has it")
    c.add_argument("--limit", type=int)
    c.add_argument("--format", choices=["jsonl", "csv"])
    c.add_argument("-o", "--output", required=True)

    c = cmd("replay", "replay a time window (or an exported file) into a topic")
    c.add_argument("--topic", help="source topic (with --from-time/--to-time)")
    c.add_argument("--from-time")
    c.add_argument("--to-time")
    c.add_argument("-i", "--input", help="an exported JSON Lines / CSV file instead")
    c.add_argument("--to", required=True, help="destination topic")
    c.add_argument("--speed", type=float, default=1.0, help="1 = real time, 0 = flat out")
    c.add_argument("--keep-partitions", action="store_true")
    c.add_argument("--save", help="also save the recorded window (JSON Lines)")

    c = cmd("offsets-save", "save a group's committed offsets to a JSON file")
    c.add_argument("--group", required=True)
    c.add_argument("-o", "--output", required=True)
    c = cmd("offsets-restore", "commit saved offsets (the group must be empty)")
    c.add_argument("-i", "--input", required=True)
    c.add_argument("--group", help="default: the group saved in the file")
    c = cmd("offsets-reset", "reset a group's offsets on a topic, as kafka-consumer-groups.sh "
                             "--reset-offsets (only while the group is inactive)")
    c.add_argument("--group", required=True)
    c.add_argument("--topic", required=True, help="TOPIC or TOPIC:P,P (partitions)")
    to = c.add_mutually_exclusive_group(required=True)
    to.add_argument("--to-earliest", action="store_true")
    to.add_argument("--to-latest", action="store_true")
    to.add_argument("--to-offset", type=int)
    to.add_argument("--to-datetime", help="epoch ms or ISO 8601")
    c.add_argument("--execute", action="store_true",
                   help="commit the new offsets (without it: a dry run, as Kafka's tool)")
    c.add_argument("--dry-run", action="store_true", help="only show the new offsets")

    c = cmd("snapshot-save", "copy every broker's data (brokers paused)", data_dir=True)
    c.add_argument("-o", "--output", required=True)
    c = cmd("snapshot-restore", "replace the cluster's data with a snapshot", data_dir=True)
    c.add_argument("-i", "--input", required=True)

    c = cmd("script", "export topics and configs as kafka-topics.sh / Python scripts")
    c.add_argument("--shell", help="write the shell script here (default: stdout)")
    c.add_argument("--python", help="write the confluent-kafka Python script here")

    c = cmd("reassign", "move a partition's replicas, cancel a move, or change RF")
    c.add_argument("--topic", required=True)
    c.add_argument("--partition", type=int, action="append")
    c.add_argument("--replicas", help="target broker ids, e.g. 2,3")
    c.add_argument("--replication-factor", type=int)
    c.add_argument("--cancel", action="store_true")
    c.add_argument("--no-wait", action="store_true")
    c.add_argument("--timeout", type=float, default=300.0)

    c = cmd("decommission", "move every replica off a broker")
    c.add_argument("--broker", type=int, required=True)
    c.add_argument("--stop", action="store_true", help="then stop it (needs --data-dir)")
    c.add_argument("--timeout", type=float, default=600.0)

    c = cmd("rolling-restart", "restart brokers one by one, waiting for zero URP",
            data_dir=True)
    c.add_argument("--broker", type=int, action="append", help="default: every broker")
    c.add_argument("--timeout", type=float, default=120.0, help="per broker")
    return p


def _bootstrap(args: argparse.Namespace) -> str:
    if args.bootstrap_server:
        return args.bootstrap_server
    if args.data_dir:
        from core.cluster.state import read_cluster_json
        document = read_cluster_json(Path(args.data_dir)) or {}
        found = ",".join(f"{b.get('host') or '127.0.0.1'}:{b['port']}"
                         for b in document.get("brokers", []) if b.get("port"))
        if found:
            return found
    return "127.0.0.1:9092"


def _control(args: argparse.Namespace) -> Any:
    from core.cluster.client import ClusterControl
    if not args.data_dir:
        raise SystemExit("this action needs --data-dir (the kaflab supervisor)")
    return ClusterControl(args.data_dir)


def _print_moves(moves: list[Any]) -> None:
    from core.admin.reassign import overall_fraction
    line = f"{overall_fraction(moves):5.0%}  " + "; ".join(
        m.describe() for m in moves if not m.done)[:300]
    print(line, file=sys.stderr, flush=True)


async def _run(args: argparse.Namespace) -> int:
    action = args.action
    if action == "snapshot-save":
        from core.admin.snapshot_io import save_snapshot
        manifest = await save_snapshot(args.data_dir, args.output,
                                       progress=lambda m, f: print(m, file=sys.stderr))
        print(f"saved {len(manifest['brokers'])} broker(s), {manifest['bytes']} bytes "
              f"to {args.output}")
        return 0
    if action == "snapshot-restore":
        from core.admin.snapshot_io import restore_snapshot
        await restore_snapshot(args.input, args.data_dir,
                               progress=lambda m, f: print(m, file=sys.stderr))
        print(f"restored {args.input} into {args.data_dir}")
        return 0
    async with AdminClient(_bootstrap(args)) as admin:
        if action == "export":
            from core.admin.export import ExportSpec, export
            fmt = args.format or ("csv" if args.output.lower().endswith(".csv") else "jsonl")
            spec = ExportSpec(args.topic, args.partition, args.from_offset, args.to_offset,
                              parse_time(args.from_time), parse_time(args.to_time),
                              args.contains, args.limit)
            n = await export(admin, spec, args.output, fmt)
            print(f"exported {n} record(s) to {args.output}")
        elif action == "replay":
            from core.admin.replay import record_window, replay
            if args.input:
                source: Any = args.input
            else:
                if not args.topic or args.from_time is None or args.to_time is None:
                    raise SystemExit("replay needs --input FILE, or --topic with "
                                     "--from-time and --to-time")
                source = await record_window(admin, args.topic, parse_time(args.from_time),
                                             parse_time(args.to_time), path=args.save)
            report = await replay(admin, source, args.to, speed=args.speed,
                                  keep_partitions=args.keep_partitions)
            print(f"replayed {report.sent} record(s) into {args.to} in "
                  f"{report.elapsed_s:.1f}s ({report.failed} failed)")
            return 1 if report.failed else 0
        elif action == "offsets-save":
            from core.admin.offsets_io import save_offsets
            doc = await save_offsets(admin, args.group, args.output)
            print(f"saved {len(doc['offsets'])} offset(s) of group {args.group}")
        elif action == "offsets-restore":
            from core.admin.offsets_io import restore_offsets
            offsets = await restore_offsets(admin, args.input, args.group)
            print(f"restored {len(offsets)} offset(s)")
        elif action == "offsets-reset":
            return await _offsets_reset(admin, args)
        elif action == "script":
            from core.admin.topology_script import collect, python_script, shell_script
            topics = await collect(admin)
            source = admin.bootstrap
            shell = shell_script(topics, source=source)
            if args.shell:
                Path(args.shell).write_text(shell)
            if args.python:
                Path(args.python).write_text(python_script(topics, source=source))
            if not args.shell and not args.python:
                sys.stdout.write(shell)
        elif action == "reassign":
            from core.admin import reassign as ra
            md = await admin.metadata([args.topic])
            parts = args.partition or [p.partition for p in md.topics[args.topic].partitions]
            if args.cancel:
                await ra.cancel(admin, [(args.topic, p) for p in parts])
                print("cancelled")
                return 0
            if args.replication_factor is not None:
                plan = ra.plan_replication_factor(await admin.metadata(), args.topic,
                                                  args.replication_factor)
            elif args.replicas:
                replicas = [int(b) for b in args.replicas.split(",") if b.strip()]
                plan = {(args.topic, p): replicas for p in parts}
            else:
                raise SystemExit("reassign needs --replicas, --replication-factor or --cancel")
            moves = await ra.reassign(admin, plan, wait=not args.no_wait, timeout=args.timeout,
                                      on_progress=_print_moves)
            for m in moves:
                print(m.describe())
        elif action == "decommission":
            from core.admin import reassign as ra
            control = _control(args) if args.stop else None
            moves = await ra.decommission(admin, args.broker, control=control, stop=args.stop,
                                          timeout=args.timeout, on_progress=_print_moves)
            print(f"moved {len(moves)} partition(s) off broker {args.broker}"
                  f"{' and stopped it' if args.stop else ''}")
        elif action == "rolling-restart":
            from core.admin import reassign as ra
            done = await ra.rolling_restart(
                admin, _control(args), args.broker, timeout_per_broker=args.timeout,
                on_progress=lambda d, t, m: print(f"[{d}/{t}] {m}", file=sys.stderr))
            print(f"restarted broker(s) {done}")
    return 0


async def _offsets_reset(admin: AdminClient, args: argparse.Namespace) -> int:
    """kafka-consumer-groups.sh --reset-offsets: the plan as a table; committed only with
    --execute; refused with Kafka's message while the group is active."""
    from core.admin.offsets_io import reset_offsets, reset_target

    topic, _sep, parts_text = args.topic.partition(":")
    parts = [int(p) for p in parts_text.split(",") if p.strip()] if parts_text else None
    if args.to_earliest:
        target = reset_target("earliest")
    elif args.to_latest:
        target = reset_target("latest")
    elif args.to_offset is not None:
        target = reset_target("offset", args.to_offset)
    else:
        target = reset_target("timestamp", parse_time(args.to_datetime))
    execute = args.execute and not args.dry_run
    if not execute and not args.dry_run:
        print("WARN: No action will be performed as the --execute option is missing "
              "(a dry run, as kafka-consumer-groups.sh does): add --execute to commit.",
              file=sys.stderr)
    offsets = await reset_offsets(admin, args.group, topic, target, parts,
                                  dry_run=not execute)
    print(f"\n{'GROUP':<30} {'TOPIC':<30} {'PARTITION':<10} {'NEW-OFFSET':<10}")
    for (t, p), off in sorted(offsets.items()):
        print(f"{args.group:<30} {t:<30} {p:<10} {off:<10}")
    return 0


def run(argv: list[str]) -> int:
    """Entry point of `main.py data`; returns the exit code."""
    args = parser().parse_args(argv)
    try:
        return asyncio.run(_run(args))
    except KafkaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # ReassignError, SnapshotError, GroupNotEmptyError, ...
        if type(exc).__module__.startswith("core."):
            print(f"error: {exc}", file=sys.stderr)
            return 1
        raise
