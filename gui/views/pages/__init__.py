"""Extra console pages, discovered at start-up.

Each module here defines `PAGE = PageSpec(title, icon, order, factory)`; `factory(session)`
returns a QWidget with `on_snapshot(snapshot)` (and optionally `set_capabilities(caps)`).
The main window adds them to the sidebar after the built-in pages, sorted by `order`, so a
new panel is one new file and touches nothing shared.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PageSpec:
    title: str
    icon: str
    order: int
    factory: Callable[[Any], Any]


def discover() -> list[PageSpec]:
    """Every PageSpec in this package, by order then title; a broken module is skipped."""
    specs: list[PageSpec] = []
    for info in pkgutil.iter_modules(__path__):
        try:
            module = importlib.import_module(f"{__name__}.{info.name}")
        except Exception:
            log.exception("console page %s failed to import", info.name)
            continue
        spec = getattr(module, "PAGE", None)
        if isinstance(spec, PageSpec):
            specs.append(spec)
    return sorted(specs, key=lambda s: (s.order, s.title))
