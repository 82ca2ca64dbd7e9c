"""Helpers for storage tests: batches and logs in temporary directories."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.records.batch import build_batch, iter_records
from core.storage.log import Log

SMALL = {"segment.bytes": 4096, "index.interval.bytes": 256}


def batch(n: int = 1, *, ts: int = 1000, key: bytes | None = b"k", size: int = 10,
          **kwargs: Any) -> bytes:
    return build_batch([(key, b"x" * size, []) for _ in range(n)], timestamp_ms=ts, **kwargs)


def open_log(tmp_path: Path, config: dict[str, Any] | None = None, name: str = "t-0",
             **kwargs: Any) -> Log:
    return Log(tmp_path / name, dict(SMALL if config is None else config), **kwargs)


def read_all(log: Log, start: int | None = None, max_offset: int | None = None) -> list[Any]:
    """Every record from ``start`` by repeated reads (as a consumer does)."""
    offset = log.log_start_offset if start is None else start
    out = []
    while offset < (log.log_end_offset if max_offset is None else max_offset):
        piece = log.read(offset, 1000, max_offset=max_offset)
        data = piece.read_bytes()
        if not data:
            break
        pos = 0
        while pos < len(data):
            length = int.from_bytes(data[pos + 8:pos + 12], "big")
            for record in iter_records(data[pos:pos + 12 + length]):
                if record.offset >= offset:
                    out.append(record)
            pos += 12 + length
        offset = out[-1].offset + 1 if out else offset + 1
    return out
