"""Render the console's pages to PNGs (light and dark) with QWidget.grab().

    QT_QPA_PLATFORM=offscreen python -m gui.screenshot [--out docs/screenshots]
        [--local DATA_DIR | --live BOOTSTRAP] [--pages cluster,topics,...]
        [--scenario failover-drill --duration 22]

Without --live / --local the synthetic DemoBackend feeds the window (no cluster needed);
with --live it attaches to a running cluster, with --local it starts a real local cluster
and seeds it. Each page is shown after a few snapshots so tables, cards and charts have data.
--scenario runs a bundled scenario from the Scenarios page first (a real cluster only) and
puts the timeline at its first fault.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

#: file names of the built-in pages, in sidebar order; extra pages use their lower-cased title
PAGES = ("cluster", "topics", "groups", "produce", "browse", "charts", "logs")
#: a query over the seeded "orders" records for the Query page
ORDERS_SQL = ('SELECT "partition", count(*) AS records,\n'
              "       min((value->>'id')::BIGINT) AS first_id,\n"
              "       max((value->>'id')::BIGINT) AS last_id, max(\"timestamp\") AS latest\n"
              "FROM \"orders\" WHERE value->>'id' IS NOT NULL\n"
              'GROUP BY "partition" ORDER BY "partition"')


def page_names(window: object) -> list[str]:
    """The file name stem of every page of ``window``, in sidebar order."""
    titles = list(window.page_titles)  # type: ignore[attr-defined]
    return [PAGES[i] if i < len(PAGES) else t.lower().replace(" ", "-")
            for i, t in enumerate(titles)]


def _pump(app: QApplication, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def _wait(app: QApplication, predicate: object, timeout: float) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end and not predicate():  # type: ignore[operator]
        _pump(app, 0.1)


def _seed(app: QApplication, console: object) -> None:
    """Topics, ~20k records and a lagging consumer group on a real cluster (via the GUI)."""
    from gui.bridge.backend import ProduceSpec

    session = console.session  # type: ignore[attr-defined]
    _wait(app, lambda: session.last_snapshot is not None, 120)
    existing = {t.name for t in session.last_snapshot.topics}
    for name, parts in (("orders", 6), ("payments", 3), ("clickstream", 6), ("audit-log", 2)):
        if name not in existing:
            session.create_topic(name, parts, 3, {})
    _wait(app, lambda: session.last_snapshot.topic("audit-log") is not None, 30)
    pending = []
    for name, n in (("orders", 6000), ("payments", 2000), ("clickstream", 9000),
                    ("audit-log", 500)):
        spec = ProduceSpec(topic=name, key="customer-{counter}",
                           value='{"id": {counter}, "amount": {random}, "ts": {timestamp}}',
                           count=n, headers=(("source", "screenshot"),))
        pending.append(session.produce(spec, lambda *_: None))
    _wait(app, lambda: all(f.done() for f in pending), 120)
    try:
        from confluent_kafka import Consumer
    except ImportError:
        return
    bootstrap = console.window.caps.bootstrap  # type: ignore[attr-defined]
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "order-service",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe(["orders"])
    got = 0
    end = time.monotonic() + 30
    while got < 2500 and time.monotonic() < end:
        got += len(consumer.consume(num_messages=500, timeout=1.0))
        _pump(app, 0.05)
    consumer.commit(asynchronous=False)
    consumer.close()
    for name, n in (("orders", 3000), ("clickstream", 3000)):  # fresh traffic for the charts
        pending.append(session.produce(ProduceSpec(topic=name, value="{counter}", count=n,
                                                   rate=400), lambda *_: None))
    _pump(app, 6.0)


def _extra_page(window: object, cls_name: str) -> object:
    return next((p for p in window.pages  # type: ignore[attr-defined]
                 if type(p).__name__ == cls_name), None)


def _run_scenario(app: QApplication, window: object, name: str, duration: float) -> None:
    """Run a bundled scenario through the Scenarios page; the timeline at its first fault."""
    page = _extra_page(window, "ScenariosView")
    if page is None or not page.select(name):  # type: ignore[attr-defined]
        raise SystemExit(f"no bundled scenario {name!r}")
    session = window.session  # type: ignore[attr-defined]
    _wait(app, lambda: session.last_snapshot is not None
          and window.caps is not None, 120)  # type: ignore[attr-defined]
    if duration:
        page.duration.setValue(duration)  # type: ignore[attr-defined]
    done: list[object] = []
    page.controller.finished.connect(done.append)  # type: ignore[attr-defined]
    page.controller.failed.connect(done.append)  # type: ignore[attr-defined]
    page.run()  # type: ignore[attr-defined]
    _wait(app, lambda: done, (duration or 60) + 120)
    if not done or isinstance(done[0], str):
        raise SystemExit(f"scenario {name} did not finish: {done[0] if done else 'timeout'}")
    _pump(app, 3.0)
    timeline = _extra_page(window, "TimelineView")
    if timeline is None:
        return
    _wait(app, lambda: timeline.span is not None, 10)  # type: ignore[attr-defined]
    faults = [ts for ts, _text, is_fault in timeline.marks if is_fault]  # type: ignore
    if faults:
        timeline.live.setChecked(False)  # type: ignore[attr-defined]
        timeline.show_time(faults[0] + 2.0)  # type: ignore[attr-defined]
        _pump(app, 1.0)


def _query_orders(app: QApplication, window: object) -> None:
    page = _extra_page(window, "QueryView")
    if page is None or page.topic.findText("orders") < 0:  # type: ignore[attr-defined]
        return
    page.topic.setCurrentText("orders")  # type: ignore[attr-defined]
    page.editor.setPlainText(ORDERS_SQL)  # type: ignore[attr-defined]
    results: list[object] = []
    page.controller.result.connect(results.append)  # type: ignore[attr-defined]
    page.controller.failed.connect(results.append)  # type: ignore[attr-defined]
    page.run()  # type: ignore[attr-defined]
    _wait(app, lambda: results, 60)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="docs/screenshots")
    parser.add_argument("--live", help="attach to this bootstrap instead of the demo cluster")
    parser.add_argument("--local", metavar="DATA_DIR",
                        help="start (or re-attach to) a real local cluster in DATA_DIR, seed "
                             "topics, records and a consumer group, then grab")
    parser.add_argument("--port", type=int, default=19092, help="base port with --local")
    parser.add_argument("--ticks", type=int, default=40, help="demo snapshots before grabbing")
    parser.add_argument("--pages", help="comma-separated pages to grab (default: all), e.g. "
                                        "cluster,topics,scenarios,timeline")
    parser.add_argument("--themes", default="light,dark", help="comma-separated themes")
    parser.add_argument("--scenario", metavar="NAME",
                        help="with --local/--live: run this bundled scenario first")
    parser.add_argument("--duration", type=float, default=0.0,
                        help="the scenario's duration in seconds (default: its own)")
    parser.add_argument("--size", default="1440x900",
                        help="window size WIDTHxHEIGHT (e.g. 1280x800, a small laptop)")
    args = parser.parse_args(argv)
    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        parser.error(f"--size: expected WIDTHxHEIGHT, got {args.size!r}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    from gui.app import Console
    from gui.bridge.demo import DemoBackend, DemoCluster

    if args.local:
        from gui.bridge.kafka import KafkaBackend

        backend = KafkaBackend(data_dir=args.local, port=args.port)
        interval = 1.0
    elif args.live:
        from gui.bridge.kafka import KafkaBackend

        backend = KafkaBackend(attach=args.live)
        interval = 1.0
    else:
        cluster = DemoCluster()
        for _ in range(args.ticks):  # pre-warm so rates, lag and charts have history
            cluster.snapshot()
        backend = DemoBackend(cluster)
        interval = 0.05
    import tempfile

    settings = QSettings(str(Path(tempfile.mkdtemp()) / "settings.ini"),
                         QSettings.Format.IniFormat)
    settings.clear()
    console = Console(app, backend, settings=settings, interval=interval)
    window = console.window
    window.resize(width, height)
    window.show()  # tables fit their columns to what is on screen
    console.start()
    try:
        _pump(app, 3.0)
        names = page_names(window)
        wanted = names if not args.pages else [n.strip() for n in args.pages.split(",")]
        unknown = sorted(set(wanted) - set(names))
        if unknown:
            parser.error(f"unknown page(s) {', '.join(unknown)}; pages: {', '.join(names)}")
        real = bool(args.live or args.local)
        if args.scenario and not real:
            parser.error("--scenario needs a real cluster (--local or --live)")
        if args.scenario:
            _run_scenario(app, window, args.scenario, args.duration)
        elif real:
            _seed(app, console)
        if not real:
            # a kill to show an under-replicated topic and a moved leader
            backend.cluster.broker_action("kill", 3)
            _pump(app, 0.5)
        window.topics_view.select_topic("orders")
        window.groups_view.select_group("order-service")
        window.browse_view.set_topic("orders")
        window.browse_view.read()
        _pump(app, 1.0)
        window.browse_view.table.selectRow(2)
        if real and "query" in wanted:
            _query_orders(app, window)
        if not real:
            window.logs_view.append([(b, lvl, f"2024-05-01 12:00:{i:02d},{i * 7:03d} {lvl} "
                                      f"[broker-{b}] {msg}")
                                     for i, (b, lvl, msg) in enumerate([
                                         (1, "INFO", "Kafka listener started on 127.0.0.1:9092"),
                                         (2, "INFO", "Registered with controller 1, epoch 3"),
                                         (3, "INFO", "Became follower of orders-0 (leader 1)"),
                                         (1, "WARNING", "ISR of orders-2 shrinking from 1,2,3 to "
                                          "1,2: broker 3 is 31204 ms behind"),
                                         (1, "INFO", "Partition orders-2: high watermark 40211"),
                                         (2, "ERROR", "Connection to broker 3 (127.0.0.1:9094) "
                                          "refused"),
                                         (1, "INFO", "Elected leader for 6 partitions after "
                                          "broker 3 was fenced"),
                                     ] * 3)])
        window.produce_view.set_topic("orders")
        window.produce_view.template.setCurrentText("JSON order")
        window.produce_view.count.setValue(1000)
        for theme in [t.strip() for t in args.themes.split(",")]:
            console.theme.apply(theme)
            for i, name in enumerate(names):
                if name not in wanted:
                    continue
                window.show_page(i)
                _pump(app, 0.6)
                path = out / f"{name}-{theme}.png"
                window.grab().save(str(path))
                print(path)
    finally:
        console.close()  # stops a cluster it started (by PID)
    return 0


if __name__ == "__main__":
    sys.exit(main())
