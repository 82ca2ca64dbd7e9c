"""Export a cluster's topics and their configs as scripts that recreate them on any Kafka
cluster: a shell script of `kafka-topics.sh --create ...` commands and an equivalent Python
script using confluent-kafka's AdminClient. Only configs set on the topic (not defaults) are
written; internal topics (`__consumer_offsets`, ...) are left out.
"""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass, field

from core.admin.client import AdminClient

__all__ = ["TopicSpec", "collect", "python_script", "shell_script"]


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int
    configs: dict[str, str] = field(default_factory=dict)


async def collect(admin: AdminClient, *, include_internal: bool = False) -> list[TopicSpec]:
    """Every topic with its partition count, replication factor and non-default configs."""
    md = await admin.metadata()
    names = sorted(n for n, t in md.topics.items()
                   if include_internal or not (t.internal or n.startswith("__")))
    described = await admin.describe_topic_configs_many(names)
    out = []
    for name in names:
        topic = md.topics[name]
        entries = described.get(name)
        configs: dict[str, str] = {}
        if isinstance(entries, dict):
            for c in entries.values():
                if c.value is None or c.is_default or c.sensitive:
                    continue
                if c.source in ("DYNAMIC_TOPIC_CONFIG", "UNKNOWN"):
                    configs[c.name] = c.value
        out.append(TopicSpec(name, len(topic.partitions), topic.replication_factor,
                             dict(sorted(configs.items()))))
    return out


def _header(source: str) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S")
    return f"Recreates the topics of {source} (kaflab topology export, {when})"


def shell_script(topics: list[TopicSpec], *, source: str = "a kaflab cluster",
                 bootstrap: str = "localhost:9092") -> str:
    """A POSIX shell script of kafka-topics.sh commands (BOOTSTRAP and KAFKA_TOPICS
    environment variables override the server and the tool's path)."""
    lines = [
        "#!/bin/sh",
        f"# {_header(source)}",
        "# Usage: BOOTSTRAP=host:9092 sh this-script.sh",
        "set -e",
        f'BOOTSTRAP="${{BOOTSTRAP:-{bootstrap}}}"',
        'KAFKA_TOPICS="${KAFKA_TOPICS:-kafka-topics.sh}"',
        "",
    ]
    for t in topics:
        parts = ['"$KAFKA_TOPICS"', '--bootstrap-server "$BOOTSTRAP"', "--create",
                 "--if-not-exists", f"--topic {shlex.quote(t.name)}",
                 f"--partitions {t.partitions}", f"--replication-factor {t.replication_factor}"]
        parts += [f"--config {shlex.quote(f'{k}={v}')}" for k, v in t.configs.items()]
        lines.append(" \\\n    ".join(parts))
    return "\n".join(lines) + "\n"


def python_script(topics: list[TopicSpec], *, source: str = "a kaflab cluster",
                  bootstrap: str = "localhost:9092") -> str:
    """A Python script creating the same topics with confluent-kafka's AdminClient
    (BOOTSTRAP environment variable or first argument overrides the server)."""
    specs = ",\n".join(
        f"    ({t.name!r}, {t.partitions}, {t.replication_factor}, {t.configs!r})"
        for t in topics)
    return f'''#!/usr/bin/env python3
"""{_header(source)}.

Usage: python this-script.py [BOOTSTRAP]   (needs `pip install confluent-kafka`)
"""

import os
import sys

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

TOPICS = [  # (name, partitions, replication factor, configs)
{specs}{"," if topics else ""}
]


def main() -> int:
    bootstrap = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("BOOTSTRAP", {bootstrap!r})
    admin = AdminClient({{"bootstrap.servers": bootstrap}})
    new = [NewTopic(name, num_partitions=partitions, replication_factor=rf, config=configs)
           for name, partitions, rf, configs in TOPICS]
    if not new:
        return 0
    failed = 0
    for name, future in admin.create_topics(new, request_timeout=30).items():
        try:
            future.result()
            print(f"created {{name}}")
        except KafkaException as exc:
            error = exc.args[0]
            if error.name() == "TOPIC_ALREADY_EXISTS":
                print(f"exists  {{name}}")
            else:
                print(f"FAILED  {{name}}: {{error.str()}}", file=sys.stderr)
                failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
'''
