"""Render the console's main views to PNGs (light and dark) with QWidget.grab().

    QT_QPA_PLATFORM=offscreen python -m gui.screenshot [--out docs/screenshots] [--live BOOTSTRAP]

Without --live the synthetic DemoBackend feeds the window (no cluster needed); with --live
it attaches to a running cluster. Each page is shown after a few snapshots so tables, cards
and charts have data.
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

PAGES = ("cluster", "topics", "groups", "produce", "browse", "charts", "logs")


def _pump(app: QApplication, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="docs/screenshots")
    parser.add_argument("--live", help="attach to this bootstrap instead of the demo cluster")
    parser.add_argument("--ticks", type=int, default=40, help="demo snapshots before grabbing")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    from gui.app import Console
    from gui.bridge.demo import DemoBackend, DemoCluster

    if args.live:
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
    window.resize(1440, 900)
    console.start()
    _pump(app, 3.0 if not args.live else 6.0)
    if not args.live:
        # a kill to show an under-replicated topic and a moved leader
        backend.cluster.broker_action("kill", 3)
        _pump(app, 0.5)
    window.topics_view.select_topic("orders")
    window.groups_view.select_group("order-service")
    window.browse_view.set_topic("orders")
    window.browse_view.read()
    _pump(app, 1.0)
    window.browse_view.table.selectRow(2)
    if not args.live:
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
    for theme in ("light", "dark"):
        console.theme.apply(theme)
        for i, name in enumerate(PAGES):
            window.show_page(i)
            _pump(app, 0.4)
            path = out / f"{name}-{theme}.png"
            window.grab().save(str(path))
            print(path)
    console.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
