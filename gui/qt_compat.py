"""Work-arounds for bugs in the installed Qt bindings, applied once when gui is imported.

PySide6 6.12.0 (its abi3 wheel assumes CPython >= 3.12, where None/True/False are immortal)
returns ``None``, ``True`` and ``False`` without taking a reference: every ``signal.emit()``
drops a reference to ``True``, every void method (``QTimer.setInterval``...) one to ``None``.
On CPython 3.11 the console aborts with "Fatal Python error: bool_dealloc" / "none_dealloc"
after a few minutes of live charts. We detect the leak at import time and, only then, give
these singletons a huge reference count (what CPython 3.12 does for immortal objects), so the
leak can never reach zero.
"""

from __future__ import annotations

import ctypes
import sys

_PINNED = 1 << 40
_applied = False


def emit_leaks_bool_refs() -> bool:
    """True when PySide drops references to True (emit) or None (void methods)."""
    from PySide6.QtCore import QObject, Signal

    class _Probe(QObject):
        fired = Signal()

    probe = _Probe()
    before = sys.getrefcount(True), sys.getrefcount(None)
    for _ in range(32):
        probe.fired.emit()
        probe.setObjectName("probe")
    after = sys.getrefcount(True), sys.getrefcount(None)
    return after[0] < before[0] or after[1] < before[1]


def pin_bools() -> None:
    """Raise the reference counts of the singletons far beyond anything a leak can consume."""
    if sys.version_info >= (3, 12):  # already immortal
        return
    for obj in (True, False, None, Ellipsis, NotImplemented):
        refcnt = ctypes.c_ssize_t.from_address(id(obj))
        refcnt.value += _PINNED


def apply() -> bool:
    """Apply the work-arounds needed by this PySide6; returns True if one was applied."""
    global _applied
    if _applied:
        return True
    if emit_leaks_bool_refs():
        pin_bools()
        _applied = True
    return _applied
