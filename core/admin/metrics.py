"""Prometheus text metrics of brokers: fetching, parsing and rates (pure except `scrape`).

Names follow the JMX-exporter style used by our brokers and by common Apache Kafka setups:
``kafka_server_brokertopicmetrics_{bytesin,bytesout,messagesin}[_total]{topic=...}``,
``kafka_server_replica_lag{topic,partition,replica}``, ``kafka_log_log_logendoffset{topic,
partition}``, ``kafka_log_log_size{topic,partition}``.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import Hashable
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

__all__ = ["BrokerMetrics", "RateTracker", "parse_metrics", "scrape"]

BYTES_IN = "kafka_server_brokertopicmetrics_bytesin"
BYTES_OUT = "kafka_server_brokertopicmetrics_bytesout"
MESSAGES_IN = "kafka_server_brokertopicmetrics_messagesin"
REPLICA_LAG = "kafka_server_replica_lag"
LOG_END_OFFSET = "kafka_log_log_logendoffset"
LOG_SIZE = "kafka_log_log_size"
_COUNTERS = {BYTES_IN: "bytes_in", BYTES_OUT: "bytes_out", MESSAGES_IN: "messages_in"}


@dataclass(slots=True)
class BrokerMetrics:
    """What the poller uses from one broker's /metrics."""

    #: counter name ("bytes_in"|"bytes_out"|"messages_in") -> topic ("" = no topic label) -> value
    topic_counters: dict[str, dict[str, float]] = field(default_factory=dict)
    #: (topic, partition) -> {replica id: records behind}
    replica_lag: dict[tuple[str, int], dict[int, int]] = field(default_factory=dict)
    log_end_offset: dict[tuple[str, int], int] = field(default_factory=dict)
    log_size: dict[tuple[str, int], int] = field(default_factory=dict)
    #: every sample: name -> [(labels, value)]
    samples: dict[str, list[tuple[dict[str, str], float]]] = field(default_factory=dict)

    def counter_total(self, counter: str) -> float | None:
        """Broker-wide counter (sum over topics; the unlabeled sample if that is all)."""
        values = self.topic_counters.get(counter)
        if not values:
            return None
        per_topic = {t: v for t, v in values.items() if t}
        return sum(per_topic.values()) if per_topic else values.get("", 0.0)


def _base_name(name: str) -> str:
    for suffix in ("_total", "_created"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def parse_metrics(text: str) -> BrokerMetrics:
    """Parse Prometheus text exposition into BrokerMetrics (raises ValueError if malformed)."""
    out = BrokerMetrics()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            name = _base_name(sample.name)
            labels = dict(sample.labels)
            value = float(sample.value)
            out.samples.setdefault(name, []).append((labels, value))
            counter = _COUNTERS.get(name)
            if counter is not None:
                per = out.topic_counters.setdefault(counter, {})
                topic = labels.get("topic", "")
                per[topic] = per.get(topic, 0.0) + value
                continue
            if "topic" not in labels or "partition" not in labels:
                continue
            try:
                tp = (labels["topic"], int(labels["partition"]))
            except ValueError:
                continue
            if name == REPLICA_LAG and "replica" in labels:
                try:
                    out.replica_lag.setdefault(tp, {})[int(labels["replica"])] = int(value)
                except ValueError:
                    pass
            elif name == LOG_END_OFFSET:
                out.log_end_offset[tp] = int(value)
            elif name == LOG_SIZE:
                out.log_size[tp] = int(value)
    return out


class RateTracker:
    """Per-second rates of monotonically increasing counters between successive ticks.

    `update(key, value, now)` returns the rate since the previous value of `key`, or None on
    the first sighting, when time did not advance, or after a counter reset (value went down,
    e.g. a broker restart). Keys not updated in a tick can be dropped with `retain`.
    """

    def __init__(self) -> None:
        self._last: dict[Hashable, tuple[float, float]] = {}

    def update(self, key: Hashable, value: float, now: float) -> float | None:
        prev = self._last.get(key)
        self._last[key] = (now, value)
        if prev is None:
            return None
        t0, v0 = prev
        dt = now - t0
        if dt <= 0 or value < v0:
            return None
        return (value - v0) / dt

    def retain(self, keys: set[Hashable]) -> None:
        for key in list(self._last):
            if key not in keys:
                del self._last[key]

    def __len__(self) -> int:
        return len(self._last)


async def scrape(url: str, timeout: float = 2.0, max_bytes: int = 64 * 1024 * 1024) -> str:
    """HTTP GET of a metrics URL (plain http, no dependencies) -> body text."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http":
        raise ValueError(f"only http:// metrics URLs are supported: {url}")
    host = parts.hostname or "127.0.0.1"
    port = parts.port or 80
    path = parts.path or "/metrics"
    if parts.query:
        path += "?" + parts.query

    async def get() -> str:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(f"GET {path} HTTP/1.0\r\nHost: {host}:{port}\r\n"
                         "Accept: text/plain\r\nConnection: close\r\n\r\n".encode())
            data = await reader.read(max_bytes)
            while True:
                chunk = await reader.read(max_bytes)
                if not chunk:
                    break
                data += chunk
                if len(data) > max_bytes:
                    raise ValueError(f"{url}: response too large")
        finally:
            writer.close()
        head, _, body = data.partition(b"\r\n\r\n")
        status = head.split(b"\r\n", 1)[0].split()
        if len(status) < 2 or status[1] != b"200":
            raise ValueError(f"{url}: HTTP {status[1:2]!r}")
        if b"transfer-encoding: chunked" in head.lower():
            body = _dechunk(body)
        return body.decode("utf-8", "replace")

    return await asyncio.wait_for(get(), timeout)


def _dechunk(body: bytes) -> bytes:
    out = bytearray()
    pos = 0
    while pos < len(body):
        line_end = body.index(b"\r\n", pos)
        size = int(body[pos:line_end].split(b";")[0], 16)
        if size == 0:
            break
        out += body[line_end + 2: line_end + 2 + size]
        pos = line_end + 2 + size + 2
    return bytes(out)
