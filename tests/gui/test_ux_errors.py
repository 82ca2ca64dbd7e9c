"""Errors and reports the user reads: no stale rows under a failed read, no repeated Kafka
error code, no "0 records/s" for a slow but successful produce."""

from __future__ import annotations

from PySide6.QtWidgets import QApplication, QMessageBox

from gui.bridge.backend import ProduceReport
from gui.views.common import describe_error


def _boxes() -> list[QMessageBox]:
    return [w for w in QApplication.topLevelWidgets()
            if isinstance(w, QMessageBox) and w.isVisible()]


def test_a_failed_read_does_not_leave_the_previous_topics_rows(demo_console, qtbot):
    w = demo_console.window
    w.show()
    qtbot.waitExposed(w)
    view = w.browse_view
    w.show_browse("orders")
    qtbot.waitUntil(lambda: view.model.rowCount() > 0, timeout=5000)
    view.topic.setCurrentText("no-such-topic")
    view.read()
    qtbot.waitUntil(lambda: view.read_button.isEnabled() and bool(_boxes()), timeout=5000)
    try:
        # before: the 'orders' rows stayed under "no-such-topic" and the subtitle said
        # only "Read failed"
        assert view.model.rowCount() == 0
        assert "no-such-topic" in view.subtitle.text()
        assert "no-such-topic" in view.table.empty_hint.text()
        assert view.table.empty_hint.isVisibleTo(view.table)
        assert any("no-such-topic" in b.windowTitle() for b in _boxes())
    finally:
        for box in _boxes():
            box.close()


class _Code:
    def __init__(self, name: str) -> None:
        self.name = name


class _KafkaLikeError(Exception):
    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = _Code(code)


def test_error_text_names_the_kafka_code_once():
    text = describe_error(_KafkaLikeError(
        "create topic a: TOPIC_ALREADY_EXISTS: Topic 'a' already exists.",
        "topic_already_exists"))
    assert text.count("TOPIC_ALREADY_EXISTS") == 1
    text = describe_error(_KafkaLikeError("Topic 'a' already exists.", "topic_already_exists"))
    assert text.endswith("(Kafka error TOPIC_ALREADY_EXISTS)")


def test_a_slow_produce_reports_its_rate(demo_console, qtbot):
    view = demo_console.window.produce_view
    # one record that took 3.5 s (a topic auto-created on first produce) showed "0 records/s"
    view._done(ProduceReport(requested=1, delivered=1, elapsed_s=3.47, offsets={0: (0, 0)}))
    assert "(0.3 records/s)" in view.report.text()
    view._done(ProduceReport(requested=900, delivered=900, elapsed_s=0.5))
    assert "(1,800 records/s)" in view.report.text()


def test_error_dialog_is_wide_enough_to_read(qtbot):
    from PySide6.QtWidgets import QLabel

    from gui.views.common import show_error

    box = show_error(None, "Could not create topic ux-c", RuntimeError(
        "create topic ux-c: INVALID_REPLICATION_FACTOR: Unable to replicate the partition 3 "
        "time(s): only 2 broker(s) are registered."))
    try:
        qtbot.waitExposed(box)
        label = box.findChild(QLabel, "qt_msgbox_informativelabel")
        # it was ~230 px wide: the broker's message wrapped every two or three words
        assert label.width() >= 400
        assert box.width() >= 440
    finally:
        box.close()


def test_producing_to_a_topic_that_does_not_exist_says_so(demo_console, qtbot):
    view = demo_console.window.produce_view
    calls: list[object] = []
    view.session.produce = lambda spec, *a, **k: calls.append(spec)
    view.topic.setCurrentText("brand-new-topic")
    view.send()
    assert calls
    # before: "Producing 1 record(s) to brand-new-topic…" then a silent multi-second wait
    assert "not an existing topic" in view.report.text()
    view.running = None
    view.topic.setCurrentText("orders")
    view.send()
    assert "not an existing topic" not in view.report.text()
