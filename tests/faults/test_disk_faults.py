"""Disk faults on a stopped broker, and a full disk under a running one.

Each tampering test writes acknowledged records over several closed segments, stops the broker,
damages one file, restarts it and reads everything back with a CRC-checking consumer. The rule:
a record is either served correctly or the client gets a clear error; wrong bytes are never
served as good data, and nothing acknowledged silently disappears.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from tests.fixtures import BrokerProcess

pytestmark = pytest.mark.timeout(180)

TOPIC = "disk"
RECORDS = 600
PAD = b"x" * 200


def value(i: int) -> bytes:
    return b"v%06d:" % i + PAD


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[BrokerProcess]:
    b = BrokerProcess(tmp_path / "b", overrides={"auto.create.topics.enable": "false"})
    b.start()
    try:
        yield b
    finally:
        b.stop()


def create_topic(bootstrap: str, topic: str = TOPIC, **config: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1, config=config)])[topic].result(20)


def produce(bootstrap: str, start: int, count: int, topic: str = TOPIC) -> list[int]:
    """Produce value(start..start+count-1) with an idempotent acks=all producer; acked ids."""
    acked: list[int] = []
    errors: list[KafkaError] = []

    def on_delivery(err: KafkaError | None, msg) -> None:
        if err is None:
            acked.append(int(msg.value()[1:7]))
        else:
            errors.append(err)

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all",
                         "enable.idempotence": True, "linger.ms": 2, "batch.size": 2000,
                         "message.timeout.ms": 20000})
    for i in range(start, start + count):
        producer.produce(topic, value(i), partition=0, on_delivery=on_delivery)
        producer.poll(0)
    assert producer.flush(30) == 0
    assert not errors, errors[:3]
    return acked


def read_back(bootstrap: str, expect: int, topic: str = TOPIC, timeout: float = 20.0,
              check_crcs: bool = True) -> tuple[list[tuple[int, bytes]], list[KafkaError]]:
    """(offset, value) pairs and the errors a consumer got, reading from 0."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "disk-check",
                         "enable.auto.commit": False, "check.crcs": check_crcs,
                         "max.partition.fetch.bytes": 16384})
    consumer.assign([TopicPartition(topic, 0, 0)])
    got: list[tuple[int, bytes]] = []
    errors: list[KafkaError] = []
    deadline = time.monotonic() + timeout
    try:
        while len(got) < expect and time.monotonic() < deadline:
            try:
                msg = consumer.poll(0.5)
            except KafkaException as exc:
                errors.append(exc.args[0])
                continue
            if msg is None:
                continue
            if msg.error():
                errors.append(msg.error())
                if len(errors) > 20:
                    break
                continue
            got.append((msg.offset(), msg.value()))
    finally:
        consumer.close()
    return got, errors


def assert_never_wrong(got: list[tuple[int, bytes]]) -> None:
    """Every record served is exactly the one produced at that offset."""
    wrong = [(o, v[:8]) for o, v in got if v != value(o)]
    assert not wrong, f"corrupt data served as good: {wrong[:5]}"


def segments(broker: BrokerProcess, topic: str = TOPIC) -> list[Path]:
    return sorted((broker.data_dir / "data" / f"{topic}-0").glob("*.log"))


def fill(broker: BrokerProcess) -> None:
    create_topic(broker.bootstrap, **{"segment.bytes": "16384"})
    assert len(produce(broker.bootstrap, 0, RECORDS)) == RECORDS
    got, errors = read_back(broker.bootstrap, RECORDS)
    assert len(got) == RECORDS and not errors
    assert len(segments(broker)) >= 4


def test_corrupt_byte_in_closed_segment_is_never_served_as_good(broker: BrokerProcess) -> None:
    fill(broker)
    broker.stop()
    first = segments(broker)[0]
    data = bytearray(first.read_bytes())
    at = data.index(b"v000010:") + 3  # a payload byte: only the batch CRC covers it
    data[at] ^= 0x01
    first.write_bytes(bytes(data))
    broker.start()
    got, errors = read_back(broker.bootstrap, RECORDS)
    assert_never_wrong(got)
    served = {o for o, _ in got}
    assert 10 not in served
    # detected: either the broker refuses the damaged range (error) or the client flags it
    assert errors or len(got) < RECORDS, "damage neither reported nor withheld"
    log_text = broker.log_text()
    print("errors:", [e.str() for e in errors[:3]], "served:", len(got))
    print("\n".join(line for line in log_text.splitlines() if "corrupt" in line.lower()
                    or "crc" in line.lower())[-2000:])


def test_corrupt_byte_is_withheld_by_the_broker_itself(broker: BrokerProcess) -> None:
    """librdkafka does not check CRCs by default: the broker must not serve the damage."""
    fill(broker)
    broker.stop()
    first = segments(broker)[0]
    data = bytearray(first.read_bytes())
    data[data.index(b"v000010:") + 3] ^= 0x01
    first.write_bytes(bytes(data))
    broker.start()
    got, errors = read_back(broker.bootstrap, RECORDS, timeout=10.0, check_crcs=False)
    assert_never_wrong(got)
    assert 10 not in {o for o, _ in got}
    assert errors, "the consumer was not told about the damaged batch"
    assert "fails its CRC32C" in broker.log_text()


def test_corrupt_byte_after_unclean_shutdown_is_never_served(broker: BrokerProcess) -> None:
    fill(broker)
    broker.kill()
    first = segments(broker)[0]
    data = bytearray(first.read_bytes())
    data[data.index(b"v000020:") + 3] ^= 0x01
    first.write_bytes(bytes(data))
    broker.start()
    got, _errors = read_back(broker.bootstrap, RECORDS)
    assert_never_wrong(got)
    assert 20 not in {o for o, _ in got}


def test_deleted_index_is_rebuilt(broker: BrokerProcess) -> None:
    fill(broker)
    broker.stop()
    first = segments(broker)[0]
    index = first.with_suffix(".index")
    timeindex = first.with_suffix(".timeindex")
    assert index.exists()
    index.unlink()
    timeindex.unlink(missing_ok=True)
    broker.start()
    got, errors = read_back(broker.bootstrap, RECORDS)
    assert_never_wrong(got)
    assert len(got) == RECORDS and not errors
    assert index.exists(), "offset index not rebuilt"
    # offset lookups work through the rebuilt index: read from the middle of the segment
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "mid",
                         "check.crcs": True})
    consumer.assign([TopicPartition(TOPIC, 0, 25)])
    msg = None
    deadline = time.monotonic() + 15
    while msg is None and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
    consumer.close()
    assert msg is not None and not msg.error() and msg.offset() == 25 and msg.value() == value(25)
    # and the log keeps accepting writes at the right offset
    assert produce(broker.bootstrap, RECORDS, 10) == list(range(RECORDS, RECORDS + 10))
    got, errors = read_back(broker.bootstrap, RECORDS + 10)
    assert_never_wrong(got)
    assert len(got) == RECORDS + 10


@pytest.mark.parametrize("name", ["replication-offset-checkpoint",
                                  "recovery-point-offset-checkpoint",
                                  "log-start-offset-checkpoint",
                                  "disk-0/leader-epoch-checkpoint"])
def test_truncated_checkpoint_is_detected_and_repaired(broker: BrokerProcess, name: str) -> None:
    fill(broker)
    broker.stop()
    path = broker.data_dir / "data" / name.replace("disk-0/", f"{TOPIC}-0/")
    data = path.read_bytes()
    assert data
    path.write_bytes(data[: max(1, len(data) // 2 - 1)])
    broker.start()
    got, errors = read_back(broker.bootstrap, RECORDS)
    assert_never_wrong(got)
    assert len(got) == RECORDS, f"only {len(got)} of {RECORDS} acknowledged records readable " \
                                f"after truncating {name}; errors {[e.str() for e in errors[:3]]}"
    assert produce(broker.bootstrap, RECORDS, 10) == list(range(RECORDS, RECORDS + 10))


# ------------------------------------------------------------------------------ full disk


@pytest.fixture
def tmpfs_broker(tmp_path: Path) -> Iterator[BrokerProcess]:
    """A broker whose log.dirs is an 8 MiB tmpfs (unmounted at teardown)."""
    b = BrokerProcess(tmp_path / "b", overrides={"auto.create.topics.enable": "false",
                                                 "log.flush.offset.checkpoint.interval.ms":
                                                     "1000"})
    mount_point = b.data_dir / "data"
    mount_point.mkdir(parents=True)
    if os.geteuid() != 0:
        pytest.skip("full-disk test needs root to mount a tmpfs")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount_point)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        b.start()
        yield b
    finally:
        b.stop()
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)


def _produce_until_error(bootstrap: str, topic: str, start: int,
                         limit: int) -> tuple[list[int], list[KafkaError]]:
    acked: list[int] = []
    errors: list[KafkaError] = []

    def on_delivery(err: KafkaError | None, msg) -> None:
        if err is None:
            acked.append(int(msg.value()[1:7]))
        else:
            errors.append(err)

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all",
                         "enable.idempotence": True, "linger.ms": 5, "batch.size": 16384,
                         "message.timeout.ms": 8000})
    big = PAD * 20  # 4 KB records in requests well under 64 KiB
    for i in range(start, start + limit):
        if errors:
            break
        with contextlib.suppress(BufferError):
            producer.produce(topic, b"v%06d:" % i + big, partition=0, on_delivery=on_delivery)
        producer.poll(0.01)
    producer.flush(20)
    return acked, errors


def test_full_disk_gives_storage_error_broker_stays_up(tmpfs_broker: BrokerProcess) -> None:
    b = tmpfs_broker
    mount_point = b.data_dir / "data"
    create_topic(b.bootstrap, "full")
    create_topic(b.bootstrap, "other")
    # leave ~2 MB: a filler file takes the rest
    filler = mount_point / "filler"
    free = os.statvfs(mount_point).f_bavail * os.statvfs(mount_point).f_frsize
    filler.write_bytes(b"\0" * max(0, free - 2 * 1024 * 1024))
    acked, errors = _produce_until_error(b.bootstrap, "full", 0, 1500)
    assert errors, "the disk never filled"
    names = {e.name() for e in errors}
    assert names & {"KAFKA_STORAGE_ERROR", "_MSG_TIMED_OUT", "NOT_ENOUGH_REPLICAS"}, names
    assert acked, "nothing was written before the disk filled"
    # the broker process stays up and keeps answering
    assert b.proc is not None and b.proc.poll() is None
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    assert admin.list_topics(timeout=10).brokers
    # reads: the acknowledged records or a clear error, never wrong bytes
    # (the offline partition answers Fetch with KAFKA_STORAGE_ERROR, which librdkafka retries
    # silently: the consumer stalls rather than failing; it never gets damaged records)
    got, read_errors = read_back(b.bootstrap, len(acked), topic="full", timeout=5)
    assert_never_wrong_ids(got)
    print(f"disk full: {len(acked)} acked, produce errors {sorted(names)}, read "
          f"{len(got)} with errors {sorted({e.name() for e in read_errors})}")

    # space returns: the broker reopens the partition by itself, no restart
    filler.unlink()
    deadline = time.monotonic() + 30
    while True:
        acked2, errors2 = _produce_until_error(b.bootstrap, "full", 1000, 20)
        if not errors2 or time.monotonic() > deadline:
            break
        assert {e.name() for e in errors2} <= {"KAFKA_STORAGE_ERROR", "_MSG_TIMED_OUT"}
        time.sleep(1)
    print("after space returned, without restart:", len(acked2), "acked")
    assert "back ONLINE" in b.log_text()
    assert len(acked2) == 20 and not errors2, [e.str() for e in errors2[:3]]
    got, read_errors = read_back(b.bootstrap, len(acked) + 20, topic="full")
    assert_never_wrong_ids(got)
    ids = [int(v[1:7]) for _, v in got]
    assert not set(acked) - set(ids), "acknowledged records lost after the disk filled"
    assert set(acked2) <= set(ids)
    assert [o for o, _ in got] == list(range(len(got)))


def assert_never_wrong_ids(got: list[tuple[int, bytes]]) -> None:
    """Records of the full-disk test: "v<id>:" then 4000 padding bytes, ids in order."""
    bad = [o for o, v in got if v[8:] != PAD * 20]
    assert not bad, f"damaged records served: offsets {bad[:5]}"
    ids = [int(v[1:7]) for _, v in got]
    assert ids == sorted(ids)
