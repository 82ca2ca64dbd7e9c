"""A metadata image serialized as records (a snapshot's content) rebuilds the same image."""

from __future__ import annotations

from dataclasses import replace

from core.metadata.image import MetadataImage, image_records
from core.metadata.records import (
    ConfigChanged,
    FenceBroker,
    PartitionChanged,
    PartitionCreated,
    ProducerIdsAllocated,
    RegisterBroker,
    SnapshotHeader,
    TopicCreated,
    TopicRemoved,
    UnfenceBroker,
    decode_record,
)


def _busy_image() -> MetadataImage:
    records = [
        RegisterBroker(1, "127.0.0.1", 9092, None, 10, "a"),
        RegisterBroker(2, "127.0.0.1", 9093, "r2", 11, "b"),
        RegisterBroker(3, "127.0.0.1", 9094, None, 12, "c"),
        UnfenceBroker(1, 10), UnfenceBroker(2, 11), UnfenceBroker(3, 12), FenceBroker(3, 12),
        TopicCreated("orders", "id-orders"),
        PartitionCreated("orders", 0, [1, 2, 3], [1, 2, 3], 1),
        PartitionCreated("orders", 1, [2, 3, 1], [2, 3, 1], 2),
        PartitionChanged("orders", 0, isr=[1, 2], leader=2),
        PartitionChanged("orders", 1, replicas=[2, 3, 1, 4], adding_replicas=[4],
                         removing_replicas=[1]),
        TopicCreated("gone", "id-gone"), PartitionCreated("gone", 0, [1], [1], 1),
        TopicRemoved("gone"),
        ConfigChanged("topic", "orders", "retention.ms", "1000"),
        ConfigChanged("broker", "", "log.retention.ms", "5000"),
        ConfigChanged("broker", "2", "x", "y"), ConfigChanged("broker", "2", "x", None),
        ProducerIdsAllocated(1, 2000),
    ]
    image = MetadataImage()
    for offset, record in enumerate(records):
        image = image.apply(decode_record(record.encode()), offset)
    return image


def test_records_rebuild_the_image_from_any_image() -> None:
    image = _busy_image()
    records = [decode_record(r.encode()) for r in image_records(image, 42, 3)]
    assert records[0] == SnapshotHeader(42, 3)
    # folded over an unrelated image (a lagging broker's), the header resets it first
    stale = MetadataImage().apply(TopicCreated("stale", "id-stale"), 5)
    rebuilt = stale
    for record in records:
        rebuilt = rebuilt.apply(record, 41)
    # a broker whose every dynamic config was removed keeps an empty mapping in the image;
    # the snapshot does not carry it (equivalent: no configs)
    assert {k: v for k, v in image.broker_configs.items() if v} == rebuilt.broker_configs
    assert rebuilt == replace(image, offset=41, broker_configs=rebuilt.broker_configs)
    assert "stale" not in rebuilt.topics and "gone" not in rebuilt.topics
    part = rebuilt.topics["orders"].partitions[1]
    assert (part.adding_replicas, part.removing_replicas) == ((4,), (1,))
    assert rebuilt.topics["orders"].partitions[0].leader_epoch == 1
    assert rebuilt.brokers[3].fenced and not rebuilt.brokers[1].fenced


def test_partition_record_encodes_as_before_without_a_reassignment() -> None:
    record = PartitionCreated("t", 0, [1], [1], 1)
    assert b"adding" not in record.encode()
    assert decode_record(record.encode()) == record
