"""ClusterSnapshot <-> compact JSON-able dicts (for the timeline store).

Dataclass fields become dicts; default-valued fields are left out so a snapshot of a quiet
cluster stays small. Decoding rebuilds the same frozen dataclasses (tuples, not lists).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from core.admin.snapshot import (
    BrokerInfo,
    ClusterSnapshot,
    GroupInfo,
    GroupOffset,
    MemberInfo,
    PartitionInfo,
    QuorumInfo,
    QuorumVoter,
    TopicInfo,
)

_NESTED: dict[type, dict[str, type]] = {
    ClusterSnapshot: {"brokers": BrokerInfo, "topics": TopicInfo, "groups": GroupInfo,
                      "quorum": QuorumInfo},
    TopicInfo: {"partitions": PartitionInfo},
    GroupInfo: {"members": MemberInfo, "offsets": GroupOffset},
    QuorumInfo: {"voters": QuorumVoter, "observers": QuorumVoter},
}
_DEFAULTS: dict[type, dict[str, Any]] = {}


def _defaults(cls: type) -> dict[str, Any]:
    found = _DEFAULTS.get(cls)
    if found is None:
        found = {f.name: f.default for f in dataclasses.fields(cls)
                 if f.default is not dataclasses.MISSING}
        _DEFAULTS[cls] = found
    return found


def encode(obj: Any) -> Any:
    """A snapshot (or any of its parts) as plain dicts / lists, defaults omitted."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        defaults = _defaults(type(obj))
        out = {}
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if f.name in defaults and value == defaults[f.name]:
                continue
            out[f.name] = encode(value)
        return out
    if isinstance(obj, tuple | list):
        return [encode(x) for x in obj]
    return obj


def _tuples(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


def decode(data: dict[str, Any], cls: type = ClusterSnapshot) -> Any:
    """Rebuild ``cls`` from :func:`encode`'s output."""
    nested = _NESTED.get(cls, {})
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        if name not in names:
            continue
        inner = nested.get(name)
        if inner is not None and value is not None:
            if isinstance(value, list):
                kwargs[name] = tuple(decode(v, inner) for v in value)
            else:
                kwargs[name] = decode(value, inner)
        else:
            kwargs[name] = _tuples(value)
    return cls(**kwargs)
