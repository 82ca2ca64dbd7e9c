"""kaflab: a Kafka-compatible cluster with a Qt console.

Usage: python main.py [gui|serve|broker|ctl|produce|consume] ...  (gui is the default)
"""

from __future__ import annotations

import argparse
import sys


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="main.py",
        description="kaflab: a Kafka-compatible cluster written in Python, with a Qt console.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    gui = sub.add_parser("gui", help="open the console (default); starts the local cluster")
    gui.add_argument("--data-dir", help="cluster data directory (default: user data dir)")
    gui.add_argument("--brokers", type=int, default=3, help="brokers in the local cluster")
    gui.add_argument("--port", type=int, default=9092, help="port of broker 1")
    gui.add_argument("--attach", metavar="BOOTSTRAP",
                     help="attach to an existing Kafka cluster instead of starting one")

    serve = sub.add_parser("serve", help="run a local cluster headless in the foreground")
    serve.add_argument("--brokers", type=int, default=3, help="number of brokers (default 3)")
    serve.add_argument("--port", type=int, default=9092, help="port of broker 1 (default 9092)")
    serve.add_argument("--data-dir", help="cluster data directory (default: user data dir)")
    serve.add_argument("--config", action="append", default=[], metavar="KEY=VALUE",
                       help="broker config override, Kafka's property names (repeatable)")
    serve.add_argument("--no-fault-proxies", action="store_true",
                       help="brokers listen on P+i-1 directly, without the network-fault proxy "
                            "in front of each (for benchmarks; `ctl netfault` then refuses)")

    broker = sub.add_parser("broker", help="run one broker process")
    broker.add_argument("--config", required=True, help="broker .properties file")
    broker.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                        help="override a property from the file (repeatable)")

    ctl = sub.add_parser("ctl", help="drive a running `serve` (status, start, stop, kill, ...)")
    ctl.add_argument("--data-dir", help="cluster data directory of the running serve")
    ctl.add_argument("action", choices=["status", "start", "stop", "kill", "pause", "resume",
                                        "restart", "add", "netfault"])
    ctl.add_argument("broker_id", nargs="?", type=int, help="broker id (not for status/add)")
    ctl.add_argument("fault_args", nargs="*", metavar="FAULT",
                     help="netfault: latency MS | drop | blackhole | isolate | clear")

    produce = sub.add_parser("produce", help="read lines from stdin and produce them")
    produce.add_argument("--bootstrap-server", default="127.0.0.1:9092")
    produce.add_argument("--topic", required=True)
    produce.add_argument("--key-separator", help="split each line into key and value")
    produce.add_argument("--header", action="append", default=[], metavar="K=V")
    produce.add_argument("--acks", default="-1", choices=["0", "1", "-1", "all"])
    produce.add_argument("--partition", type=int)

    consume = sub.add_parser("consume", help="print records of a topic to stdout")
    consume.add_argument("--bootstrap-server", default="127.0.0.1:9092")
    consume.add_argument("--topic", required=True)
    consume.add_argument("--group", help="consumer group (default: no group, no commits)")
    consume.add_argument("--from-beginning", action="store_true")
    consume.add_argument("--max-messages", type=int)
    consume.add_argument("--timeout-ms", type=int, help="exit when idle this long")
    consume.add_argument("--print-key", action="store_true")
    consume.add_argument("--key-separator", default="\t")

    scenario = sub.add_parser("scenario", help="run a scenario file (load, groups, faults)")
    scenario.add_argument("action", choices=["run"])
    scenario.add_argument("file", help="scenario YAML file (or a bundled scenario's name)")
    scenario.add_argument("--bootstrap", help="attach to this cluster (bootstrap servers)")
    scenario.add_argument("--data-dir", help="kaflab cluster data dir (started if none runs)")
    scenario.add_argument("--seed", type=int, help="override the scenario's seed")
    scenario.add_argument("--duration", type=float, help="override the duration (seconds)")

    # `data` has its own parser (core/admin/data_cli.py); listed here for --help
    sub.add_parser("data", add_help=False,
                   help="move data: export, replay, offsets, snapshots, scripts, reassign, "
                        "decommission, rolling-restart (see `main.py data --help`)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Dispatch to the subcommand; imports are lazy so `broker` never loads Qt."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["data"]:  # export|replay|offsets-*|snapshot-*|script|reassign|decommission|...
        from core.admin.data_cli import run as run_data
        return run_data(argv[1:])
    commands = ("gui", "serve", "broker", "ctl", "produce", "consume", "scenario")
    if not argv or (argv[0] not in commands and argv[0] not in ("-h", "--help")):
        argv = ["gui", *argv]  # the console is the default command, with its options
    args = _parser().parse_args(argv)
    command = args.command
    if command == "broker":
        from core.broker.cli import run_broker
        return run_broker(args)
    if command == "serve":
        from core.cluster.cli import run_serve
        return run_serve(args)
    if command == "ctl":
        from core.cluster.cli import run_ctl
        return run_ctl(args)
    if command == "scenario":
        from core.scenarios.cli import run as run_scenario
        return run_scenario(args)
    if command in ("produce", "consume"):
        from core.admin import console_cli
        return console_cli.run(command, args)
    from gui.app import run_gui
    return run_gui(args)


if __name__ == "__main__":
    sys.exit(main())
