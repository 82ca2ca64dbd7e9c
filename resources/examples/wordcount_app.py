"""Windowed word count with quixstreams, exactly-once, against any Kafka cluster (kaflab too).

    python resources/examples/wordcount_app.py --bootstrap 127.0.0.1:9092 --sample 200
    python resources/examples/wordcount_app.py --bootstrap 127.0.0.1:9092          # runs until ^C

Reads lines of text from --input (default `sentences`), splits them into words, re-keys by word
(quixstreams writes a repartition topic), counts each word in tumbling windows of --window-ms
with a RocksDB state store backed by a changelog topic, and writes each updated count to
--output (default `word-counts`) as JSON `{"word", "start", "end", "count"}` keyed by the word.
Everything runs with processing_guarantee="exactly-once" (Kafka transactions), so a
read_committed reader of --output sees every count exactly once, in order: for each word and
window the counts 1, 2, ..., n. Open the output topic in the console (Browse or Query:
`SELECT key, max((value->>'count')::INT) FROM "word-counts" GROUP BY key`).

resources/examples/wordcount-scenario.yaml feeds it through `python main.py scenario run`
(sentences at 20/s with a partition leader killed and restarted).

--sample N first produces N sentences (with timestamps spread over a few windows);
--count N / --timeout S stop after N outputs or S seconds without a message (for scripts and
tests); --expected prints the plain-Python counts of everything in --input for comparison.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

WORDS = ["kafka", "stream", "table", "window", "broker", "topic", "partition", "offset",
         "record", "commit", "transaction", "leader", "replica", "consumer", "producer"]


def sample_lines(n: int, seed: int = 7) -> list[str]:
    """n pseudo-random sentences of 3..8 words (deterministic for a seed)."""
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 8))) for _ in range(n)]


def produce_sample(bootstrap: str, topic: str, lines: list[str], *, start_ms: int,
                   step_ms: int, partitions: int = 2) -> list[tuple[int, str]]:
    """Write `lines` to `topic` (created if missing) with timestamps start_ms + i*step_ms,
    round-robin over partitions; returns [(timestamp, line)]."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    if topic not in admin.list_topics(timeout=15).topics:
        fut = admin.create_topics([NewTopic(topic, partitions, -1)])[topic]
        try:
            fut.result(20)
        except Exception as exc:  # already created by someone else
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    out = []
    for i, line in enumerate(lines):
        ts = start_ms + i * step_ms
        producer.produce(topic, line.encode(), partition=i % partitions, timestamp=ts)
        out.append((ts, line))
    if producer.flush(30):
        raise RuntimeError("sample records not delivered")
    return out


def expected_counts(records: list[tuple[int, str]], window_ms: int) -> dict[tuple[str, int], int]:
    """The same computation in plain Python: {(word, window start): count}."""
    counts: Counter[tuple[str, int]] = Counter()
    for ts, line in records:
        for word in line.split():
            counts[(word, ts - ts % window_ms)] += 1
    return dict(counts)


def build_app(bootstrap: str, *, group: str, input_topic: str, output_topic: str,
              window_ms: int, state_dir: str, exactly_once: bool = True,
              commit_interval: float = 1.0) -> tuple[Any, Any]:
    """The quixstreams Application and its StreamingDataFrame (not yet running)."""
    from quixstreams import Application

    app = Application(
        broker_address=bootstrap, consumer_group=group, auto_offset_reset="earliest",
        state_dir=state_dir, commit_interval=commit_interval,
        processing_guarantee="exactly-once" if exactly_once else "at-least-once",
        loglevel="WARNING", consumer_extra_config={"isolation.level": "read_committed"})
    source = app.topic(input_topic, value_deserializer="str", key_deserializer="str")
    sink = app.topic(output_topic, value_serializer="json", key_serializer="str")
    sdf = app.dataframe(source)
    sdf = sdf.apply(lambda line: [{"word": w} for w in line.split()], expand=True)
    sdf = sdf.group_by("word")
    # A generous grace period: two input partitions interleave, so per-partition time may
    # step back a little; nothing may be dropped as late.
    sdf = sdf.tumbling_window(duration_ms=window_ms, grace_ms=3_600_000).count().current()
    sdf = sdf.apply(lambda row, key, *_: {"word": key, "start": row["start"],
                                          "end": row["end"], "count": row["value"]},
                    metadata=True)
    sdf = sdf.to_topic(sink)
    return app, sdf


def read_topic_lines(bootstrap: str, topic: str, timeout: float = 10.0) -> list[tuple[int, str]]:
    """Every record of `topic` (read_committed) as (timestamp, text)."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"peek-{time.time_ns()}",
                         "enable.auto.commit": False, "isolation.level": "read_committed"})
    try:
        md = consumer.list_topics(topic, timeout=timeout).topics[topic]
        parts = sorted(md.partitions)
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout)[1]
                for p in parts}
        consumer.assign([TopicPartition(topic, p, 0) for p in parts if ends[p] > 0])
        out: list[tuple[int, str]] = []
        done = {p for p in parts if ends[p] == 0}
        deadline = time.monotonic() + timeout
        while len(done) < len(parts) and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None or msg.error():
                continue
            out.append((msg.timestamp()[1], (msg.value() or b"").decode()))
            if msg.offset() + 1 >= ends[msg.partition()]:
                done.add(msg.partition())
        return out
    finally:
        consumer.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--input", default="sentences")
    parser.add_argument("--output", default="word-counts")
    parser.add_argument("--group", default="wordcount")
    parser.add_argument("--window-ms", type=int, default=10_000)
    parser.add_argument("--state-dir", default=str(Path.cwd() / "state-wordcount"))
    parser.add_argument("--at-least-once", action="store_true",
                        help="processing_guarantee=at-least-once instead of exactly-once")
    parser.add_argument("--sample", type=int, default=0,
                        help="first produce N sample sentences to --input")
    parser.add_argument("--count", type=int, default=0, help="stop after N output records")
    parser.add_argument("--timeout", type=float, default=0.0,
                        help="stop after S seconds without a message")
    parser.add_argument("--expected", action="store_true",
                        help="print the plain-Python counts of --input as JSON and exit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    if args.sample:
        now = int(time.time() * 1000)
        produce_sample(args.bootstrap, args.input, sample_lines(args.sample),
                       start_ms=now - now % args.window_ms, step_ms=max(1, args.window_ms // 20))
        print(f"produced {args.sample} sentences to {args.input}", flush=True)
    if args.expected:
        counts = expected_counts(read_topic_lines(args.bootstrap, args.input), args.window_ms)
        json.dump({f"{w}@{s}": n for (w, s), n in sorted(counts.items())}, sys.stdout,
                  indent=1)
        print()
        return 0
    app, _sdf = build_app(args.bootstrap, group=args.group, input_topic=args.input,
                         output_topic=args.output, window_ms=args.window_ms,
                         state_dir=args.state_dir, exactly_once=not args.at_least_once)
    print(f"wordcount: {args.input} -> {args.output} (group {args.group})", flush=True)
    if args.count or args.timeout:
        app.run(count=args.count, timeout=args.timeout, collect=False)
    else:
        app.run()
    print("wordcount: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
