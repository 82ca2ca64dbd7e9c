"""The Query and Transactions pages against a real 3-broker cluster (LocalCluster, ended by
PID at teardown) through a Session: SQL results equal plain Python over the same records,
sorting, CSV export, a live (push) query that follows new records, cancel; open, hanging and
LSO-holding transactions made with confluent-kafka.

KAFLAB_SCREENSHOTS=docs/screenshots also saves query-light.png and transactions-light.png.
"""

from __future__ import annotations

import csv
import json
import os
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("duckdb")
confluent_kafka = pytest.importorskip("confluent_kafka")

from core.cluster.local import LocalCluster, free_base_port  # noqa: E402
from tests.fixtures import TEST_DEFAULTS  # noqa: E402

pytestmark = pytest.mark.timeout(150)

SHOTS = os.environ.get("KAFLAB_SCREENSHOTS")


def wait(qtbot, predicate, timeout: float, what: str) -> None:
    try:
        qtbot.waitUntil(lambda: bool(predicate()), timeout=int(timeout * 1000))
    except Exception as exc:
        raise AssertionError(f"timed out after {timeout}s waiting for {what}") from exc


def test_pages_are_in_the_sidebar(demo_console):
    titles = demo_console.window.page_titles
    assert "Query" in titles and "Transactions" in titles


@pytest.fixture(scope="module")
def session(qapp, tmp_path_factory) -> Iterator:
    from gui.bridge.kafka import KafkaBackend
    from gui.bridge.session import Session

    root: Path = tmp_path_factory.mktemp("query-cluster")
    cluster = LocalCluster(root / "cluster", brokers=3, port=free_base_port(3), config=dict(
        TEST_DEFAULTS, **{"offsets.topic.replication.factor": "3",
                          "transaction.state.log.num.partitions": "3",
                          "transaction.abort.timed.out.transaction.cleanup.interval.ms":
                              "600000"}))
    cluster.start()
    backend = KafkaBackend(data_dir=cluster.data_dir)
    s = Session(backend, interval=0.5)
    try:
        s.open()
        deadline = time.monotonic() + 60
        while s.capabilities is None and time.monotonic() < deadline:
            qapp.processEvents()
            time.sleep(0.02)
        assert s.capabilities is not None, "session did not open"
        yield s
    finally:
        s.close(stop_cluster=False)
        cluster.stop()


def _produce(bootstrap: str, topic: str, records: list[tuple[str, bytes]],
             partitions: int) -> None:
    producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i, (key, value) in enumerate(records):
        producer.produce(topic, value, key.encode(), partition=i % partitions,
                         headers=[("source", b"test")] if i % 2 else None)
    assert producer.flush(20) == 0


def _create(bootstrap: str, topic: str, partitions: int) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 3)])[topic].result(20)


def _grab(view, qtbot, name: str) -> None:
    if not SHOTS:
        return
    from PySide6.QtWidgets import QApplication

    from gui.theme import ThemeManager

    ThemeManager(QApplication.instance(), "light").apply("light")
    view.resize(1280, 800)
    view.show()
    qtbot.wait(300)
    out = Path(SHOTS)
    out.mkdir(parents=True, exist_ok=True)
    assert view.grab().save(str(out / f"{name}-light.png"))


def test_query_page(session, qtbot, tmp_path):
    from gui.views.pages.query import QueryView

    bootstrap = session.capabilities.bootstrap
    topic = f"orders-{uuid.uuid4().hex[:6]}"
    _create(bootstrap, topic, 3)
    items = ["book", "lamp", "desk", "chair"]
    records = [(f"customer-{i % 7}", json.dumps({"amount": i * 3 % 101, "item": items[i % 4],
                                                  "n": i}).encode()) for i in range(600)]
    records += [("customer-x", b"not json at all"), ("customer-x", b"\x00\xffbinary")]
    _produce(bootstrap, topic, records, 3)

    view = QueryView(session)
    qtbot.addWidget(view)
    session.snapshot.connect(view.on_snapshot)
    wait(qtbot, lambda: view.topic.findText(topic) >= 0, 20, "the topic in the picker")
    view.topic.setCurrentText(topic)
    view.insert_button.click()
    assert f'FROM "{topic}"' in view.editor.toPlainText()

    results = []
    view.controller.result.connect(results.append)
    progress = []
    view.controller.progress.connect(lambda d, t, n: progress.append((d, t)))
    view.editor.setPlainText(
        f"SELECT key, count(*) AS n, sum((value->>'amount')::INT) AS total,\n"
        f"       count(*) FILTER (WHERE json_type(value) = 'OBJECT') AS json_values\n"
        f'FROM "{topic}" GROUP BY key ORDER BY key')
    view.run_button.click()
    assert view.cancel_button.isEnabled() and not view.run_button.isEnabled()
    wait(qtbot, lambda: results, 30, "the query result")
    result = results[-1]
    expected_n = Counter(k for k, _ in records)
    expected_total = Counter()
    for k, v in records:
        try:
            expected_total[k] += json.loads(v)["amount"]
        except (ValueError, UnicodeDecodeError):
            pass
    assert [r[0] for r in result.rows] == sorted(expected_n)
    assert {r[0]: r[1] for r in result.rows} == dict(expected_n)
    assert {r[0]: r[2] for r in result.rows if r[2] is not None} == dict(expected_total)
    assert {r[0]: r[3] for r in result.rows}["customer-x"] == 0
    assert progress and progress[-1][0] == progress[-1][1] == len(records)
    assert view.model.rowCount() == len(expected_n) and "rows" in view.status.text()
    wait(qtbot, lambda: view.run_button.isEnabled(), 5, "the run to end")

    # sortable: by total, descending
    view.table.sortByColumn(2, view.table.horizontalHeader().sortIndicatorOrder().DescendingOrder)
    shown = [float(view.proxy.index(r, 2).data().replace("NULL", "-1"))
             for r in range(view.proxy.rowCount())]
    assert shown == sorted(shown, reverse=True)

    # CSV export
    out = tmp_path / "result.csv"
    exported = []
    view.controller.exported.connect(lambda p, n: exported.append(n))
    view.controller.export_csv(out)
    wait(qtbot, lambda: exported, 10, "the export")
    with open(out, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["key", "n", "total", "json_values"] and len(rows) == len(expected_n) + 1

    # a bad query says why
    failures = []
    view.controller.failed.connect(failures.append)
    view.editor.setPlainText(f'SELECT nope FROM "{topic}"')
    view.run_button.click()
    wait(qtbot, lambda: failures, 10, "the error")
    assert "nope" in failures[-1] and "nope" in view.status.text()

    # live: a push query follows new records
    results.clear()
    view.editor.setPlainText(f'SELECT count(*) AS n, max("offset") AS last FROM "{topic}"')
    view.live.setChecked(True)
    view.run_button.click()
    wait(qtbot, lambda: results and results[-1].rows[0][0] == len(records), 20,
         "the first live result")
    _produce(bootstrap, topic, [("late", b'{"amount": 1}')] * 9, 3)
    wait(qtbot, lambda: results[-1].rows[0][0] == len(records) + 9, 20, "the live update")
    assert view.controller.running and view.cancel_button.isEnabled()
    view.cancel_button.click()
    wait(qtbot, lambda: not view.controller.running and view.run_button.isEnabled(), 10,
         "live to stop")
    view.live.setChecked(False)

    # cancel a long query
    failures.clear()
    view.editor.setPlainText("SELECT count(*) FROM range(2000000000) a, range(100000) b "
                             "WHERE a.range % 13 = b.range")
    view.run_button.click()
    qtbot.wait(400)
    view.cancel_button.click()
    wait(qtbot, lambda: failures and view.run_button.isEnabled(), 10, "the cancel")
    assert failures[-1] == "Cancelled."

    # for the screenshot: the item totals
    results.clear()
    view.editor.setPlainText(
        f"SELECT value->>'item' AS item, count(*) AS orders,\n"
        f"       sum((value->>'amount')::INT) AS amount, max(\"timestamp\") AS latest\n"
        f'FROM "{topic}" WHERE item IS NOT NULL\nGROUP BY item ORDER BY amount DESC')
    view.run_button.click()
    wait(qtbot, lambda: results, 20, "the item totals")
    assert {r[0] for r in results[-1].rows} == set(items)
    _grab(view, qtbot, "query")
    view.controller.close()


def test_transactions_page(session, qtbot):
    from confluent_kafka import Producer

    from gui.views.pages.transactions import TransactionsView

    bootstrap = session.capabilities.bootstrap
    topic = f"payments-{uuid.uuid4().hex[:6]}"
    _create(bootstrap, topic, 2)
    tag = uuid.uuid4().hex[:6]

    def producer(name: str, timeout_ms: int) -> Producer:
        p = Producer({"bootstrap.servers": bootstrap, "transactional.id": f"{name}-{tag}",
                      "transaction.timeout.ms": timeout_ms, "linger.ms": 5})
        p.init_transactions(30)
        return p

    done = producer("settled", 60000)
    done.begin_transaction()
    done.produce(topic, b"ok", partition=0)
    done.commit_transaction(30)
    open_ = producer("open", 60000)
    open_.begin_transaction()
    open_.produce(topic, b"pending", partition=0)
    open_.flush(10)
    hanging = producer("hanging", 1000)  # the coordinator's abort sweep is off (10 min)
    hanging.begin_transaction()
    for i in range(5):
        hanging.produce(topic, b"stuck-%d" % i, partition=1)
    hanging.flush(10)
    time.sleep(1.5)

    view = TransactionsView(session, interval_ms=500)
    qtbot.addWidget(view)
    snaps = []
    view.controller.snapshot.connect(snaps.append)
    view.refresh_button.click()

    def ready() -> bool:
        view.refresh()  # the page polls on its timer only while visible
        if not snaps:
            return False
        s = snaps[-1]
        return (len(s.open) >= 2 and len(s.held) >= 2
                and all(h.transactional_ids for h in s.held if h.topic == topic))

    wait(qtbot, ready, 30, "open transactions and held partitions")
    snap = snaps[-1]
    by_id = {t.transactional_id: t for t in snap.open}
    assert snap.states[f"settled-{tag}"] == "CompleteCommit"
    assert by_id[f"open-{tag}"].state == "Ongoing" and not by_id[f"open-{tag}"].hanging
    assert by_id[f"hanging-{tag}"].hanging
    assert by_id[f"hanging-{tag}"].partitions == ((topic, 1),)
    held = {(h.topic, h.partition): h for h in snap.held}
    assert held[(topic, 0)].transactional_ids == (f"open-{tag}",)
    # offsets: 0 committed record, 1 its commit marker, 2 the open record
    assert held[(topic, 0)].lso == 2 and held[(topic, 0)].high_watermark == 3
    assert held[(topic, 1)].transactional_ids == (f"hanging-{tag}",)
    assert held[(topic, 1)].held == 5
    assert [h.hanging for h in snap.hanging] == [True]
    wait(qtbot, lambda: view.open_table.rowCount() >= 2, 5, "the table")
    names = [view.open_table.item(r, 0).text() for r in range(view.open_table.rowCount())]
    assert f"hanging-{tag}" in names
    row = names.index(f"hanging-{tag}")
    assert "hanging" in view.open_table.item(row, 1).text()
    assert view.card_hanging.value.text() == "1"
    _grab(view, qtbot, "transactions")

    # committing releases the partition
    open_.commit_transaction(30)
    snaps.clear()
    def released() -> bool:
        view.refresh()
        return bool(snaps) and (topic, 0) not in {(h.topic, h.partition) for h in snaps[-1].held}

    wait(qtbot, released, 20, "partition 0 released")
    hanging.abort_transaction(30)
    view.timer.stop()
    view.controller.close()
