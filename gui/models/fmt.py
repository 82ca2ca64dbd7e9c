"""Formatting helpers and status colours shared by the models (pure functions)."""

from __future__ import annotations

from typing import Any

OK = "#2e9d57"
WARN = "#d08a00"
BAD = "#d64545"
MUTED = "#8a8f98"
ACCENT = "#3b82f6"


def count(value: int | None) -> str:
    return "\u2013" if value is None else f"{value:,}"


def nbytes(value: float | None) -> str:
    """1536 -> '1.5 KiB'."""
    if value is None:
        return "\u2013"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024
    return f"{size:,.1f} TiB"


def rate(value: float | None, unit: str = "/s") -> str:
    if value is None:
        return "\u2013"
    if value >= 1e6:
        return f"{value / 1e6:,.2f} M{unit}"
    if value >= 1e4:
        return f"{value / 1e3:,.1f} k{unit}"
    return f"{value:,.1f}{unit}"


def byte_rate(value: float | None) -> str:
    return "\u2013" if value is None else nbytes(value) + "/s"


def percent(value: float | None) -> str:
    return "\u2013" if value is None else f"{value:.1f} %"


def ids(values: tuple[int, ...] | list[int] | None) -> str:
    if not values:
        return "\u2013"
    return ", ".join(str(v) for v in values)


def yes_no(value: Any) -> str:
    return "yes" if value else ""


def lag_color(lag: int | None) -> str | None:
    if lag is None:
        return MUTED
    if lag == 0:
        return OK
    if lag < 1000:
        return WARN
    return BAD


def age(seconds: float | None) -> str:
    """Seconds since something happened -> '0.2 s ago', '12 s ago', '4 min ago', '2.5 h ago'."""
    if seconds is None:
        return "\u2013"
    seconds = max(0.0, seconds)
    if seconds < 10:
        return f"{seconds:.1f} s ago"
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"
