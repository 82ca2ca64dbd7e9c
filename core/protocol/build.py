"""Build kio message objects of any version from plain Python values.

kio generates one dataclass per API version, and nested types differ per version. Handlers
describe a response once, as keyword arguments (nested entities as dicts or lists of dicts),
and `build` keeps the fields the target version has, converting milliseconds to the
timedelta / datetime types kio uses and ints to ErrorCode. Per-class field plans are cached.
"""

from __future__ import annotations

import dataclasses
import datetime
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


def _converter(kafka_type: str | None, annotation: Any) -> Any:
    if kafka_type in ("timedelta_i32", "timedelta_i64"):
        return lambda v: datetime.timedelta(milliseconds=v) if isinstance(v, int) else v
    if kafka_type == "datetime_i64":
        return lambda v: ms_to_datetime(v) if (v is None or isinstance(v, int)) else v
    if kafka_type == "error_code":
        return lambda v: v if isinstance(v, ErrorCode) else ErrorCode(int(v))
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is tuple and args and dataclasses.is_dataclass(args[0]):
        nested = args[0]
        return lambda v: tuple(x if isinstance(x, nested) else build(nested, **x) for x in v)
    if origin is tuple:
        return tuple
    if dataclasses.is_dataclass(annotation):
        return lambda v: v if (v is None or isinstance(v, annotation)) else build(annotation, **v)
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1 and dataclasses.is_dataclass(inner[0]):
            entity = inner[0]
            return lambda v: v if (v is None or isinstance(v, entity)) else build(entity, **v)
    return None


@cache
def _plan(cls: type) -> dict[str, tuple[Any, bool]]:
    hints = typing.get_type_hints(cls)
    plan: dict[str, tuple[Any, bool]] = {}
    for f in dataclasses.fields(cls):
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        plan[f.name] = (_converter(f.metadata.get("kafka_type"), hints[f.name]), required)
    return plan


def _zero(cls: type, name: str) -> Any:
    hint = typing.get_type_hints(cls)[name]
    if typing.get_origin(hint) is tuple:
        return ()
    if hint is bool:
        return False
    if hint is str:
        return ""
    return 0


def build(cls: type[T], **values: Any) -> T:
    """Instantiate kio entity `cls`, ignoring values for fields this version lacks.

    Missing required fields get a neutral zero (0, "", (), False), as an absent field in
    an older version would; nested entities may be dicts.
    """
    kwargs: dict[str, Any] = {}
    for name, (convert, required) in _plan(cls).items():
        if name in values:
            value = values[name]
            kwargs[name] = convert(value) if (convert is not None and value is not None) else value
        elif required:
            kwargs[name] = _zero(cls, name)
    return cls(**kwargs)
