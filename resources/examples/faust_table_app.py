"""Word counts in a faust-streaming Table, against any Kafka cluster (kaflab too).

    python resources/examples/faust_table_app.py worker --bootstrap 127.0.0.1:9092

Reads lines of text from the `sentences` topic (env FAUST_INPUT), re-partitions the words by
word through an internal topic, and keeps `counts[word] += 1` in a Table whose changelog topic
(`<app id>-word_counts-changelog`, compacted, values JSON) is the durable copy that faust
replays on start-up and on rebalance. The latest changelog record of each word is its count;
the console's Query page shows them with
`SELECT key, arg_max(value, "offset") AS count FROM "wordcount-faust-word_counts-changelog"
GROUP BY key`.

Environment: FAUST_BOOTSTRAP (or --bootstrap), FAUST_APP_ID (default wordcount-faust),
FAUST_INPUT, FAUST_PARTITIONS (default 2), FAUST_REPLICATION (default 1), FAUST_DATA_DIR.
"""

from __future__ import annotations

import os
import sys

import faust


def _bootstrap_from_argv() -> str:
    argv = sys.argv
    if "--bootstrap" in argv:
        i = argv.index("--bootstrap")
        value = argv[i + 1]
        del argv[i:i + 2]
        return value
    return os.environ.get("FAUST_BOOTSTRAP", "127.0.0.1:9092")


BOOTSTRAP = _bootstrap_from_argv()
APP_ID = os.environ.get("FAUST_APP_ID", "wordcount-faust")
PARTITIONS = int(os.environ.get("FAUST_PARTITIONS", "2"))

app = faust.App(
    APP_ID,
    broker=[f"kafka://{b}" for b in BOOTSTRAP.split(",")],
    store="memory://",
    topic_partitions=PARTITIONS,
    topic_replication_factor=int(os.environ.get("FAUST_REPLICATION", "1")),
    datadir=os.environ.get("FAUST_DATA_DIR", f"{APP_ID}-data"),
    web_enabled=False,
    broker_commit_every=50,
    broker_commit_interval=1.0,
    table_standby_replicas=0,
    consumer_auto_offset_reset="earliest",
)

sentences = app.topic(os.environ.get("FAUST_INPUT", "sentences"), key_type=bytes,
                      value_type=bytes, value_serializer="raw", key_serializer="raw")
words = app.topic(f"{APP_ID}-words", key_type=str, value_type=str, internal=True,
                  partitions=PARTITIONS)
counts = app.Table("word_counts", default=int, partitions=PARTITIONS)


@app.agent(sentences)
async def split(stream: faust.StreamT) -> None:
    """Sentence -> one record per word, keyed (so partitioned) by the word."""
    async for line in stream:
        for word in bytes(line).decode().split():
            await words.send(key=word, value=word)


@app.agent(words)
async def count(stream: faust.StreamT) -> None:
    """counts[word] += 1, in the partition that owns the word."""
    async for word in stream:
        counts[word] += 1


if __name__ == "__main__":
    app.main()
