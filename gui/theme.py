"""Light and dark themes: resources/themes/base.qss with each theme's @tokens substituted."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

RESOURCES = Path(__file__).resolve().parent.parent / "resources"
THEMES_DIR = RESOURCES / "themes"
ICONS_DIR = RESOURCES / "icons"
THEMES = ("light", "dark")


def load_tokens(name: str) -> dict[str, str]:
    """The colour tokens of theme ``name`` (``key=#rrggbb`` lines)."""
    tokens: dict[str, str] = {}
    for line in (THEMES_DIR / f"{name}.tokens").read_text(encoding="utf-8").splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() and not key.startswith("#"):
            tokens[key.strip()] = value.strip()
    return tokens


def stylesheet(name: str) -> str:
    """base.qss with ``@token`` replaced by theme ``name``'s colours (and ``@icons`` by the
    icons folder)."""
    text = (THEMES_DIR / "base.qss").read_text(encoding="utf-8")
    text = text.replace("@icons", ICONS_DIR.as_posix())  # url(@icons/x.svg): our own images
    tokens = load_tokens(name)
    for key in sorted(tokens, key=len, reverse=True):  # @accent_hover before @accent
        text = text.replace("@" + key, tokens[key])
    return text


def palette(tokens: dict[str, str]) -> QPalette:
    pal = QPalette()
    role = QPalette.ColorRole
    pal.setColor(role.Window, QColor(tokens["window"]))
    pal.setColor(role.WindowText, QColor(tokens["text"]))
    pal.setColor(role.Base, QColor(tokens["panel"]))
    pal.setColor(role.AlternateBase, QColor(tokens["alt"]))
    pal.setColor(role.Text, QColor(tokens["text"]))
    pal.setColor(role.Button, QColor(tokens["button"]))
    pal.setColor(role.ButtonText, QColor(tokens["text"]))
    pal.setColor(role.Highlight, QColor(tokens["selection"]))
    pal.setColor(role.HighlightedText, QColor(tokens["text"]))
    pal.setColor(role.ToolTipBase, QColor(tokens["panel"]))
    pal.setColor(role.ToolTipText, QColor(tokens["text"]))
    pal.setColor(role.PlaceholderText, QColor(tokens["muted"]))
    pal.setColor(role.Link, QColor(tokens["accent"]))
    for r in (role.WindowText, role.Text, role.ButtonText):
        pal.setColor(QPalette.ColorGroup.Disabled, r, QColor(tokens["disabled"]))
    return pal


class ThemeManager(QObject):
    """Applies a theme to the application and tells charts when it changes."""

    changed = Signal(str)

    def __init__(self, app: QApplication, name: str = "light") -> None:
        super().__init__()
        self.app = app
        self.name = name if name in THEMES else "light"
        self.tokens: dict[str, str] = {}

    def apply(self, name: str | None = None) -> None:
        if name is not None:
            self.name = name if name in THEMES else "light"
        self.tokens = load_tokens(self.name)
        self.app.setStyle("Fusion")
        self.app.setPalette(palette(self.tokens))
        self.app.setStyleSheet(stylesheet(self.name))
        self.changed.emit(self.name)

    def toggle(self) -> None:
        self.apply("dark" if self.name == "light" else "light")
