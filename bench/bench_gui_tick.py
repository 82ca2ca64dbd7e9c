"""GUI tick benchmark: Qt-thread time to apply one ClusterSnapshot to every view.

    QT_QPA_PLATFORM=offscreen python bench/bench_gui_tick.py [--partitions 1000 --groups 20]

Synthetic snapshots (gui.bridge.demo.DemoCluster: rates, offsets and lag change on every tick,
as in a busy cluster) are fed to MainWindow.on_snapshot exactly as the Session does; we time
that call plus the repaint it causes (processEvents), offscreen. Reported: median and p95 per
tick, for the Topics page (a topic selected) and the Charts page (curves redrawn each tick).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication


def run(partitions: int, groups: int, ticks: int, page: int) -> list[float]:
    from gui.bridge.demo import DemoBackend, DemoCluster
    from gui.bridge.session import Session
    from gui.views.main_window import MainWindow

    per_topic = 10
    cluster = DemoCluster(brokers=3, topics=partitions // per_topic - 1, partitions=per_topic,
                          groups=groups)
    snaps = [cluster.snapshot() for _ in range(ticks + 5)]
    n_parts = sum(len(t.partitions) for t in snaps[0].topics)
    settings = QSettings(str(Path(tempfile.mkdtemp()) / "s.ini"), QSettings.Format.IniFormat)
    session = Session(DemoBackend(cluster))
    window = MainWindow(session, None, settings)
    window.resize(1440, 900)
    window.show()
    window.show_page(page)
    app = QApplication.instance()
    window.on_snapshot(snaps[0])
    window.topics_view.select_topic("orders")
    window.groups_view.select_group(snaps[0].groups[0].group_id)
    app.processEvents()
    times = []
    for snap in snaps[1:]:
        start = time.perf_counter()
        window.on_snapshot(snap)
        app.processEvents()
        times.append((time.perf_counter() - start) * 1000)
    session.close()
    window.close()
    print(f"  {n_parts} partitions, {len(snaps[0].groups)} groups, {len(snaps[0].topics)} "
          f"topics, page {page}")
    return times[3:]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--partitions", type=int, default=1000)
    parser.add_argument("--groups", type=int, default=20)
    parser.add_argument("--ticks", type=int, default=60)
    args = parser.parse_args()
    QApplication.instance() or QApplication([])
    results = {}
    for name, page in (("topics page", 1), ("charts page", 5), ("cluster page", 0)):
        t = run(args.partitions, args.groups, args.ticks, page)
        t.sort()
        results[name] = (statistics.median(t), t[int(len(t) * 0.95) - 1], t[-1])
        print(f"{name}: median {results[name][0]:.2f} ms, p95 {results[name][1]:.2f} ms, "
              f"max {results[name][2]:.2f} ms per tick")
    worst = max(r[0] for r in results.values())
    print(f"RESULT median Qt-thread work per tick (worst page): {worst:.2f} ms "
          f"({'OK' if worst < 20 else 'OVER'} the 20 ms budget)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
