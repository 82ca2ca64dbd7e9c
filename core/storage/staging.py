"""A per-thread staging buffer for the produce fast path.

A produce payload arrives as an immutable ``bytes`` (kio copies it out of the request frame).
The leader must rewrite its first 16 bytes (base offset, length, partition leader epoch) and
check its CRC32C before writing it. Copying the batch once into a small buffer that stays in the
CPU cache, checking the CRC there, rewriting the prefix in place and writing it with one
``os.write`` is cheaper than a CRC pass over the cold payload followed by an
``os.writev(prefix, rest)``: the copy streams the payload from memory faster than the CRC loop
does, the CRC and the kernel's copy then read cache-hot bytes, and the kernel gets a single
contiguous buffer. Measured in bench/bench_storage.py and docs/bench-storage.md.

Batches larger than :data:`STAGING_BYTES` are written zero-copy with ``os.writev`` instead (the
copy stops paying once the batch no longer fits in the CPU's L2 cache).
"""

from __future__ import annotations

import threading

__all__ = ["STAGING_BYTES", "staging"]

STAGING_BYTES = 256 * 1024


class _Staging(threading.local):
    """One buffer per thread: appends on different threads never share it."""

    def __init__(self) -> None:
        self.view = memoryview(bytearray(STAGING_BYTES))


#: ``staging.view`` is this thread's buffer (STAGING_BYTES long, reused by every append).
staging = _Staging()
