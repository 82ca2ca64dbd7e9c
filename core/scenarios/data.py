"""Seeded record data for scenarios: templates and small sample generators.

Templates expand ``{counter}``, ``{random}`` (0..2^31-1), ``{random:N}`` (0..N-1),
``{timestamp}`` (ms now), and the sample generators ``{orders}``, ``{clicks}``, ``{sensors}``
(a JSON object each). Everything random comes from one ``random.Random`` per producer seeded
from the scenario seed, consumed in record order, so the same seed gives the same keys and
values (timestamps aside).
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable

PRODUCTS = ("keyboard", "mouse", "monitor", "laptop", "headset", "webcam", "dock", "cable",
            "chair", "desk", "lamp", "speaker")
CITIES = ("Lisbon", "Oslo", "Lyon", "Turin", "Gdansk", "Porto", "Leeds", "Graz", "Ghent",
          "Cork")
PAGES = ("/", "/search", "/product", "/cart", "/checkout", "/account", "/help", "/deals")
DEVICES = ("mobile", "desktop", "tablet")

_FIELD = re.compile(r"\{(counter|random|timestamp|orders|clicks|sensors)(?::(\d+))?\}")


def order(rng: random.Random, counter: int, now_ms: int) -> dict[str, object]:
    quantity = rng.randint(1, 5)
    price = rng.randint(5, 900)
    return {"order_id": counter, "customer": f"customer-{rng.randrange(1000)}",
            "product": rng.choice(PRODUCTS), "quantity": quantity,
            "amount": round(quantity * price * 1.0, 2), "city": rng.choice(CITIES),
            "ts": now_ms}


def click(rng: random.Random, counter: int, now_ms: int) -> dict[str, object]:
    return {"click_id": counter, "user": f"user-{rng.randrange(5000)}",
            "page": rng.choice(PAGES), "device": rng.choice(DEVICES),
            "dwell_ms": rng.randint(50, 30000), "ts": now_ms}


def sensor(rng: random.Random, counter: int, now_ms: int) -> dict[str, object]:
    return {"reading": counter, "sensor": f"s-{rng.randrange(64)}",
            "celsius": round(rng.gauss(21.0, 4.0), 2), "ts": now_ms}


GENERATORS: dict[str, Callable[[random.Random, int, int], dict[str, object]]] = {
    "orders": order, "clicks": click, "sensors": sensor}


class RecordTemplate:
    """Renders key/value templates for record ``counter`` with a seeded rng."""

    def __init__(self, key: str, value: str, seed: int | str) -> None:
        self.key = key
        self.value = value
        self.rng = random.Random(str(seed))

    def _render(self, template: str, counter: int, now_ms: int) -> str:
        if "{" not in template:
            return template

        def field(m: re.Match[str]) -> str:
            name, arg = m.group(1), m.group(2)
            if name == "counter":
                return str(counter)
            if name == "timestamp":
                return str(now_ms)
            if name == "random":
                return str(self.rng.randrange(int(arg)) if arg else self.rng.randint(0, 2**31 - 1))
            return json.dumps(GENERATORS[name](self.rng, counter, now_ms), separators=(",", ":"))

        return _FIELD.sub(field, template)

    def render(self, counter: int, now_ms: int | None = None) -> tuple[bytes | None, bytes]:
        """(key or None, value) of record ``counter``; the key is rendered first."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        key = self._render(self.key, counter, now_ms).encode() if self.key else None
        return key, self._render(self.value, counter, now_ms).encode()
