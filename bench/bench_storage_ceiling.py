"""How close to raw ``os.write`` can a Python append get? The append goal's ceiling, measured.

Run: ``.venv/bin/python -m bench.bench_storage_ceiling [--runs 7] [--mib 64] [--dir /tmp]``

bench_storage compares ``Log.append_as_leader`` with a bare ``os.write`` loop. This benchmark
adds the steps between the two, each a loop over the same 16 KiB producer batches into a fresh
file opened with the segment's flags, in one process, the loops interleaved run by run; the
figure is thread CPU time per batch (user + kernel), so other processes' time slices do not
count:

- ``raw``: ``os.write`` of the producer's bytes (the denominator);
- ``mandatory``: the work no append can skip: copy into the staging buffer, CRC32C check,
  16-byte prefix rewrite, one ``os.write`` (core/storage/staging.py explains the copy);
- ``in_place``: the same without the copy, the prefix rewritten in the caller's (writable)
  buffer, as Kafka's LogValidator does with the request buffer;
- ``ideal``: ``mandatory`` plus the least bookkeeping an append needs, written as tight as
  CPython allows (header unpack and checks, a lock, offsets, one index entry, a result tuple),
  without roll checks, producer state, epoch cache or time index;
- ``log``: ``Log.append_as_leader`` itself (a plain producer, no idempotence).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import struct
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from crc32c import crc32c

from bench.bench_storage import make_batches
from core.storage.log import AppendResult, Log
from core.storage.staging import STAGING_BYTES

_PREFIX = struct.Struct(">qii")
_HEADER = struct.Struct(">8xi4xbIhi8xqqhii")

Loop = Callable[[int, list], None]


def raw(fd: int, batches: list) -> None:
    write = os.write
    for batch in batches:
        write(fd, batch)


def mandatory(fd: int, batches: list) -> None:
    write, pack_into = os.write, _PREFIX.pack_into
    staging = memoryview(bytearray(STAGING_BYTES))
    for batch in batches:
        size = len(batch)
        data = staging[:size]
        data[:] = batch
        if crc32c(data[21:]) != int.from_bytes(batch[17:21], "big"):
            raise AssertionError("bad CRC")
        pack_into(data, 0, 0, size - 12, 0)
        write(fd, data)


def in_place(fd: int, batches: list) -> None:
    write, pack_into = os.write, _PREFIX.pack_into
    for batch in batches:  # bytearrays: the prefix is rewritten in the caller's buffer
        size = len(batch)
        if crc32c(memoryview(batch)[21:]) != int.from_bytes(batch[17:21], "big"):
            raise AssertionError("bad CRC")
        pack_into(batch, 0, 0, size - 12, 0)
        write(fd, batch)


class _IdealLog:
    """The least state an append must keep: next offset, size, one sparse index."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.lock = threading.Lock()
        self.leo = 0
        self.size = 0
        self.index_offsets: list[int] = []
        self.index_positions: list[int] = []
        self.staging = memoryview(bytearray(STAGING_BYTES))

    def append(self, records: bytes, leader_epoch: int) -> AppendResult | None:
        total = len(records)
        (length, magic, crc, attributes, delta, max_ts, _pid, _producer_epoch, _first_seq,
         count) = _HEADER.unpack_from(records, 0)
        if (length + 12 == total and magic == 2 and delta >= 0 and count == delta + 1
                and not attributes & 0x20):
            data = self.staging[:total]
            data[:] = records
            if crc32c(data[21:]) == crc:
                with self.lock:
                    first = self.leo
                    last = first + delta
                    _PREFIX.pack_into(data, 0, first, length, leader_epoch)
                    os.write(self.fd, data)
                    self.index_offsets.append(last)
                    self.index_positions.append(self.size)
                    self.size += total
                    self.leo = last + 1
                    return AppendResult(first, last, -1, 0, max_ts, False)
        return None


def ideal(fd: int, batches: list) -> None:
    append = _IdealLog(fd).append
    for batch in batches:
        append(batch, 0)


def timed(loop: Loop, batches: list, directory: Path) -> float:
    """Thread CPU seconds of one loop over the batches into a fresh file (or a fresh Log)."""
    work = Path(tempfile.mkdtemp(prefix="ceiling-", dir=directory))
    try:
        if loop is log:
            target = Log(work / "bench-0", {"segment.bytes": 1 << 30})
            target.append_as_leader(batches[0], leader_epoch=0)  # epoch checkpoint: not timed
            began = time.thread_time()
            log(target, batches[1:])
            elapsed = time.thread_time() - began
            target.close()
            return elapsed * len(batches) / (len(batches) - 1)
        fd = os.open(work / "f.log", os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            began = time.thread_time()
            loop(fd, batches)
            return time.thread_time() - began
        finally:
            os.close(fd)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def log(target: Log, batches: list) -> None:
    append = target.append_as_leader
    for batch in batches:
        append(batch, leader_epoch=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--mib", type=int, default=64, help="MiB appended per loop")
    parser.add_argument("--dir", default=None, help="directory for the files (default: tmp)")
    args = parser.parse_args()
    directory = Path(args.dir or tempfile.gettempdir())
    batches = make_batches(args.mib << 20, idempotent=False)
    writable = [bytearray(batch) for batch in batches]
    loops: list[tuple[str, Loop, list]] = [
        ("raw", raw, batches), ("mandatory", mandatory, batches),
        ("in_place", in_place, writable), ("ideal", ideal, batches), ("log", log, batches),
    ]
    per_batch: dict[str, list[float]] = {name: [] for name, _, _ in loops}
    for run_index in range(args.runs):
        order = loops if run_index % 2 == 0 else loops[::-1]
        for name, loop, data in order:
            per_batch[name].append(timed(loop, data, directory) / len(data) * 1e6)
    medians = {name: statistics.median(values) for name, values in per_batch.items()}
    print("| loop | µs per 16 KiB batch (CPU) | raw / loop |")
    print("| --- | ---: | ---: |")
    for name, value in medians.items():
        print(f"| {name} | {value:.2f} | {medians['raw'] / value:.1%} |")


if __name__ == "__main__":
    main()
