"""Reset offsets dialog: a typo in the partitions is an inline error, not a traceback."""

from __future__ import annotations

from gui.views.dialogs import ResetOffsetsDialog


def test_bad_partitions_are_refused_in_the_dialog(qtbot):
    dialog = ResetOffsetsDialog(None, "order-service", ["orders", "payments"])
    qtbot.addWidget(dialog)
    assert dialog.ok.isEnabled()
    # before: accepted, then int('x') raised in the slot (a traceback on stderr, no reset,
    # nothing said to the user)
    dialog.partitions.setText("0,x")
    assert not dialog.ok.isEnabled()
    assert "'x' is not a partition number" in dialog.error.text()
    dialog.partitions.setText("0, 2 ,4")
    assert dialog.ok.isEnabled() and dialog.error.text() == ""
    assert dialog.values()[1] == [0, 2, 4]
    dialog.partitions.setText("all")
    assert dialog.values()[1] is None
    dialog.topic.setCurrentText("")
    assert not dialog.ok.isEnabled()
