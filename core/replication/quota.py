"""Replication throttles (KIP-73): a bytes/s bound measured the way Kafka's quotas measure it.

Each broker has two: the leader quota (bytes it returns to followers' fetches for throttled
replicas) and the follower quota (bytes its fetchers pull for throttled replicas). Which
partitions are throttled comes from the topic configs `leader.replication.throttled.replicas`
and `follower.replication.throttled.replicas` ("partitionId:brokerId,..." or "*"), keeping the
entries for this broker, as Kafka's TopicConfigHandler does; the bounds come from the dynamic
broker configs `leader.replication.throttled.rate` / `follower.replication.throttled.rate`.

Callers skip a throttled partition only while its replica is out of sync and the quota is
exceeded (Kafka's shouldLeaderThrottle / shouldFollowerThrottle), so in-sync replication, and
with it the high watermark, is never held back; they record every byte moved for a throttled
partition, in sync or not.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from core.common.config import LONG_MAX
from core.common.types import TopicPartition

#: every partition of the topic is throttled ("*")
ALL_REPLICAS = "*"


class SampledRate:
    """Kafka's `Rate` over a `SampledStat`: `samples` windows of `window_s` seconds each.

    The rate is the bytes of the live windows divided by the time they span, never by less
    than `samples - 1` windows, so a quiet start does not read as a huge rate and a burst is
    allowed up to about (samples - 1) * window_s seconds' worth of the bound.
    """

    def __init__(self, samples: int = 11, window_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if samples < 1 or window_s <= 0:
            raise ValueError("samples must be >= 1 and window_s > 0")
        self.samples = samples
        self.window_s = window_s
        self._clock = clock
        self._windows: deque[list[float]] = deque()  # [start, bytes], oldest first

    def record(self, value: float) -> None:
        """Add `value` (bytes) to the current window, starting a new one when it is full."""
        now = self._clock()
        self._purge(now)
        if not self._windows or now - self._windows[-1][0] >= self.window_s:
            self._windows.append([now, 0.0])
        self._windows[-1][1] += value

    def measure(self, later_s: float = 0.0) -> float:
        """Bytes per second over the retained windows (0 before anything was recorded);
        with `later_s`, what it will read that many seconds from now if nothing is added."""
        now = self._clock()
        self._purge(now)
        at = now + later_s
        windows = [w for w in self._windows if w[0] >= at - self.samples * self.window_s]
        if not windows:
            return 0.0
        return sum(w[1] for w in windows) / self._elapsed(at, windows[0][0])

    def _elapsed(self, now: float, oldest: float) -> float:
        elapsed = now - oldest
        full = int(elapsed / self.window_s)
        if full < self.samples - 1:
            elapsed += (self.samples - 1 - full) * self.window_s
        return max(elapsed, 0.001)

    def _purge(self, now: float) -> None:
        horizon = now - self.samples * self.window_s
        while self._windows and self._windows[0][0] < horizon:
            self._windows.popleft()


def parse_throttled_replicas(items: Iterable[str], node_id: int) -> frozenset[int] | str:
    """The partitions `node_id` throttles for a `*.replication.throttled.replicas` value
    (already validated): ALL_REPLICAS for "*", else the partition ids listed with this broker."""
    items = [i.strip() for i in items if i.strip()]
    if items == [ALL_REPLICAS]:
        return ALL_REPLICAS
    partitions = set()
    for item in items:
        partition, _, broker = item.partition(":")
        if int(broker) == node_id:
            partitions.add(int(partition))
    return frozenset(partitions)


class ReplicationQuota:
    """One side's throttle (Kafka's ReplicationQuotaManager): throttled partitions, a bound
    in bytes/s (unlimited by default) and the measured rate of throttled bytes."""

    def __init__(self, side: str, node_id: int, *, samples: int = 11, window_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.side = side  # "leader" or "follower"
        self.node_id = node_id
        self.bound = math.inf
        self.bytes_total = 0
        self._rate = SampledRate(samples, window_s, clock)
        self._throttled: dict[str, frozenset[int] | str] = {}

    def set_bound(self, bytes_per_s: int) -> None:
        """The `*.replication.throttled.rate` value (Long.MAX_VALUE: unlimited)."""
        self.bound = math.inf if bytes_per_s >= LONG_MAX else float(bytes_per_s)

    def update_topic(self, topic: str, items: Iterable[str]) -> None:
        """Apply a topic's `*.replication.throttled.replicas` list (empty: no throttle)."""
        try:
            throttled = parse_throttled_replicas(items, self.node_id)
        except ValueError:  # validated when set; a damaged value throttles nothing
            throttled = frozenset()
        if throttled:
            self._throttled[topic] = throttled
        else:
            self._throttled.pop(topic, None)

    def remove_topic(self, topic: str) -> None:
        self._throttled.pop(topic, None)

    def is_throttled(self, tp: TopicPartition) -> bool:
        """Whether `tp` is in this side's throttled set (whatever the current rate)."""
        partitions = self._throttled.get(tp.topic)
        if partitions is None:
            return False
        return partitions == ALL_REPLICAS or tp.partition in partitions

    def is_quota_exceeded(self) -> bool:
        """True while the measured rate of throttled bytes is above the bound."""
        return self.bound != math.inf and self._rate.measure() > self.bound

    def record(self, nbytes: int) -> None:
        """Count bytes moved for a throttled partition."""
        if nbytes:
            self.bytes_total += nbytes
            self._rate.record(nbytes)

    def delay_s(self, max_s: float, step_s: float = 0.05) -> float:
        """How long until the quota is no longer exceeded (at most `max_s`), if nothing more
        is recorded: a throttled fetcher waits this long instead of a fixed back-off."""
        if self.bound == math.inf:
            return 0.0
        delay = 0.0
        while delay < max_s and self._rate.measure(delay) > self.bound:
            delay += step_s
        return min(delay, max_s)

    def byte_rate(self) -> float:
        """Measured bytes/s of throttled replication (Kafka's `byte-rate` of this quota)."""
        return self._rate.measure()

    @property
    def throttled_topics(self) -> Mapping[str, Any]:
        return dict(self._throttled)


class ReplicationQuotas:
    """The leader and follower throttles of one broker."""

    def __init__(self, node_id: int, *, samples: int = 11, window_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.leader = ReplicationQuota("leader", node_id, samples=samples,
                                       window_s=window_s, clock=clock)
        self.follower = ReplicationQuota("follower", node_id, samples=samples,
                                         window_s=window_s, clock=clock)

    def apply_rates(self, config: Any) -> None:
        """Take the bounds from an (effective) BrokerConfig."""
        self.leader.set_bound(config["leader.replication.throttled.rate"])
        self.follower.set_bound(config["follower.replication.throttled.rate"])

    def apply_topic(self, topic: str, configs: Mapping[str, str]) -> None:
        """Take a topic's throttled replica lists from its config overrides."""
        for quota in (self.leader, self.follower):
            raw = configs.get(f"{quota.side}.replication.throttled.replicas", "")
            quota.update_topic(topic, raw.split(","))

    def remove_topic(self, topic: str) -> None:
        self.leader.remove_topic(topic)
        self.follower.remove_topic(topic)

    def __iter__(self):  # leader, follower
        return iter((self.leader, self.follower))
