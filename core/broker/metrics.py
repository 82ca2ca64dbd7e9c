"""Prometheus metrics of one broker, named after Kafka's JMX metrics.

Counters are updated on the request path from batch headers only (record counts come from the
batch header, never from iterating records). Gauges about partitions are computed at scrape time
by a collector, so the hot path pays nothing for them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector


class BrokerMetrics:
    """The broker's metric registry and the handles the request path updates."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.messages_in = Counter(
            "kafka_server_brokertopicmetrics_messagesin", "Records appended, per topic",
            ["topic"], registry=r)
        self.bytes_in = Counter(
            "kafka_server_brokertopicmetrics_bytesin", "Bytes appended, per topic",
            ["topic"], registry=r)
        self.bytes_out = Counter(
            "kafka_server_brokertopicmetrics_bytesout", "Bytes fetched, per topic",
            ["topic"], registry=r)
        self.messages_out = Counter(
            "kafka_server_brokertopicmetrics_messagesout", "Records fetched (from batch headers)",
            ["topic"], registry=r)
        self.failed_produce = Counter(
            "kafka_server_brokertopicmetrics_failedproducerequests", "Failed produce requests",
            ["topic"], registry=r)
        self.requests = Counter(
            "kafka_network_requestmetrics_requests", "Requests, per API", ["request"],
            registry=r)
        self.request_latency = Histogram(
            "kafka_network_requestmetrics_totaltimems", "Request time in ms, per API",
            ["request"], registry=r,
            buckets=(0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000, 30000))
        self.isr_shrinks = Counter("kafka_server_replicamanager_isrshrinks", "ISR shrinks",
                                   registry=r)
        self.isr_expands = Counter("kafka_server_replicamanager_isrexpands", "ISR expands",
                                   registry=r)
        self._bytes_in_handles: dict[str, tuple[Any, Any]] = {}

    def record_produce(self, topic: str, records: int, size: int) -> None:
        handles = self._bytes_in_handles.get(topic)
        if handles is None:
            handles = (self.messages_in.labels(topic), self.bytes_in.labels(topic))
            self._bytes_in_handles[topic] = handles
        handles[0].inc(records)
        handles[1].inc(size)

    def add_collector(self, collector: Collector) -> None:
        self.registry.register(collector)

    def serve(self, port: int, host: str = "127.0.0.1") -> int:
        """Serve /metrics over HTTP on (host, port); returns the bound port."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return server.server_port


class StateCollector(Collector):
    """Gauges read from the broker's state at scrape time."""

    def __init__(self, snapshot: Callable[[], dict[str, Any]]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[GaugeMetricFamily]:
        state = self._snapshot()
        yield GaugeMetricFamily("kafka_controller_kafkacontroller_activecontrollercount",
                                "1 on the active controller", value=state["active_controller"])
        yield GaugeMetricFamily("kafka_server_replicamanager_underreplicatedpartitions",
                                "Led partitions whose ISR is smaller than their replicas",
                                value=state["under_replicated"])
        yield GaugeMetricFamily("kafka_server_replicamanager_partitioncount",
                                "Partitions hosted", value=state["partition_count"])
        yield GaugeMetricFamily("kafka_server_replicamanager_leadercount",
                                "Partitions led", value=state["leader_count"])
        yield GaugeMetricFamily("kafka_controller_kafkacontroller_offlinepartitionscount",
                                "Partitions without a leader (controller view)",
                                value=state["offline_partitions"])
        leo = GaugeMetricFamily("kafka_log_log_logendoffset", "Log end offset",
                                labels=["topic", "partition"])
        start = GaugeMetricFamily("kafka_log_log_logstartoffset", "Log start offset",
                                  labels=["topic", "partition"])
        size = GaugeMetricFamily("kafka_log_log_size", "Log size in bytes",
                                 labels=["topic", "partition"])
        hw = GaugeMetricFamily("kafka_cluster_partition_highwatermark", "High watermark",
                               labels=["topic", "partition"])
        lag = GaugeMetricFamily("kafka_server_replica_lag",
                                "Records a follower is behind the leader (leader's view)",
                                labels=["topic", "partition", "replica"])
        for p in state["partitions"]:
            labels = [p["topic"], str(p["partition"])]
            leo.add_metric(labels, p["log_end_offset"])
            start.add_metric(labels, p["log_start_offset"])
            size.add_metric(labels, p["size"])
            hw.add_metric(labels, p["high_watermark"])
            for replica, behind in p.get("replica_lag", {}).items():
                lag.add_metric([*labels, str(replica)], behind)
        yield from (leo, start, size, hw, lag)


class ReplicationQuotaCollector(Collector):
    """The replication throttles (KIP-73) at scrape time, after Kafka's
    `kafka.server:type=LeaderReplication|FollowerReplication,name=byte-rate`: the measured
    bytes/s of throttled replication, the bound (+Inf when unlimited) and a byte counter."""

    def __init__(self, quotas: Iterable[Any]) -> None:
        self._quotas = quotas

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        rate = GaugeMetricFamily(
            "kafka_server_replication_throttled_byte_rate",
            "Bytes/s of throttled replication, measured over the quota window", labels=["side"])
        bound = GaugeMetricFamily(
            "kafka_server_replication_throttled_rate_limit",
            "leader/follower.replication.throttled.rate in effect (bytes/s)", labels=["side"])
        total = CounterMetricFamily(
            "kafka_server_replication_throttled_bytes",
            "Bytes replicated for throttled partitions", labels=["side"])
        for quota in self._quotas:
            rate.add_metric([quota.side], quota.byte_rate())
            bound.add_metric([quota.side], quota.bound)
            total.add_metric([quota.side], quota.bytes_total)
        yield from (rate, bound, total)
