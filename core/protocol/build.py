"""Build kio message objects of any version from plain Python values.

kio generates one dataclass per API version, and nested types differ per version. Handlers
describe a response once, as keyword arguments (nested entities as dicts or lists of dicts),
and `build` keeps the fields the target version has, converting milliseconds to the
timedelta / datetime types kio uses and ints to ErrorCode. Per-class field plans are cached.
"""

from __future__ import annotations

import dataclasses
import datetime
import types
import typing
from functools import cache
from typing import Any, TypeVar

from kio.schema.errors import ErrorCode

T = TypeVar("T")

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


def ms_to_datetime(ms: int | None) -> datetime.datetime | None:
    """Kafka timestamps (ms since epoch, -1 for none) as kio's aware datetimes."""
    if ms is None or ms < 0:
        return None
    return _EPOCH + datetime.timedelta(milliseconds=ms)


def datetime_to_ms(value: datetime.datetime | None) -> int:
    if value is None:
        return -1
    return (value - _EPOCH) // datetime.timedelta(milliseconds=1)


def timedelta_to_ms(value: datetime.timedelta | int | None) -> int:
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    return value // datetime.timedelta(milliseconds=1)


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    """`X | None` -> (X, True); anything else -> (annotation, False)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            return inner[0], len(inner) < len(args)
    return annotation, False


def _converter(kafka_type: str | None, annotation: Any) -> Any:
    if kafka_type in ("timedelta_i32", "timedelta_i64"):
        return lambda v: datetime.timedelta(milliseconds=v) if isinstance(v, int) else v
    if kafka_type == "datetime_i64":
        return lambda v: ms_to_datetime(v) if (v is None or isinstance(v, int)) else v
    if kafka_type == "error_code":
        return lambda v: v if isinstance(v, ErrorCode) else ErrorCode(int(v))
    annotation, _optional = _unwrap_optional(annotation)
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is tuple and args and dataclasses.is_dataclass(args[0]):
        nested = args[0]
        return lambda v: tuple(x if isinstance(x, nested) else build(nested, **x) for x in v)
    if origin is tuple:
        return tuple
    if dataclasses.is_dataclass(annotation):
        entity = annotation
        return lambda v: v if isinstance(v, entity) else build(entity, **v)
    return None


def _zero(kafka_type: str | None, annotation: Any) -> Any:
    """The neutral value of a required field that a caller did not give."""
    annotation, optional = _unwrap_optional(annotation)
    if optional:
        return None
    if kafka_type in ("timedelta_i32", "timedelta_i64"):
        return datetime.timedelta(0)
    if kafka_type == "error_code":
        return ErrorCode.none
    if typing.get_origin(annotation) is tuple:
        return ()
    if annotation is bool:
        return False
    if annotation is str:
        return ""
    return 0


@cache
def _plan(cls: type) -> dict[str, tuple[Any, bool, Any]]:
    """field name -> (converter, required, zero value), computed once per kio class."""
    hints = typing.get_type_hints(cls)
    plan: dict[str, tuple[Any, bool, Any]] = {}
    for f in dataclasses.fields(cls):
        kafka_type = f.metadata.get("kafka_type")
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        plan[f.name] = (_converter(kafka_type, hints[f.name]), required,
                        _zero(kafka_type, hints[f.name]))
    return plan


def build(cls: type[T], **values: Any) -> T:
    """Instantiate kio entity `cls`, ignoring values for fields this version lacks.

    Missing required fields get a neutral zero (0, "", (), False, None for nullable fields,
    a zero timedelta, ErrorCode.none), as an absent field in an older version would; nested
    entities (also under nullable fields) may be dicts.
    """
    kwargs: dict[str, Any] = {}
    for name, (convert, required, zero) in _plan(cls).items():
        if name in values:
            value = values[name]
            kwargs[name] = convert(value) if (convert is not None and value is not None) else value
        elif required:
            kwargs[name] = zero
    return cls(**kwargs)
