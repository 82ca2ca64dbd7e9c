"""Spin box arrows and check box indicators are visible in both themes.

The stylesheet gives spin boxes and check boxes a border, which turns off Fusion's own drawing
of their arrows and indicator outline; base.qss draws them with resources/icons. Each check
grabs the widget and looks at the pixels where the part is drawn.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QApplication, QCheckBox, QSpinBox, QStyle, QStyleOptionSpinBox

from gui.theme import THEMES, ThemeManager, stylesheet


@pytest.fixture
def themes(qapp: QApplication):
    manager = ThemeManager(qapp)
    yield manager
    qapp.setStyleSheet("")


def colours_in(image, rect) -> set[int]:
    return {image.pixel(x, y) for x in range(rect.left(), rect.right() + 1)
            for y in range(rect.top(), rect.bottom() + 1)}


def contrast(a: QColor, b: QColor) -> float:
    def luminance(c: QColor) -> float:
        def channel(v: float) -> float:
            return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4
        return (0.2126 * channel(c.redF()) + 0.7152 * channel(c.greenF())
                + 0.0722 * channel(c.blueF()))
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


@pytest.mark.parametrize("theme", THEMES)
def test_spin_box_arrows_are_drawn(qtbot, themes, theme: str) -> None:
    themes.apply(theme)
    spin = QSpinBox()
    spin.setRange(0, 1000)
    spin.setValue(100)
    qtbot.addWidget(spin)
    spin.resize(120, 32)
    spin.show()
    qtbot.waitExposed(spin)
    image = spin.grab().toImage()
    option = QStyleOptionSpinBox()
    spin.initStyleOption(option)
    for control in (QStyle.SubControl.SC_SpinBoxUp, QStyle.SubControl.SC_SpinBoxDown):
        rect = spin.style().subControlRect(QStyle.ComplexControl.CC_SpinBox, option, control,
                                           spin)
        assert rect.width() > 6 and rect.height() > 4, (control, rect)
        inner = rect.adjusted(3, 2, -3, -2)
        # an arrow: more than the button's background and border colours inside its button
        assert len(colours_in(image, inner)) >= 3, (theme, control, rect)


@pytest.mark.parametrize("theme", THEMES)
def test_unchecked_check_box_outline_stands_out(qtbot, themes, theme: str) -> None:
    themes.apply(theme)
    box = QCheckBox("Live tail")
    qtbot.addWidget(box)
    box.show()
    qtbot.waitExposed(box)
    image = box.grab().toImage()
    background = QColor(themes.tokens["window"])
    # the indicator sits at the left, vertically centred: its left edge is its outline
    middle = image.height() // 2
    row = [QColor(image.pixel(x, middle)) for x in range(0, min(12, image.width()))]
    best = max(contrast(c, background) for c in row)
    assert best >= 2.5, (theme, best)


def test_every_image_the_stylesheet_names_exists() -> None:
    for theme in THEMES:
        urls = re.findall(r"url\(([^)]+)\)", stylesheet(theme))
        assert urls, "the stylesheet names no images"
        missing = [u for u in urls if not Path(u).is_file()]
        assert not missing, missing
