"""The kaflab console (PySide6 + pyqtgraph). See gui/app.py for the entry point."""

from gui import qt_compat as _qt_compat

_qt_compat.apply()
