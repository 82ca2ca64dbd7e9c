"""Destructive or cluster-wide actions ask first, like Delete topic and Kill -9 do."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QMessageBox


def _data_page(console):
    w = console.window
    return next(p for p in w.pages if type(p).__name__ == "DataPage")


@pytest.mark.parametrize("button, method, words", [
    ("sn_restore", "snapshot_restore", "replace the cluster's data"),
    ("de_button", "decommission", "every replica off broker"),
    ("rr_button", "rolling_restart", "Restart every broker"),
])
def test_data_page_asks_before_acting(demo_console, monkeypatch, button, method, words):
    page = _data_page(demo_console)
    ran: list[str] = []
    monkeypatch.setattr(page, method, lambda: ran.append(method))
    asked: list[str] = []
    reply = [QMessageBox.StandardButton.Cancel]
    monkeypatch.setattr(QMessageBox, "warning",
                        lambda _p, _t, text, *a, **k: asked.append(text) or reply[0])
    # the buttons are wired to lambdas that look the method up when clicked
    getattr(page, button).setEnabled(True)
    getattr(page, button).click()
    assert asked and words in asked[0]
    assert ran == []  # before: the snapshot restore stopped every broker without a word
    reply[0] = QMessageBox.StandardButton.Yes
    getattr(page, button).click()
    assert ran == [method]
