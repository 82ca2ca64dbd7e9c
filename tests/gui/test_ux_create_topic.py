"""Create topic: what the dialog says before the broker refuses."""

from __future__ import annotations


def test_dialog_warns_when_the_replication_factor_exceeds_the_online_brokers(demo_console,
                                                                              qtbot):
    view = demo_console.window.topics_view
    demo_console.session.backend.cluster.broker_action("kill", 3)
    qtbot.waitUntil(lambda: any(b.id == 3 and b.state not in ("online", "running")
                                for b in view.snapshot.brokers), timeout=5000)
    dialog = view.create_dialog()
    qtbot.addWidget(dialog)
    dialog.name.setText("ux-rf")
    dialog.rf.setValue(3)
    # before: nothing until the broker's INVALID_REPLICATION_FACTOR after Create
    assert not dialog.warning.isHidden()
    assert "2 of 3 brokers" in dialog.warning.text()
    assert dialog.ok.isEnabled()  # the broker decides; a warning, not a block
    dialog.rf.setValue(2)
    assert dialog.warning.isHidden()


def test_no_warning_with_every_broker_online(demo_console, qtbot):
    dialog = demo_console.window.topics_view.create_dialog()
    qtbot.addWidget(dialog)
    dialog.name.setText("ux-rf")
    dialog.rf.setValue(3)
    assert dialog.warning.isHidden()
