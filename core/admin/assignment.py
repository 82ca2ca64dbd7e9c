"""Decoding of the consumer protocol's opaque bytes (pure functions).

DescribeGroups returns each member's metadata (ConsumerProtocolSubscription) and assignment
(ConsumerProtocolAssignment) as bytes: int16 version, then the fields. Versions 0-3 share the
prefix we read; later versions only append fields, which Kafka's own parser ignores too.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

__all__ = ["Subscription", "decode_assignment", "decode_subscription", "encode_assignment"]

_H = struct.Struct(">h")
_I = struct.Struct(">i")


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def int16(self) -> int:
        (v,) = _H.unpack_from(self.data, self.pos)
        self.pos += 2
        return v

    def int32(self) -> int:
        (v,) = _I.unpack_from(self.data, self.pos)
        self.pos += 4
        return v

    def string(self) -> str | None:
        n = self.int16()
        if n < 0:
            return None
        v = self.data[self.pos:self.pos + n]
        if len(v) != n:
            raise ValueError("string runs past the end")
        self.pos += n
        return v.decode("utf-8", "replace")

    def bytes_(self) -> bytes | None:
        n = self.int32()
        if n < 0:
            return None
        v = self.data[self.pos:self.pos + n]
        if len(v) != n:
            raise ValueError("bytes run past the end")
        self.pos += n
        return bytes(v)

    def count(self) -> int:
        n = self.int32()
        if n < -1 or n > len(self.data):
            raise ValueError(f"bad array length {n}")
        return max(n, 0)

    @property
    def remaining(self) -> int:
        return len(self.data) - self.pos


def decode_assignment(data: bytes | None) -> tuple[tuple[str, int], ...]:
    """ConsumerProtocolAssignment bytes -> sorted ((topic, partition), ...).

    Empty or None input (a member without an assignment yet) gives (). Raises ValueError on
    malformed input.
    """
    if not data:
        return ()
    try:
        r = _Reader(data)
        r.int16()  # version
        out: list[tuple[str, int]] = []
        for _ in range(r.count()):
            topic = r.string() or ""
            for _ in range(r.count()):
                out.append((topic, r.int32()))
    except struct.error as exc:
        raise ValueError(f"malformed consumer assignment: {exc}") from None
    return tuple(sorted(out))


class Subscription(NamedTuple):
    topics: tuple[str, ...]
    user_data: bytes | None
    owned_partitions: tuple[tuple[str, int], ...]
    generation_id: int
    rack_id: str | None


def decode_subscription(data: bytes | None) -> Subscription:
    """ConsumerProtocolSubscription bytes (v0-3) -> Subscription."""
    if not data:
        return Subscription((), None, (), -1, None)
    try:
        r = _Reader(data)
        version = r.int16()
        topics = tuple(r.string() or "" for _ in range(r.count()))
        user_data = r.bytes_() if r.remaining >= 4 else None
        owned: list[tuple[str, int]] = []
        generation, rack = -1, None
        if version >= 1 and r.remaining >= 4:
            for _ in range(r.count()):
                topic = r.string() or ""
                owned.extend((topic, r.int32()) for _ in range(r.count()))
        if version >= 2 and r.remaining >= 4:
            generation = r.int32()
        if version >= 3 and r.remaining >= 2:
            rack = r.string()
    except struct.error as exc:
        raise ValueError(f"malformed consumer subscription: {exc}") from None
    return Subscription(topics, user_data, tuple(sorted(owned)), generation, rack)


def encode_assignment(assignment: dict[str, list[int]] | list[tuple[str, int]],
                      version: int = 0, user_data: bytes | None = None) -> bytes:
    """ConsumerProtocolAssignment bytes (used by our simple consumer and tests)."""
    if not isinstance(assignment, dict):
        grouped: dict[str, list[int]] = {}
        for topic, partition in assignment:
            grouped.setdefault(topic, []).append(partition)
        assignment = grouped
    out = bytearray(_H.pack(version))
    out += _I.pack(len(assignment))
    for topic, partitions in assignment.items():
        raw = topic.encode()
        out += _H.pack(len(raw)) + raw + _I.pack(len(partitions))
        for p in partitions:
            out += _I.pack(p)
    out += _I.pack(-1) if user_data is None else _I.pack(len(user_data)) + user_data
    return bytes(out)
