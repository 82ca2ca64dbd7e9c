"""Refuse request bodies whose arrays declare more elements than the frame has bytes left.

kio's native readers reserve room for an array from its declared length before reading the
elements, so a 20-byte frame declaring a compact array of 2**35 elements makes the broker ask
for hundreds of GB: the allocation fails and the Rust allocator aborts the whole process
(found by tests/fuzz). Kafka refuses such a request ("Tried to allocate a collection of size
N, but there are only M bytes remaining"); `check_array_lengths` walks the body the same way
before kio decodes it (no registered request version has a tagged field holding an array or
an entity, so tagged fields are skipped by size). Only the structure is walked: scalars,
strings and arrays of array-free entities are skipped by kio's native field readers in one
call each, record bytes by their length (never copied), so the cost is a few native calls
per request (per partition for Produce, per topic for Fetch), never per record.

The same walk refuses a null where the schema says non-nullable: kio decodes a string or
array length of -1 into None whatever the schema, and handlers then failed on it (found by
the fuzz tests: `TypeError: 'NoneType' object is not iterable` in a dozen handlers, or an
unencodable response); Kafka's generated readers refuse it ("non-nullable field X was
serialized as null").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from functools import cache
from typing import Any

from kio.serial._introspect import (
    EntityField,
    EntityTupleField,
    PrimitiveTupleField,
    classify_field,
    is_optional,
)
from kio.serial._parse import get_field_reader
from kio.serial.readers import (
    read_compact_array_length,
    read_int8,
    read_int32,
    read_legacy_array_length,
    read_unsigned_varint,
)

_Reader = Callable[[Any, int], tuple[Any, int]]


class ArrayLengthError(ValueError):
    """An array length larger than the bytes that remain in the frame."""


class NullFieldError(ValueError):
    """A null (length -1) where the schema has a non-nullable string, bytes or array."""


def check_array_lengths(cls: type, buffer: Any, pos: int) -> None:
    """Raise ArrayLengthError if an array in the `cls` body at `pos` declares more elements
    than bytes remain, NullFieldError for a null in a non-nullable field (and let kio's
    readers raise on other malformed input)."""
    _walk(cls, buffer, pos, len(buffer))


@cache
def _must_walk(cls: type) -> bool:
    """Whether `cls` holds an array (or record bytes, skipped without a copy)."""
    for f in dataclasses.fields(cls):
        kind = classify_field(f)
        if isinstance(kind, (PrimitiveTupleField, EntityTupleField)):
            return True
        if f.metadata.get("kafka_type") == "records":
            return True
        if isinstance(kind, EntityField) and _must_walk(kind.type_):
            return True
    return False


@cache
def _steps(cls: type) -> tuple[tuple[str, Any, Any, str, bool], ...]:
    """Per field in wire order, (kind, a, b, field name, nullable): ("skip", native reader)
    for fields that cannot hold an array, ("array", length reader, native reader) for
    arrays of array-free items, ("records", flexible), ("entity", -, sub class) and
    ("entities", length reader, sub class)."""
    flexible = cls.__flexible__
    length = read_compact_array_length if flexible else read_legacy_array_length
    steps: list[tuple[str, Any, Any, str, bool]] = []
    for f in dataclasses.fields(cls):
        if "tag" in f.metadata:
            continue  # in the tagged section: see _skip_tagged
        kind = classify_field(f)
        nullable = is_optional(f)
        if f.metadata.get("kafka_type") == "records":
            steps.append(("records", flexible, None, f.name, nullable))
            continue
        reader = get_field_reader(cls, f, False, False)
        if isinstance(kind, EntityTupleField) and _must_walk(kind.type_):
            steps.append(("entities", length, kind.type_, f.name, nullable))
        elif isinstance(kind, (PrimitiveTupleField, EntityTupleField)):
            item = kind.type_ if isinstance(kind, EntityTupleField) else None
            steps.append(("array", length, (reader, item), f.name, nullable))
        elif isinstance(kind, EntityField) and _must_walk(kind.type_):
            steps.append(("entity", None, kind.type_, f.name, nullable))
        else:
            item = kind.type_ if isinstance(kind, EntityField) else None
            steps.append(("skip", reader, item, f.name, nullable))
    return tuple(steps)


#: kafka types kio may decode to None (besides arrays and entities)
_MAY_BE_NULL = frozenset({"string", "bytes", "records", "uuid"})


@cache
def _required(cls: type) -> tuple[tuple[str, type | None], ...]:
    """Non-nullable fields of an array-free entity: (name, entity class or None)."""
    out = []
    for f in dataclasses.fields(cls):
        if is_optional(f) or "tag" in f.metadata:
            continue
        kind = classify_field(f)
        if f.metadata.get("kafka_type") not in _MAY_BE_NULL and not isinstance(
                kind, (EntityField, PrimitiveTupleField, EntityTupleField)):
            continue  # numbers and booleans are never null
        out.append((f.name, kind.type_ if isinstance(kind, EntityField) else None))
    return tuple(out)


def _no_nulls(cls: type, entity: Any) -> None:
    """kio decodes a null (length -1) into None even where the schema forbids it."""
    for name, nested in _required(cls):
        value = getattr(entity, name)
        if value is None or (isinstance(value, tuple) and None in value):
            raise NullFieldError(f"non-nullable field {name} was serialized as null")
        if nested is not None:
            _no_nulls(nested, value)


def _check(n: int | None, pos: int, end: int) -> None:
    if n is not None and n > end - pos:
        raise ArrayLengthError(f"array of {n} elements with only {end - pos} bytes remaining")


def _null(name: str) -> NullFieldError:
    return NullFieldError(f"non-nullable field {name} was serialized as null")


def _walk(cls: type, buffer: Any, pos: int, end: int) -> int:
    for kind, a, b, name, nullable in _steps(cls):
        if kind == "skip":
            value, size = a(buffer, pos)
            pos += size
            if value is None:
                if not nullable:
                    raise _null(name)
            elif b is not None:
                _no_nulls(b, value)
        elif kind == "array":
            n, size = a(buffer, pos)
            if n is None or n < 0:
                if not nullable:
                    raise _null(name)
                pos += size
                continue
            _check(n, pos + size, end)
            reader, item = b
            value, size = reader(buffer, pos)  # kio reads the whole array: its length is sane
            pos += size
            if item is None:
                if None in value:
                    raise _null(name)
            elif _required(item):
                for element in value:
                    _no_nulls(item, element)
        elif kind == "records":  # nullable bytes: skip by the length, no copy
            if a:
                n, size = read_unsigned_varint(buffer, pos)
                length = n - 1
            else:
                length, size = read_int32(buffer, pos)
            pos += size + max(length, 0)
            if pos > end:
                raise ArrayLengthError("records run past the end of the frame")
        elif kind == "entities":
            n, size = a(buffer, pos)
            pos += size
            if n is None or n < 0:
                if not nullable:
                    raise _null(name)
                continue
            _check(n, pos, end)
            for _ in range(n):
                pos = _walk(b, buffer, pos, end)
        else:  # one nested entity holding arrays
            if nullable:
                marker, size = read_int8(buffer, pos)
                pos += size
                if marker < 0:
                    continue
            pos = _walk(b, buffer, pos, end)
    if cls.__flexible__:
        pos = _skip_tagged(buffer, pos, end)
    return pos


def _skip_tagged(buffer: Any, pos: int, end: int) -> int:
    count, size = read_unsigned_varint(buffer, pos)
    pos += size
    _check(count, pos, end)
    for _ in range(count):
        _tag, size = read_unsigned_varint(buffer, pos)
        pos += size
        length, size = read_unsigned_varint(buffer, pos)
        pos += size + length
        if pos > end:
            raise ArrayLengthError("tagged field runs past the end of the frame")
    return pos
