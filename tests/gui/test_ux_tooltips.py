"""Every button and check box on every page says what it does (a tooltip)."""

from __future__ import annotations

from PySide6.QtWidgets import QAbstractButton


def test_every_page_button_has_a_tooltip(demo_console):
    w = demo_console.window
    missing = []
    for title, page in zip(w.page_titles, w.pages, strict=True):
        for b in page.findChildren(QAbstractButton):
            if b.text() and not b.toolTip():
                missing.append(f"{title}: {b.text()!r}")
    assert missing == []
