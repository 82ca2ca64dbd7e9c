"""kcat (librdkafka's command-line client) listing metadata, producing and consuming."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

KCAT = shutil.which("kcat") or shutil.which("kafkacat")

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(KCAT is None, reason="kcat binary not installed (apt-get install kcat)"),
]


def kcat(*args: str, stdin: bytes | None = None, timeout: float = 30) -> str:
    assert KCAT is not None
    done = subprocess.run([KCAT, *args], input=stdin, capture_output=True, timeout=timeout,
                          check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout.decode()


@pytest.fixture(scope="module")
def topic(kafka_broker) -> str:
    name = f"kc-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": kafka_broker.bootstrap})
    admin.create_topics([NewTopic(name, 2, 1)])[name].result(15)
    producer = Producer({"bootstrap.servers": kafka_broker.bootstrap})
    for i in range(10):
        producer.produce(name, key=f"k{i}".encode(), value=f"v{i}".encode(), partition=i % 2)
    assert producer.flush(15) == 0
    return name


def test_list_metadata(kafka_broker, topic):
    out = kcat("-b", kafka_broker.bootstrap, "-L", "-J", "-t", topic)
    metadata = json.loads(out)
    assert [b["id"] for b in metadata["brokers"]] == [1]
    assert metadata["brokers"][0]["name"] == f"127.0.0.1:{kafka_broker.port}"
    [t] = metadata["topics"]
    assert t["topic"] == topic
    assert sorted(p["partition"] for p in t["partitions"]) == [0, 1]
    assert all(p["leader"] == 1 for p in t["partitions"])
    text = kcat("-b", kafka_broker.bootstrap, "-L")
    assert f'topic "{topic}" with 2 partitions' in text


def test_consume_to_end(kafka_broker, topic):
    out = kcat("-b", kafka_broker.bootstrap, "-C", "-t", topic, "-e", "-q",
               "-f", "%p %o %k %s\n")
    lines = sorted(out.splitlines())
    assert len(lines) == 10
    assert "0 0 k0 v0" in lines and "1 4 k9 v9" in lines


def test_produce_then_consume_one_partition(kafka_broker, topic):
    kcat("-b", kafka_broker.bootstrap, "-P", "-t", topic, "-p", "1", "-K", ":",
         stdin=b"a:alpha\nb:beta\n")
    out = kcat("-b", kafka_broker.bootstrap, "-C", "-t", topic, "-p", "1", "-o", "5", "-e",
               "-q", "-f", "%o %k %s\n")
    assert out.splitlines() == ["5 a alpha", "6 b beta"]
    offsets = kcat("-b", kafka_broker.bootstrap, "-Q", "-t", f"{topic}:1:-1")
    assert "offset 7" in offsets
