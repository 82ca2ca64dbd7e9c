"""Metadata records: the entries of the replicated metadata log.

Like KRaft's metadata records (TopicRecord, PartitionRecord, PartitionChangeRecord, ...), each is
a small fact; the MetadataImage is their fold. They are encoded as compact JSON: the log is
small, and a readable encoding makes the metadata log easy to inspect in a debugger.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar


@dataclass(frozen=True, slots=True)
class MetadataRecord:
    TYPE: ClassVar[str] = ""

    def encode(self) -> bytes:
        data = asdict(self)
        data["type"] = self.TYPE
        return json.dumps(data, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class RegisterBroker(MetadataRecord):
    TYPE: ClassVar[str] = "register_broker"
    broker_id: int
    host: str
    port: int
    rack: str | None
    epoch: int
    incarnation_id: str


@dataclass(frozen=True, slots=True)
class FenceBroker(MetadataRecord):
    TYPE: ClassVar[str] = "fence_broker"
    broker_id: int
    epoch: int


@dataclass(frozen=True, slots=True)
class UnfenceBroker(MetadataRecord):
    TYPE: ClassVar[str] = "unfence_broker"
    broker_id: int
    epoch: int


@dataclass(frozen=True, slots=True)
class TopicCreated(MetadataRecord):
    TYPE: ClassVar[str] = "topic"
    name: str
    topic_id: str


@dataclass(frozen=True, slots=True)
class PartitionCreated(MetadataRecord):
    TYPE: ClassVar[str] = "partition"
    topic: str
    partition: int
    replicas: list[int]
    isr: list[int]
    leader: int
    leader_epoch: int = 0
    partition_epoch: int = 0
    #: an ongoing reassignment (KIP-455), as Kafka's PartitionRecord carries it; written only
    #: in snapshots, and only when non-empty
    adding_replicas: list[int] | None = None
    removing_replicas: list[int] | None = None

    def encode(self) -> bytes:
        """As MetadataRecord.encode, without the reassignment fields when they are unset."""
        data = asdict(self)
        for name in ("adding_replicas", "removing_replicas"):
            if not data[name]:
                del data[name]
        data["type"] = self.TYPE
        return json.dumps(data, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class PartitionChanged(MetadataRecord):
    """A change of ISR, leader or replicas. None means unchanged. A leader change bumps the
    leader epoch; every change bumps the partition epoch."""

    TYPE: ClassVar[str] = "partition_change"
    topic: str
    partition: int
    isr: list[int] | None = None
    leader: int | None = None
    replicas: list[int] | None = None
    #: reassignment (KIP-455): replicas being added / removed; None = unchanged, [] = none
    adding_replicas: list[int] | None = None
    removing_replicas: list[int] | None = None

    def encode(self) -> bytes:
        """As MetadataRecord.encode, without the reassignment fields when they are unset (so
        records that do not touch a reassignment encode exactly as before)."""
        data = asdict(self)
        for name in ("adding_replicas", "removing_replicas"):
            if data[name] is None:
                del data[name]
        data["type"] = self.TYPE
        return json.dumps(data, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class TopicRemoved(MetadataRecord):
    TYPE: ClassVar[str] = "remove_topic"
    name: str


@dataclass(frozen=True, slots=True)
class ConfigChanged(MetadataRecord):
    """A topic or broker config set (value) or removed (value None)."""

    TYPE: ClassVar[str] = "config"
    resource_type: str  # "topic" | "broker"
    resource_name: str
    key: str
    value: str | None


@dataclass(frozen=True, slots=True)
class ProducerIdsAllocated(MetadataRecord):
    TYPE: ClassVar[str] = "producer_ids"
    broker_id: int
    next_producer_id: int


@dataclass(frozen=True, slots=True)
class NoOp(MetadataRecord):
    TYPE: ClassVar[str] = "noop"


@dataclass(frozen=True, slots=True)
class SnapshotHeader(MetadataRecord):
    """First record of a metadata snapshot (KRaft's SnapshotHeaderRecord): the records after
    it describe the whole image at metadata log offset end_offset - 1, so applying it starts
    from an empty image."""

    TYPE: ClassVar[str] = "snapshot_header"
    end_offset: int
    epoch: int


RECORD_TYPES: dict[str, type[MetadataRecord]] = {
    cls.TYPE: cls
    for cls in (RegisterBroker, FenceBroker, UnfenceBroker, TopicCreated, PartitionCreated,
                PartitionChanged, TopicRemoved, ConfigChanged, ProducerIdsAllocated, NoOp,
                SnapshotHeader)
}


def decode_record(data: bytes) -> MetadataRecord:
    """Decode one record; raises ValueError on anything that is not a known record."""
    raw: dict[str, Any] = json.loads(data)
    cls = RECORD_TYPES.get(raw.pop("type", None))
    if cls is None:
        raise ValueError(f"unknown metadata record {data[:60]!r}")
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in raw.items() if k in names})
