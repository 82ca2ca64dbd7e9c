"""Transactions with confluent-kafka against one real broker: commit, abort, read_committed vs
read_uncommitted, consume-transform-produce with send_offsets_to_transaction, zombie fencing,
transaction timeouts, and the admin view (List/DescribeTransactions, DescribeProducers)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from tests.fixtures import BrokerProcess, running_broker

pytestmark = pytest.mark.timeout(90)


TXN_CONFIG = {
    "transaction.state.log.num.partitions": "4",
    "transaction.abort.timed.out.transaction.cleanup.interval.ms": "500",
}


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    yield from running_broker(tmp_path_factory, "txn-broker", TXN_CONFIG)


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _topic(bootstrap: str, partitions: int = 1) -> str:
    name = _name("txn")
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(15)
    return name


def _producer(bootstrap: str, txn_id: str, **extra: object) -> Producer:
    conf = {"bootstrap.servers": bootstrap, "transactional.id": txn_id, "linger.ms": 5}
    conf.update(extra)
    producer = Producer(conf)
    producer.init_transactions(20)
    return producer


def _consume_all(bootstrap: str, topic: str, isolation: str, expected: int | None,
                 partitions: int = 1, timeout: float = 20.0) -> list[tuple[int, int, bytes]]:
    """Every data record of `topic` as (partition, offset, value); stops at `expected` (or
    after a quiet second when None)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": _name("reader"),
                         "auto.offset.reset": "earliest", "enable.auto.commit": False,
                         "isolation.level": isolation})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    out: list[tuple[int, int, bytes]] = []
    deadline = time.monotonic() + timeout
    quiet_since = time.monotonic()
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None:
                if expected is None and time.monotonic() - quiet_since > 1.5:
                    break
                continue
            if msg.error():
                continue
            quiet_since = time.monotonic()
            out.append((msg.partition(), msg.offset(), msg.value()))
            if expected is not None and len(out) >= expected:
                # linger a little to catch anything that should not be there
                extra = consumer.poll(0.5)
                if extra is not None and not extra.error():
                    out.append((extra.partition(), extra.offset(), extra.value()))
                break
    finally:
        consumer.close()
    return out


def test_commit_and_abort_read_committed_and_uncommitted(broker: BrokerProcess) -> None:
    topic = _topic(broker.bootstrap, 2)
    producer = _producer(broker.bootstrap, _name("tx"))
    for round_, commit in enumerate((True, False, True)):
        producer.begin_transaction()
        for i in range(10):
            producer.produce(topic, f"r{round_}-{i}".encode(), partition=i % 2)
        if commit:
            producer.commit_transaction(20)
        else:
            producer.flush(10)
            producer.abort_transaction(20)
    committed = _consume_all(broker.bootstrap, topic, "read_committed", 20, partitions=2)
    values = sorted(v for _, _, v in committed)
    assert values == sorted(f"r{r}-{i}".encode() for r in (0, 2) for i in range(10))
    for partition in (0, 1):  # in offset order per partition
        offsets = [o for p, o, _ in committed if p == partition]
        assert offsets == sorted(offsets)
    everything = _consume_all(broker.bootstrap, topic, "read_uncommitted", 30, partitions=2)
    assert sorted(v for _, _, v in everything) == sorted(
        f"r{r}-{i}".encode() for r in range(3) for i in range(10))


def test_open_transaction_blocks_read_committed_until_commit(broker: BrokerProcess) -> None:
    topic = _topic(broker.bootstrap)
    plain = Producer({"bootstrap.servers": broker.bootstrap})
    producer = _producer(broker.bootstrap, _name("tx"))
    producer.begin_transaction()
    producer.produce(topic, b"in-txn")
    producer.flush(10)
    plain.produce(topic, b"after")  # behind the open transaction: not stable yet
    plain.flush(10)
    assert _consume_all(broker.bootstrap, topic, "read_committed", None) == []
    uncommitted = _consume_all(broker.bootstrap, topic, "read_uncommitted", 2)
    assert [v for _, _, v in uncommitted] == [b"in-txn", b"after"]
    producer.commit_transaction(20)
    committed = _consume_all(broker.bootstrap, topic, "read_committed", 2)
    assert [v for _, _, v in committed] == [b"in-txn", b"after"]


def test_consume_transform_produce_exactly_once(broker: BrokerProcess) -> None:
    source = _topic(broker.bootstrap)
    sink = _topic(broker.bootstrap)
    group = _name("ctp")
    plain = Producer({"bootstrap.servers": broker.bootstrap})
    for i in range(30):
        plain.produce(source, str(i).encode())
    plain.flush(10)

    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group,
                         "auto.offset.reset": "earliest", "enable.auto.commit": False,
                         "isolation.level": "read_committed"})
    consumer.subscribe([source])
    producer = _producer(broker.bootstrap, _name("ctp-tx"))
    processed = 0
    aborted_once = False
    deadline = time.monotonic() + 40
    try:
        while processed < 30 and time.monotonic() < deadline:
            msgs = consumer.consume(10, 1.0)
            msgs = [m for m in msgs if not m.error()]
            if not msgs:
                continue
            producer.begin_transaction()
            for m in msgs:
                producer.produce(sink, b"x" + m.value())
            producer.send_offsets_to_transaction(consumer.position(consumer.assignment()),
                                                 consumer.consumer_group_metadata(), 20)
            if not aborted_once:
                # the first batch is aborted once: outputs and offsets must both vanish
                aborted_once = True
                producer.abort_transaction(20)
                committed = consumer.committed([TopicPartition(source, 0)], 10)
                assert committed[0].offset < 0
                first = msgs[0]
                consumer.seek(TopicPartition(source, first.partition(), first.offset()))
                continue
            producer.commit_transaction(20)
            processed += len(msgs)
        assert processed == 30
        committed = consumer.committed([TopicPartition(source, 0)], 10)
        assert committed[0].offset == 30
    finally:
        consumer.close()
    out = _consume_all(broker.bootstrap, sink, "read_committed", 30)
    assert [v for _, _, v in out] == [b"x%d" % i for i in range(30)]
    # a fresh member of the group resumes after the committed offsets: nothing left to do
    again = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group,
                      "auto.offset.reset": "earliest", "isolation.level": "read_committed"})
    again.subscribe([source])
    try:
        seen = [m for m in again.consume(10, 5.0) if not m.error()]
        assert seen == []
    finally:
        again.close()


def test_zombie_producer_is_fenced(broker: BrokerProcess) -> None:
    topic = _topic(broker.bootstrap)
    txn_id = _name("zombie")
    old = _producer(broker.bootstrap, txn_id)
    old.begin_transaction()
    old.produce(topic, b"zombie")
    old.flush(10)
    new = _producer(broker.bootstrap, txn_id)  # fences `old` and aborts its transaction
    new.begin_transaction()
    new.produce(topic, b"new")
    new.commit_transaction(20)
    with pytest.raises(KafkaException) as info:
        old.produce(topic, b"zombie-2")
        old.commit_transaction(20)
    error = info.value.args[0]
    assert error.code() in (KafkaError._FENCED, KafkaError.PRODUCER_FENCED,
                            KafkaError.INVALID_PRODUCER_EPOCH), error
    assert error.fatal()
    committed = _consume_all(broker.bootstrap, topic, "read_committed", 1)
    assert [v for _, _, v in committed] == [b"new"]


def test_transaction_timeout_aborts(broker: BrokerProcess) -> None:
    topic = _topic(broker.bootstrap)
    producer = _producer(broker.bootstrap, _name("slow"), **{"transaction.timeout.ms": 1500})
    producer.begin_transaction()
    producer.produce(topic, b"too-slow")
    producer.flush(10)
    time.sleep(3.5)
    with pytest.raises(KafkaException):
        producer.commit_transaction(10)
    plain = Producer({"bootstrap.servers": broker.bootstrap})
    plain.produce(topic, b"later")
    plain.flush(10)
    committed = _consume_all(broker.bootstrap, topic, "read_committed", 1)
    assert [v for _, _, v in committed] == [b"later"]


def test_list_and_describe_transactions(broker: BrokerProcess) -> None:
    topic = _topic(broker.bootstrap)
    txn_id = _name("admin-tx")
    producer = _producer(broker.bootstrap, txn_id)
    producer.begin_transaction()
    producer.produce(topic, b"v")
    producer.flush(10)

    async def check() -> None:
        from core.network.client import KafkaConnection
        host, port = broker.bootstrap.split(":")
        conn = await KafkaConnection.connect(host, int(port), timeout=5)
        try:
            found = await conn.request(10, key_type=1, key=txn_id, coordinator_keys=[txn_id])
            assert found.coordinators[0].error_code == 0
            listed = await conn.request(66, state_filters=["Ongoing"], producer_id_filters=[])
            names = {t.transactional_id: t for t in listed.transaction_states}
            assert txn_id in names
            described = await conn.request(65, transactional_ids=[txn_id, "nope"])
            state, missing = described.transaction_states
            assert state.transaction_state == "Ongoing"
            assert [(t.topic, list(t.partitions)) for t in state.topics] == [(topic, [0])]
            assert missing.error_code != 0
            producers = await conn.request(61, topics=[dict(name=topic, partition_indexes=[0])])
            active = producers.topics[0].partitions[0].active_producers
            assert active[0].producer_id == names[txn_id].producer_id
            assert active[0].current_txn_start_offset == 0
        finally:
            await conn.close()

    asyncio.run(check())
    producer.commit_transaction(20)
