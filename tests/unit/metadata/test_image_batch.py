"""MetadataImage.apply_batch: one builder per batch gives the same image as applying the
records one by one, never changes an image readers may hold, and is linear in the records."""

from __future__ import annotations

import gc
import random
import time

import pytest

from core.metadata.image import MetadataImage, image_records
from core.metadata.records import (
    ConfigChanged,
    FenceBroker,
    MetadataRecord,
    NoOp,
    PartitionChanged,
    PartitionCreated,
    ProducerIdsAllocated,
    RegisterBroker,
    SnapshotHeader,
    TopicCreated,
    TopicRemoved,
    UnfenceBroker,
)


def _random_records(rng: random.Random, n: int) -> list[MetadataRecord]:
    """Records of every kind, on a few names, so that they hit the same maps often
    (re-created and removed topics, configs set and removed, changes of missing partitions)."""
    topics = [f"t{i}" for i in range(6)]
    out: list[MetadataRecord] = []
    for _ in range(n):
        kind = rng.randrange(12)
        topic = rng.choice(topics)
        broker = rng.randrange(1, 5)
        if kind == 0:
            out.append(RegisterBroker(broker, "h", 9000 + broker, None, rng.randrange(9), "x"))
        elif kind == 1:
            out.append(rng.choice([FenceBroker, UnfenceBroker])(broker, 1))
        elif kind == 2:
            out.append(TopicCreated(topic, f"id-{topic}-{rng.randrange(99)}"))
        elif kind in (3, 4):
            out.append(PartitionCreated(topic, rng.randrange(4), [1, 2], [1], 1, 0, 0))
        elif kind in (5, 6):
            out.append(PartitionChanged(topic, rng.randrange(5), isr=rng.choice([None, [1]]),
                                        leader=rng.choice([None, 1, 2]),
                                        adding_replicas=rng.choice([None, [], [3]])))
        elif kind == 7:
            out.append(TopicRemoved(topic))
        elif kind == 8:
            out.append(ConfigChanged(rng.choice(["topic", "broker"]),
                                     rng.choice([topic, str(broker)]), rng.choice("ab"),
                                     rng.choice([None, "1", "2"])))
        elif kind == 9:
            out.append(ProducerIdsAllocated(broker, rng.randrange(5000)))
        elif kind == 10:
            out.append(NoOp())
        elif rng.random() < 0.1:
            out.append(SnapshotHeader(rng.randrange(100), 1))
        else:
            out.append(NoOp())
    return out


def _one_by_one(image: MetadataImage, records: list[MetadataRecord],
                offset: int) -> MetadataImage:
    for record in records:
        try:
            image = image.apply(record, offset)
        except KeyError:  # a partition of a missing topic: skipped as a whole below too
            continue
    return image


def _plain(image: MetadataImage) -> tuple:
    """The image as plain values (a copy: later changes to the image's maps would show)."""
    return (image.offset, dict(image.brokers),
            {n: (t.topic_id, dict(t.partitions), dict(t.configs)) for n, t in image.topics.items()},
            {n: dict(c) for n, c in image.broker_configs.items()}, image.next_producer_id)


def _valid(records: list[MetadataRecord], base: MetadataImage) -> list[MetadataRecord]:
    """Drop the PartitionCreated of missing topics (apply raises KeyError on them)."""
    kept, image = [], base
    for record in records:
        try:
            image = image.apply(record, 0)
        except KeyError:
            continue
        kept.append(record)
    return kept


@pytest.mark.parametrize("seed", range(40))
def test_batches_equal_one_by_one_and_never_change_the_base(seed: int) -> None:
    rng = random.Random(seed)
    base = _one_by_one(MetadataImage(), _random_records(rng, 60), 59)
    records = _valid(_random_records(rng, 300), base)
    before = _plain(base)
    expected = _one_by_one(base, records, 500)
    # the same records in batches of random sizes, each batch on the previous image
    image, position, held = base, 0, []
    while position < len(records):
        size = rng.randint(1, 40)
        held.append((image, _plain(image)))
        image = image.apply_batch(records[position:position + size], 500)
        position += size
    assert _plain(image) == _plain(expected)
    assert _plain(base) == before, "the base image changed"
    for old, plain in held:
        assert _plain(old) == plain, "an image a reader held changed"
    # and the snapshot of the result rebuilds it (a broker whose configs were all removed
    # keeps an empty map in the image, which a snapshot does not carry: the same configs)
    rebuilt = _plain(MetadataImage().apply_batch(list(image_records(image, 501, 1)), 500))
    plain = _plain(image)
    assert rebuilt[:3] + rebuilt[4:] == plain[:3] + plain[4:]
    assert rebuilt[3] == {n: c for n, c in plain[3].items() if c}


def test_partition_of_a_missing_topic_raises_as_before() -> None:
    with pytest.raises(KeyError):
        MetadataImage().apply_batch([PartitionCreated("nope", 0, [1], [1], 1)], 0)


def test_replaying_many_topics_is_linear() -> None:
    """Twice the topics, about twice the time (quadratic would be ~4x): the per-record copy
    of the topics map is gone from batches."""
    def replay_s(topics: int) -> float:
        records: list[MetadataRecord] = []
        for t in range(topics):
            records.append(TopicCreated(f"topic-{t}", f"id-{t}"))
            records += [PartitionCreated(f"topic-{t}", p, [1, 2, 3], [1, 2, 3], 1)
                        for p in range(3)]
            records += [PartitionChanged(f"topic-{t}", p, isr=[1, 2]) for p in range(3)]
        # Thread CPU time (time slices lost to other processes on a loaded machine do not
        # count) with the cyclic GC off (its full collections scale with every live object,
        # which would make the larger replay look superlinear for reasons outside the code).
        best = float("inf")
        gc.collect()
        gc.disable()
        try:
            for _ in range(5):
                start = time.thread_time()
                image = MetadataImage().apply_batch(records, len(records) - 1)
                best = min(best, time.thread_time() - start)
        finally:
            gc.enable()
        assert len(image.topics) == topics
        return best

    small, large = replay_s(1000), replay_s(4000)
    assert large / small < 8, f"1000 topics {small:.3f}s, 4000 topics {large:.3f}s"
