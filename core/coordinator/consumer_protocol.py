"""The "consumer" embedded protocol: subscription and assignment bytes inside group messages.

The coordinator treats these as opaque, except to learn a consumer group's subscribed topics
(offset retention and OffsetDelete) and to show assignments in the console. Both start with an
int16 version; versions newer than kio knows are read with the newest schema, as Kafka does
(fields are only ever appended).
"""

from __future__ import annotations

import struct
from functools import cache
from typing import Any

from kio.schema.consumer_protocol_assignment.v0.data import ConsumerProtocolAssignment as _A0
from kio.schema.consumer_protocol_assignment.v1.data import ConsumerProtocolAssignment as _A1
from kio.schema.consumer_protocol_assignment.v2.data import ConsumerProtocolAssignment as _A2
from kio.schema.consumer_protocol_assignment.v3.data import ConsumerProtocolAssignment as _A3
from kio.schema.consumer_protocol_subscription.v0.data import ConsumerProtocolSubscription as _S0
from kio.schema.consumer_protocol_subscription.v1.data import ConsumerProtocolSubscription as _S1
from kio.schema.consumer_protocol_subscription.v2.data import ConsumerProtocolSubscription as _S2
from kio.schema.consumer_protocol_subscription.v3.data import ConsumerProtocolSubscription as _S3
from kio.serial import entity_reader, entity_writer

PROTOCOL_TYPE = "consumer"
_ASSIGNMENTS = (_A0, _A1, _A2, _A3)
_SUBSCRIPTIONS = (_S0, _S1, _S2, _S3)


@cache
def _reader(cls: type) -> Any:
    return entity_reader(cls)


def _decode(data: bytes, classes: tuple[type, ...]) -> Any:
    if len(data) < 2:
        raise ValueError("consumer protocol data too short")
    (version,) = struct.unpack_from(">h", data, 0)
    if version < 0:
        raise ValueError(f"bad consumer protocol version {version}")
    cls = classes[min(version, len(classes) - 1)]
    entity, _size = _reader(cls)(memoryview(data), 2)
    return entity


def subscribed_topics(subscription: bytes) -> set[str] | None:
    """Topics of a ConsumerProtocolSubscription, or None when it cannot be parsed."""
    try:
        return set(_decode(subscription, _SUBSCRIPTIONS).topics)
    except Exception:
        return None


def decode_assignment(assignment: bytes) -> dict[str, list[int]]:
    """A ConsumerProtocolAssignment as topic -> sorted partitions ({} when empty/unparsable)."""
    if not assignment:
        return {}
    try:
        entity = _decode(assignment, _ASSIGNMENTS)
    except Exception:
        return {}
    result: dict[str, list[int]] = {}
    for tp in entity.assigned_partitions:
        result.setdefault(tp.topic, []).extend(int(p) for p in tp.partitions)
    return {topic: sorted(parts) for topic, parts in result.items()}


def encode_subscription(topics: list[str], version: int = 0) -> bytes:
    """A ConsumerProtocolSubscription (tests and tools)."""
    import io
    cls = _SUBSCRIPTIONS[version]
    buf = io.BytesIO()
    buf.write(struct.pack(">h", version))
    entity_writer(cls)(buf, cls(topics=tuple(topics), user_data=None,
                               **({"owned_partitions": ()} if version >= 1 else {})))
    return buf.getvalue()


def encode_assignment(assignment: dict[str, list[int]], version: int = 0) -> bytes:
    """A ConsumerProtocolAssignment (tests and tools)."""
    import io

    from kio.schema.consumer_protocol_assignment.v0.data import TopicPartition
    cls = _ASSIGNMENTS[0]
    buf = io.BytesIO()
    buf.write(struct.pack(">h", version))
    entity_writer(cls)(buf, cls(assigned_partitions=tuple(
        TopicPartition(topic=t, partitions=tuple(p)) for t, p in assignment.items()),
        user_data=None))
    return buf.getvalue()
