"""Issue #8 in the real console against real broker processes: network faults applied and
cleared from the broker's row reach the supervisor's proxies (ctl status, a real client's
round trips, the ISR), a replication throttle set from the row is read back with
confluent-kafka's DescribeConfigs, and the live charts get a marker for each.

The console starts its own 3-broker cluster (LocalCluster -> `serve`, whose default runs a
fault proxy in front of every broker) under a temporary data dir on free ports, and stops it
in teardown; LocalCluster.stop (by PID) is the safety net. KAFLAB_SCREENSHOTS=docs/screenshots
also saves faults-cluster-light.png and faults-charts-light.png (the docs' copies come from
`-k "cluster_up or screenshots"`, so the charts show only that test's spaced-out markers).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from core.cluster.client import ClusterControl
from core.cluster.local import free_base_port
from core.timeline.store import TimelineStore
from gui.bridge.backend import ProduceSpec, ThrottleSpec
from gui.models.cluster import BrokersModel
from gui.views.common import select_key
from tests.fixtures import TEST_DEFAULTS

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
SHOTS = os.environ.get("KAFLAB_SCREENSHOTS", "")
TOPIC = "faults-orders"
MOVE = "faults-move"
ROOT = Path(__file__).resolve().parents[2]


def pump_until(qtbot, predicate, timeout: float = 30.0, what: str = "") -> None:
    try:
        qtbot.waitUntil(lambda: bool(predicate()), timeout=int(timeout * 1000))
    except Exception as exc:  # a clearer message than pytest-qt's
        raise AssertionError(f"timed out after {timeout}s waiting for {what}") from exc


@pytest.fixture(scope="module")
def console(qapp, tmp_path_factory) -> Iterator:
    from gui.app import Console
    from gui.bridge.kafka import KafkaBackend

    root: Path = tmp_path_factory.mktemp("gui-faults")
    backend = KafkaBackend(data_dir=root / "cluster", brokers=3, port=free_base_port(3),
                           config=dict(TEST_DEFAULTS, **{"replica.lag.time.max.ms": "4000"}))
    settings = QSettings(str(root / "settings.ini"), QSettings.Format.IniFormat)
    c = Console(qapp, backend, settings=settings, interval=0.5)
    c.window.resize(1440, 900)
    c.window.show()  # the tables fit their columns to what is on screen
    c.start()
    try:
        yield c
    finally:
        local = backend.local
        c.close()
        if local is not None:
            local.stop()


def status_of(console, broker_id: int) -> dict:
    document = ClusterControl(console.window.caps.data_dir, timeout=10).status_sync()
    return next(b for b in document["brokers"] if b["id"] == broker_id)


def row(console, broker_id: int):
    return console.window.cluster_view.brokers.item(broker_id)


def cell(console, broker_id: int, column: int) -> str:
    model = console.window.cluster_view.brokers
    return model.index(model.row_of(broker_id), column).data()


def address(console, broker_id: int) -> str:
    return row(console, broker_id).address


def first_metadata_s(bootstrap: str) -> float:
    """How long a fresh confluent-kafka client takes to get metadata from one broker."""
    from confluent_kafka.admin import AdminClient

    started = time.monotonic()
    client = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 15000})
    client.list_topics(timeout=15)
    return time.monotonic() - started


_PREPARED: set[int] = set()  # ids of the consoles whose cluster has TOPIC and its traffic


def ready(console, qtbot) -> None:
    """The cluster is up with 3 running brokers, TOPIC exists and traffic flows into it: set up
    by whichever test runs first, so that any test of this module can also run alone."""
    w = console.window
    pump_until(qtbot, lambda: w.caps is not None, 120, "the cluster to start")
    pump_until(qtbot, lambda: console.session.last_snapshot is not None and sum(
        b.state in ("running", "online") for b in console.session.last_snapshot.brokers) == 3,
        60, "3 running brokers")
    if id(console) in _PREPARED:
        return
    done = []
    console.session.create_topic(TOPIC, 6, 3, {}, on_ok=done.append)
    pump_until(qtbot, lambda: done, 30, "the topic")
    # the console acts on the topics of its last snapshot (a throttle on "all" replicas)
    pump_until(qtbot, lambda: console.session.last_snapshot.topic(TOPIC) is not None, 30,
               "the topic in the console's snapshot")
    # steady traffic for the charts while the faults come and go (~120 s)
    console.session.produce(ProduceSpec(topic=TOPIC, value="{counter}", count=36_000, rate=300),
                            lambda *_: None)
    _PREPARED.add(id(console))


def test_cluster_up_with_fault_proxies(console, qtbot):
    w = console.window
    ready(console, qtbot)
    assert w.caps.supervised and w.caps.network_faults, w.caps.network_reason
    w.show_page(0)
    assert select_key(w.cluster_view.table, "2")
    assert w.cluster_view.network_button.isEnabled()
    assert w.cluster_view.throttle_button.isEnabled()


def test_latency_from_the_row_reaches_the_proxy(console, qtbot, monkeypatch):
    ready(console, qtbot)
    from gui.views import cluster_view as module

    cv = console.window.cluster_view
    assert select_key(cv.table, "2")
    before = [first_metadata_s(address(console, 2)) for _ in range(3)]

    def exec_(dialog):
        dialog.ms.setValue(250)
        return module.QDialog.DialogCode.Accepted

    monkeypatch.setattr(module.LatencyDialog, "exec", exec_)
    cv.network_actions["latency"].trigger()  # the menu entry, through the dialog
    pump_until(qtbot, lambda: (status_of(console, 2).get("netfault") or {}).get("latency_ms")
               == 250, 20, "the supervisor to report +250 ms on broker 2")
    pump_until(qtbot, lambda: cell(console, 2, BrokersModel.NETWORK_COLUMN) == "+250 ms", 20,
               "the row to show +250 ms")
    assert status_of(console, 1).get("netfault") is None
    slow = [first_metadata_s(address(console, 2)) for _ in range(3)]
    baseline = [first_metadata_s(address(console, 1)) for _ in range(3)]
    # ApiVersions + Metadata: at least one full 250 ms round trip more than before
    assert statistics.median(slow) >= 0.25, (before, slow)
    assert statistics.median(slow) - statistics.median(before) >= 0.2, (before, slow)
    assert statistics.median(baseline) < statistics.median(slow), (baseline, slow)
    pump_until(qtbot, lambda: "+250ms b2" in console.window.charts_view.markers.labels(), 10,
               "a chart marker for the latency")


def test_isolate_and_clear_from_the_row(console, qtbot):
    ready(console, qtbot)
    cv = console.window.cluster_view
    session = console.session
    cv.network_fault(2, "isolate")
    pump_until(qtbot, lambda: (status_of(console, 2).get("netfault") or {}).get("mode")
               == "isolate", 20, "the supervisor to report broker 2 isolated")
    pump_until(qtbot, lambda: cell(console, 2, BrokersModel.NETWORK_COLUMN)
               == "isolated, +250 ms", 20, "the row to show the isolation")

    def dropped() -> bool:
        parts = [p for p in session.last_snapshot.topic(TOPIC).partitions]
        return any(2 in p.replicas and 2 not in p.isr for p in parts)

    pump_until(qtbot, dropped, 60, "broker 2 to fall out of an ISR while cut off")
    cv.network_fault(2, "clear")
    pump_until(qtbot, lambda: status_of(console, 2).get("netfault") is None, 20,
               "the supervisor to report broker 2 healthy")
    pump_until(qtbot, lambda: cell(console, 2, BrokersModel.NETWORK_COLUMN) == "", 20,
               "the row to clear")
    labels = console.window.charts_view.markers.labels()
    assert "isolate +250ms b2" in labels, labels
    pump_until(qtbot, lambda: "net ok b2" in console.window.charts_view.markers.labels(), 10,
               "a chart marker for the clear")

    def healed() -> bool:
        return all(set(p.isr) == set(p.replicas)
                   for p in session.last_snapshot.topic(TOPIC).partitions)

    pump_until(qtbot, healed, 90, "broker 2 back in every ISR after the clear")
    # the timeline (D/timeline.sqlite, which the console records into) has both changes
    store = TimelineStore(console.window.caps.data_dir / "timeline.sqlite")
    try:
        def texts() -> list[str]:
            return [e.text for e in store.events_between(0, time.time() + 60)
                    if e.kind == "network-fault" and e.is_fault]

        pump_until(qtbot, lambda: any("isolate" in t for t in texts())
                   and any("cleared" in t for t in texts()), 20,
                   "network-fault events in the timeline")
    finally:
        store.close()


def _describe(console, resource_type, name: str) -> dict:
    from confluent_kafka.admin import AdminClient, ConfigResource

    admin = AdminClient({"bootstrap.servers": console.window.caps.bootstrap})
    resource = ConfigResource(resource_type, name)
    return admin.describe_configs([resource])[resource].result(20)


def test_drop_and_blackhole_keep_the_console_polling(console, qtbot):
    """Drop and blackhole broker 3 from the row: the supervisor reports them, the console
    keeps polling (its requests to broker 3 time out off the Qt thread) and shows them."""
    ready(console, qtbot)
    cv = console.window.cluster_view
    for fault, label in (("drop", "dropping"), ("blackhole", "blackhole")):
        cv.network_fault(3, fault)
        pump_until(qtbot, lambda f=fault: (status_of(console, 3).get("netfault") or {})
                   .get("mode") == f, 20, f"the supervisor to report {fault} on broker 3")
        pump_until(qtbot, lambda lb=label: cell(console, 3, BrokersModel.NETWORK_COLUMN) == lb,
                   40, f"the row to show {label}")
    cv.network_fault(3, "clear")
    pump_until(qtbot, lambda: status_of(console, 3).get("netfault") is None, 20,
               "broker 3 healthy in ctl status")
    pump_until(qtbot, lambda: cell(console, 3, BrokersModel.NETWORK_COLUMN) == "", 40,
               "the row to clear")
    labels = console.window.charts_view.markers.labels()
    assert "net ok b3" in labels, labels
    assert any(x.startswith(("drop", "blackhole")) and x.endswith("b3") for x in labels), labels


def config_settles(console, qtbot, resource_type, name: str, expected: dict) -> dict:
    """DescribeConfigs until every ``expected`` key has its value (None: the default).

    A config change reaches every broker's metadata image within ~100 ms of the
    IncrementalAlterConfigs answer (Kafka is eventually consistent here too), so a describe
    sent right after the change may still see the old value."""
    found: dict = {}

    def ok() -> bool:
        found.clear()
        found.update(_describe(console, resource_type, name))
        return all((found[k].is_default or not found[k].value) if v is None
                   else found[k].value == v for k, v in expected.items())

    try:
        pump_until(qtbot, ok, 10, f"configs of {name}")
    except AssertionError:
        raise AssertionError({k: (found[k].value, found[k].source) for k in expected
                              if k in found}) from None
    return found


def test_throttle_set_and_cleared_from_the_row(console, qtbot):
    ready(console, qtbot)
    from confluent_kafka.admin import ResourceType

    cv = console.window.cluster_view
    assert select_key(cv.table, "1")
    dialog = cv.throttle_dialog(row(console, 1))
    qtbot.addWidget(dialog)
    dialog.leader.setValue(5)
    dialog.follower.setValue(2)
    assert dialog.ok.isEnabled()
    spec = dialog.spec()
    assert spec == ThrottleSpec(5_000_000, 2_000_000, "all")
    errors = []
    cv.set_throttle(1, spec).failed.connect(errors.append)
    pump_until(qtbot, lambda: cell(console, 1, BrokersModel.THROTTLE_COLUMN)
               == "leader 5 \u00b7 follower 2 MB/s" or errors, 30,
               "the row to show the throttle")
    assert not errors, errors
    config_settles(console, qtbot, ResourceType.BROKER, "1", {
        "leader.replication.throttled.rate": "5000000",
        "follower.replication.throttled.rate": "2000000"})
    config_settles(console, qtbot, ResourceType.TOPIC, TOPIC, {
        "leader.replication.throttled.replicas": "*",
        "follower.replication.throttled.replicas": "*"})
    assert _describe(console, ResourceType.BROKER, "2")[
        "leader.replication.throttled.rate"].is_default
    pump_until(qtbot, lambda: "throttle b1 5MB/s" in console.window.charts_view.markers.labels(),
               10, "a chart marker for the throttle")

    cv.clear_throttle(1).failed.connect(errors.append)
    pump_until(qtbot, lambda: cell(console, 1, BrokersModel.THROTTLE_COLUMN) == "" or errors,
               30, "the row to clear the throttle")
    assert not errors, errors
    config_settles(console, qtbot, ResourceType.BROKER, "1", {
        "leader.replication.throttled.rate": None, "follower.replication.throttled.rate": None})
    config_settles(console, qtbot, ResourceType.TOPIC, TOPIC, {
        "leader.replication.throttled.replicas": None,
        "follower.replication.throttled.replicas": None})
    pump_until(qtbot, lambda: "unthrottle b1" in console.window.charts_view.markers.labels(),
               10, "a chart marker for the clear")


def test_throttle_on_reassigning_replicas_needs_a_reassignment(console, qtbot):
    ready(console, qtbot)
    cv = console.window.cluster_view
    errors = []
    cv.set_throttle(3, ThrottleSpec(1_000_000, None, "reassigning")).failed.connect(
        errors.append)
    pump_until(qtbot, lambda: errors, 30, "the refusal")
    assert "No partition is being reassigned" in str(errors[0])
    assert cell(console, 3, BrokersModel.THROTTLE_COLUMN) == ""


def test_throttle_on_the_replicas_being_reassigned(console, qtbot):
    """A move of a 3 MB partition from broker 1 to 1,3, started headless with
    `main.py data reassign`, held back by broker 3's follower throttle; then the throttle is
    narrowed to the moving replicas from the row (Kafka's partition:broker lists) and
    cleared, and the move completes."""
    ready(console, qtbot)
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic, ResourceType

    move = f"{MOVE}-{uuid.uuid4().hex[:6]}"  # a rerun must not meet the last attempt's topic
    cv = console.window.cluster_view
    caps = console.window.caps
    admin = AdminClient({"bootstrap.servers": caps.bootstrap})
    admin.create_topics([NewTopic(move, num_partitions=1,
                                  replica_assignment=[[1]])])[move].result(30)
    producer = Producer({"bootstrap.servers": caps.bootstrap, "linger.ms": 20, "acks": "all"})
    payload = b"x" * 1000
    for _ in range(3000):
        while True:
            try:
                producer.produce(move, payload)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    assert producer.flush(60) == 0
    errors = []
    cv.set_throttle(3, ThrottleSpec(None, 100_000, "all")).failed.connect(errors.append)
    pump_until(qtbot, lambda: cell(console, 3, BrokersModel.THROTTLE_COLUMN)
               == "follower 0.1 MB/s" or errors, 30, "the throttle on broker 3's row")
    assert not errors, errors
    config_settles(console, qtbot, ResourceType.TOPIC, move,
                   {"follower.replication.throttled.replicas": "*"})
    # the describe answered from one broker; broker 3 (the follower that must be held back)
    # applies the same metadata within ~100 ms (measured): give it 1 s before the move starts
    qtbot.wait(1000)
    subprocess.run([sys.executable, "main.py", "data", "reassign", "--data-dir",
                    str(caps.data_dir), "--topic", move, "--replicas", "1,3", "--no-wait"],
                   cwd=ROOT, check=True, timeout=60, capture_output=True)
    done = []
    future = cv.set_throttle(3, ThrottleSpec(None, 100_000, "reassigning"))
    future.finished.connect(done.append)
    future.failed.connect(errors.append)
    pump_until(qtbot, lambda: done or errors, 30, "the throttle on the moving replicas")
    assert not errors, errors
    assert "1 topic(s) being reassigned" in done[0], done
    config_settles(console, qtbot, ResourceType.TOPIC, move, {
        "leader.replication.throttled.replicas": "0:1",
        "follower.replication.throttled.replicas": "0:3"})
    moving = console.session.last_snapshot.topic(move)
    assert moving is not None and 3 not in moving.partitions[0].isr, \
        "the throttled move finished at once (3 MB at 100 kB/s?)"
    cv.clear_throttle(3).failed.connect(errors.append)
    pump_until(qtbot, lambda: cell(console, 3, BrokersModel.THROTTLE_COLUMN) == "" or errors,
               30, "the throttle cleared")
    assert not errors, errors
    config_settles(console, qtbot, ResourceType.TOPIC, move, {
        "leader.replication.throttled.replicas": None,
        "follower.replication.throttled.replicas": None})

    def moved() -> bool:
        p = console.session.last_snapshot.topic(move).partitions[0]
        return set(p.replicas) == {1, 3} and set(p.isr) == {1, 3}

    pump_until(qtbot, moved, 90, "the move to complete once unthrottled")


def test_pause_markers_and_screenshots(console, qtbot):
    """Faults a few seconds apart, as an operator would apply them, then the screenshots."""
    ready(console, qtbot)
    w = console.window
    cv = w.cluster_view
    labels = w.charts_view.markers.labels
    cv.network_fault(2, "latency", 200)
    pump_until(qtbot, lambda: cell(console, 2, BrokersModel.NETWORK_COLUMN) == "+200 ms", 20,
               "+200 ms on broker 2's row")
    qtbot.wait(10_000)
    cv.set_throttle(1, ThrottleSpec(10_000_000, 10_000_000, "all"))
    pump_until(qtbot, lambda: cell(console, 1, BrokersModel.THROTTLE_COLUMN), 30,
               "the throttle on broker 1's row")
    qtbot.wait(10_000)
    cv.do_action("pause", 3)
    pump_until(qtbot, lambda: "pause b3" in labels(), 20, "a chart marker for the pause")
    qtbot.wait(10_000)
    cv.do_action("resume", 3)
    pump_until(qtbot, lambda: "resume b3" in labels(), 20, "a chart marker for the resume")
    qtbot.wait(4000)
    assert {"+200ms b2", "throttle b1 10MB/s", "pause b3", "resume b3"} <= set(labels())
    try:
        if SHOTS:
            from PySide6.QtWidgets import QApplication

            from gui.theme import ThemeManager

            ThemeManager(QApplication.instance(), "light").apply("light")
            out = Path(SHOTS)
            out.mkdir(parents=True, exist_ok=True)
            w.show_page(0)
            assert select_key(cv.table, "2")
            qtbot.wait(1500)
            assert w.grab().save(str(out / "faults-cluster-light.png"))
            w.show_page(PAGES_CHARTS)
            qtbot.wait(1500)
            assert w.grab().save(str(out / "faults-charts-light.png"))
    finally:
        cv.network_fault(2, "clear")
        cv.clear_throttle(1)
        pump_until(qtbot, lambda: cell(console, 2, BrokersModel.NETWORK_COLUMN) == ""
                   and cell(console, 1, BrokersModel.THROTTLE_COLUMN) == "", 30,
                   "the faults cleared")


PAGES_CHARTS = 5  # Cluster, Topics, Consumer groups, Produce, Browse, Charts
