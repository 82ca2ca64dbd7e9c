"""Splitting a byte stream into Kafka frames (a big-endian int32 size, then that many bytes)
for an `asyncio.BufferedProtocol`, with no growing buffer and no copy of large frames.

The socket reads into `FrameReader.get_buffer()`. Frames that fit the reusable scratch buffer
are cut out of it with one copy (as bytes); a larger frame gets a buffer of exactly its size,
which the socket then fills directly, and is handed over as a read-only memoryview of it (kio's
native readers refuse writable buffers). A size outside the allowed range is refused before
anything is allocated for it.

    reader = FrameReader(on_frame, min_size=4, max_size=limit)
    # BufferedProtocol.get_buffer:     return reader.get_buffer()
    # BufferedProtocol.buffer_updated: reader.buffer_updated(nbytes)   (FrameSizeError: close)
"""

from __future__ import annotations

import struct
from collections.abc import Callable

__all__ = ["SCRATCH_BYTES", "Frame", "FrameReader", "FrameSizeError"]

#: frames up to this size (with their 4-byte size) are parsed out of the scratch buffer
SCRATCH_BYTES = 64 * 1024

_SIZE = struct.Struct(">i")

#: one frame without its size: bytes (small) or a read-only memoryview (large)
Frame = bytes | memoryview


class FrameSizeError(ValueError):
    """A frame size outside [min_size, max_size]; the stream cannot be read any further."""

    def __init__(self, size: int, min_size: int, max_size: int) -> None:
        super().__init__(f"frame size {size} outside {min_size}..{max_size}")
        self.size = size


class FrameReader:
    """Cuts frames out of the bytes a socket writes into `get_buffer()`; see the module doc.

    `on_frame` is called once per complete frame, in stream order. Once `close()` is called
    (also from inside `on_frame`), nothing more is delivered and further bytes are ignored.
    """

    __slots__ = ("_closed", "_frame", "_frame_filled", "_on_frame", "_scratch", "_scratch_len",
                 "_scratch_view", "max_size", "min_size")

    def __init__(self, on_frame: Callable[[Frame], object], *, min_size: int, max_size: int,
                 scratch_bytes: int = SCRATCH_BYTES) -> None:
        if scratch_bytes < 8:
            raise ValueError(f"scratch_bytes {scratch_bytes} < 8")
        self._on_frame = on_frame
        self.min_size = min_size
        self.max_size = max_size
        self._scratch = bytearray(scratch_bytes)
        self._scratch_view = memoryview(self._scratch)
        self._scratch_len = 0  # unparsed bytes at the start of the scratch buffer
        self._frame: bytearray | None = None  # a large frame being filled by the socket
        self._frame_filled = 0
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def buffered(self) -> int:
        """Bytes received that are not yet part of a delivered frame."""
        return self._frame_filled + 4 if self._frame is not None else self._scratch_len

    def close(self) -> None:
        """Deliver nothing more; drop any partial frame."""
        self._closed = True
        self._frame = None
        self._scratch_len = 0

    def get_buffer(self) -> memoryview:
        """Where the socket writes next: the rest of a large frame, else the free scratch."""
        frame = self._frame
        if frame is not None:
            return memoryview(frame)[self._frame_filled:]
        return self._scratch_view[self._scratch_len:]

    def buffer_updated(self, nbytes: int) -> None:
        """`nbytes` were written into the last `get_buffer()`: deliver the complete frames.

        Raises FrameSizeError (after delivering the frames before it, and closing the reader)
        for a size outside the allowed range.
        """
        if self._closed:
            return
        frame = self._frame
        if frame is None:
            self._scratch_len += nbytes
            self._parse_scratch()
            return
        self._frame_filled += nbytes
        if self._frame_filled == len(frame):
            self._frame = None
            self._frame_filled = 0
            self._on_frame(memoryview(frame).toreadonly())

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Take bytes pushed by a caller (as a plain Protocol's data_received would)."""
        view = memoryview(data).cast("B")
        while view and not self._closed:
            target = self.get_buffer()
            n = min(len(target), len(view))
            target[:n] = view[:n]
            target.release()
            view = view[n:]
            self.buffer_updated(n)

    def _parse_scratch(self) -> None:
        scratch, view = self._scratch, self._scratch_view
        end = self._scratch_len
        pos = 0
        while end - pos >= 4:
            (size,) = _SIZE.unpack_from(scratch, pos)
            if size < self.min_size or size > self.max_size:
                self.close()
                raise FrameSizeError(size, self.min_size, self.max_size)
            if end - pos - 4 >= size:
                frame = bytes(view[pos + 4:pos + 4 + size])
                pos += 4 + size
                self._on_frame(frame)
                if self._closed:
                    return
                continue
            if 4 + size > len(scratch):
                # too large for the scratch buffer: its own buffer, filled by the socket
                have = end - pos - 4
                big = bytearray(size)
                big[:have] = view[pos + 4:end]
                self._frame, self._frame_filled = big, have
                pos = end
            break
        rest = end - pos
        if pos and rest:
            scratch[:rest] = view[pos:end]  # same length: no resize
        self._scratch_len = rest
