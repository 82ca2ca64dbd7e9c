"""The record formats of the internal topic __consumer_offsets, as Apache Kafka writes them.

Every record's key and value start with an int16 schema version. Keys:

* OffsetCommitKey v0/v1 (identical):  group string, topic string, partition int32
* GroupMetadataKey v2:                group string

Values (a null value is a tombstone: the offset, or the group, was deleted):

* OffsetCommitValue v0: offset int64, metadata string, timestamp int64
  v1: offset, metadata, commit_timestamp int64, expire_timestamp int64
  v2: offset, metadata, commit_timestamp
  v3: offset, leader_epoch int32, metadata, commit_timestamp          (what we write)
* GroupMetadataValue v0: protocol_type string, generation int32, protocol nullable string,
  leader nullable string, members [member_id, client_id, client_host, session_timeout int32,
  subscription bytes, assignment bytes]
  v1: + rebalance_timeout int32 (after client_host)
  v2: + current_state_timestamp int64 (after leader)
  v3: + group_instance_id nullable string (after member_id)             (what we write)

Strings are int16-length-prefixed UTF-8 (-1 = null), bytes are int32-length-prefixed.

Why hand-written: kio generates Kafka's *API* messages (clients/.../common/message) but not the
group coordinator's record schemas (GroupMetadataKey.json etc. live in Kafka's
group-coordinator module), and these formats are small, fixed and non-flexible up to the
versions above, so a few struct calls are clearer than a generated codec. Keeping Kafka's exact
bytes means a dump of our __consumer_offsets reads like Kafka's (kafka-dump-log's offsets
decoder understands it). The flexible v4 values of newer Kafka versions are not read.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from core.common.errors import CorruptRecordError

OFFSET_COMMIT_KEY_VERSION = 1
GROUP_METADATA_KEY_VERSION = 2
OFFSET_COMMIT_VALUE_VERSION = 3
#: written instead of v3 when the commit carries an explicit expire timestamp (OffsetCommit v2-4)
OFFSET_COMMIT_VALUE_VERSION_WITH_EXPIRY = 1
GROUP_METADATA_VALUE_VERSION = 3

_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")


@dataclass(frozen=True, slots=True)
class OffsetKey:
    """Key of a committed offset."""

    group: str
    topic: str
    partition: int


@dataclass(frozen=True, slots=True)
class GroupKey:
    """Key of a group's metadata."""

    group: str


@dataclass(frozen=True, slots=True)
class OffsetValue:
    """A committed offset as stored (times in ms since the epoch)."""

    offset: int
    metadata: str = ""
    commit_timestamp: int = -1
    leader_epoch: int = -1
    expire_timestamp: int | None = None


@dataclass(frozen=True, slots=True)
class MemberValue:
    """One member inside a GroupMetadataValue."""

    member_id: str
    client_id: str
    client_host: str
    session_timeout: int
    rebalance_timeout: int
    subscription: bytes
    assignment: bytes
    group_instance_id: str | None = None


@dataclass(frozen=True, slots=True)
class GroupValue:
    """A group's metadata as stored after each completed rebalance."""

    protocol_type: str
    generation: int
    protocol: str | None
    leader: str | None
    current_state_timestamp: int = -1
    members: tuple[MemberValue, ...] = field(default_factory=tuple)


# ------------------------------------------------------------------ writers


class _Writer:
    __slots__ = ("parts",)

    def __init__(self, version: int) -> None:
        self.parts: list[bytes] = [_I16.pack(version)]

    def i32(self, value: int) -> _Writer:
        self.parts.append(_I32.pack(value))
        return self

    def i64(self, value: int) -> _Writer:
        self.parts.append(_I64.pack(value))
        return self

    def string(self, value: str | None) -> _Writer:
        if value is None:
            self.parts.append(_I16.pack(-1))
        else:
            raw = value.encode("utf-8")
            if len(raw) > 0x7FFF:
                raise ValueError("string longer than 32767 bytes")
            self.parts.append(_I16.pack(len(raw)))
            self.parts.append(raw)
        return self

    def bytes_(self, value: bytes | None) -> _Writer:
        if value is None:
            self.parts.append(_I32.pack(-1))
        else:
            self.parts.append(_I32.pack(len(value)))
            self.parts.append(bytes(value))
        return self

    def done(self) -> bytes:
        return b"".join(self.parts)


def encode_offset_key(group: str, topic: str, partition: int) -> bytes:
    """OffsetCommitKey v1."""
    return _Writer(OFFSET_COMMIT_KEY_VERSION).string(group).string(topic).i32(partition).done()


def encode_group_key(group: str) -> bytes:
    """GroupMetadataKey v2."""
    return _Writer(GROUP_METADATA_KEY_VERSION).string(group).done()


def encode_offset_value(value: OffsetValue) -> bytes:
    """OffsetCommitValue v3, or v1 when an explicit expire timestamp must be kept (as Kafka)."""
    if value.expire_timestamp is not None:
        return (_Writer(OFFSET_COMMIT_VALUE_VERSION_WITH_EXPIRY).i64(value.offset)
                .string(value.metadata).i64(value.commit_timestamp)
                .i64(value.expire_timestamp).done())
    return (_Writer(OFFSET_COMMIT_VALUE_VERSION).i64(value.offset).i32(value.leader_epoch)
            .string(value.metadata).i64(value.commit_timestamp).done())


def encode_group_value(value: GroupValue) -> bytes:
    """GroupMetadataValue v3."""
    w = (_Writer(GROUP_METADATA_VALUE_VERSION).string(value.protocol_type).i32(value.generation)
         .string(value.protocol).string(value.leader).i64(value.current_state_timestamp))
    w.i32(len(value.members))
    for m in value.members:
        (w.string(m.member_id).string(m.group_instance_id).string(m.client_id)
         .string(m.client_host).i32(m.rebalance_timeout).i32(m.session_timeout)
         .bytes_(m.subscription).bytes_(m.assignment))
    return w.done()


# ------------------------------------------------------------------ readers


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.pos = 0

    def _take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise CorruptRecordError("__consumer_offsets record truncated")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def i16(self) -> int:
        return _I16.unpack(self._take(2))[0]

    def i32(self) -> int:
        return _I32.unpack(self._take(4))[0]

    def i64(self) -> int:
        return _I64.unpack(self._take(8))[0]

    def nullable_string(self) -> str | None:
        n = self.i16()
        if n == -1:
            return None
        return bytes(self._take(n)).decode("utf-8")

    def string(self) -> str:
        value = self.nullable_string()
        if value is None:
            raise CorruptRecordError("null where a string is required")
        return value

    def bytes_(self) -> bytes:
        n = self.i32()
        if n == -1:
            return b""
        return bytes(self._take(n))


def decode_key(data: bytes) -> OffsetKey | GroupKey:
    """Decode a __consumer_offsets key (OffsetCommitKey v0-1 or GroupMetadataKey v2)."""
    r = _Reader(data)
    version = r.i16()
    if version in (0, 1):
        return OffsetKey(r.string(), r.string(), r.i32())
    if version == 2:
        return GroupKey(r.string())
    raise CorruptRecordError(f"unknown __consumer_offsets key version {version}")


def decode_offset_value(data: bytes) -> OffsetValue:
    """Decode OffsetCommitValue v0-3."""
    r = _Reader(data)
    version = r.i16()
    if version == 0:
        offset, metadata, ts = r.i64(), r.string(), r.i64()
        return OffsetValue(offset, metadata, ts)
    if version == 1:
        offset, metadata, ts, expire = r.i64(), r.string(), r.i64(), r.i64()
        return OffsetValue(offset, metadata, ts, expire_timestamp=None if expire < 0 else expire)
    if version == 2:
        offset, metadata, ts = r.i64(), r.string(), r.i64()
        return OffsetValue(offset, metadata, ts)
    if version == 3:
        offset, epoch, metadata, ts = r.i64(), r.i32(), r.string(), r.i64()
        return OffsetValue(offset, metadata, ts, leader_epoch=epoch)
    raise CorruptRecordError(f"unsupported OffsetCommitValue version {version}")


def decode_group_value(data: bytes) -> GroupValue:
    """Decode GroupMetadataValue v0-3."""
    r = _Reader(data)
    version = r.i16()
    if not 0 <= version <= 3:
        raise CorruptRecordError(f"unsupported GroupMetadataValue version {version}")
    protocol_type = r.string()
    generation = r.i32()
    protocol = r.nullable_string()
    leader = r.nullable_string()
    state_ts = r.i64() if version >= 2 else -1
    members = []
    for _ in range(r.i32()):
        member_id = r.string()
        instance_id = r.nullable_string() if version >= 3 else None
        client_id = r.string()
        client_host = r.string()
        rebalance_timeout = r.i32() if version >= 1 else -1
        session_timeout = r.i32()
        if version == 0:
            rebalance_timeout = session_timeout
        subscription = r.bytes_()
        assignment = r.bytes_()
        members.append(MemberValue(member_id, client_id, client_host, session_timeout,
                                   rebalance_timeout, subscription, assignment, instance_id))
    return GroupValue(protocol_type, generation, protocol, leader, state_ts, tuple(members))
