"""RecordBatch v2 (magic 2): header parsing, validation, offset assignment, records, building.

Batches are handled as bytes. Everything on the produce and fetch hot paths (``read_header``,
``validate_batches``, ``assign_offsets``) works on the 61-byte batch header only and never looks
at the records; ``iter_records``, ``keyless_records`` and ``build_batch`` do per-record work for
the few places that need it (internal topics, the console, compaction, ListOffsets by timestamp,
the null-key check of compacted topics).

Layout (big endian), as in Kafka's DefaultRecordBatch::

    0  baseOffset int64          21 attributes int16        43 producerId int64
    8  batchLength int32         23 lastOffsetDelta int32   51 producerEpoch int16
    12 partitionLeaderEpoch i32  27 baseTimestamp int64     53 baseSequence int32
    16 magic int8                35 maxTimestamp int64      57 recordsCount int32
    17 crc uint32 (CRC32C of bytes 21..end)                  61 records
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import cramjam
from crc32c import crc32c

from core.common.errors import (
    CorruptRecordError,
    InvalidRecordError,
    RecordTooLargeError,
)

__all__ = [
    "ATTR_CONTROL",
    "ATTR_DELETE_HORIZON",
    "ATTR_LOG_APPEND_TIME",
    "ATTR_TRANSACTIONAL",
    "COMPRESSION_GZIP",
    "COMPRESSION_LZ4",
    "COMPRESSION_NONE",
    "COMPRESSION_SNAPPY",
    "COMPRESSION_ZSTD",
    "HEADER_SIZE",
    "LOG_OVERHEAD",
    "AssignResult",
    "BatchHeader",
    "Record",
    "assign_offsets",
    "build_batch",
    "compress",
    "decompress",
    "intact_prefix",
    "iter_batches",
    "iter_records",
    "keyless_records",
    "read_header",
    "validate_batches",
]

HEADER_SIZE = 61  # full v2 batch header, up to the first record
LOG_OVERHEAD = 12  # baseOffset + batchLength, the part batchLength does not count
MIN_BATCH_LENGTH = HEADER_SIZE - LOG_OVERHEAD  # 49
CRC_START = 21
MAGIC = 2

COMPRESSION_NONE = 0
COMPRESSION_GZIP = 1
COMPRESSION_SNAPPY = 2
COMPRESSION_LZ4 = 3
COMPRESSION_ZSTD = 4
ATTR_TIMESTAMP_TYPE = 0x08
ATTR_LOG_APPEND_TIME = ATTR_TIMESTAMP_TYPE
ATTR_TRANSACTIONAL = 0x10
ATTR_CONTROL = 0x20
ATTR_DELETE_HORIZON = 0x40

COMPRESSION_NAMES = {"uncompressed": 0, "none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}

_HEADER = struct.Struct(">qiibIhiqqqhii")
_PREFIX = struct.Struct(">qi")  # baseOffset, batchLength
_MAGIC_AT = 16
_Q = struct.Struct(">q")
_I = struct.Struct(">i")
_CRC = struct.Struct(">I")
_ATTR = struct.Struct(">h")
_TS2 = struct.Struct(">qq")  # baseTimestamp, maxTimestamp at 27
_INT32_MAX = 2**31 - 1


class BatchHeader(NamedTuple):
    """The fixed 61-byte header of a v2 record batch."""

    base_offset: int
    batch_length: int
    partition_leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    records_count: int

    @property
    def size(self) -> int:
        """Total bytes of the batch on disk and on the wire."""
        return self.batch_length + LOG_OVERHEAD

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def next_offset(self) -> int:
        return self.base_offset + self.last_offset_delta + 1

    @property
    def compression(self) -> int:
        return self.attributes & 7

    @property
    def timestamp_type(self) -> int:
        """0 = CreateTime, 1 = LogAppendTime."""
        return 1 if self.attributes & ATTR_TIMESTAMP_TYPE else 0

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & ATTR_TRANSACTIONAL)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & ATTR_CONTROL)

    @property
    def has_producer_id(self) -> bool:
        return self.producer_id >= 0

    @property
    def last_sequence(self) -> int:
        """Sequence of the last record (wraps at int32 max as Kafka does); -1 without one."""
        if self.base_sequence < 0:
            return -1
        seq = self.base_sequence + self.last_offset_delta
        return seq - _INT32_MAX - 1 if seq > _INT32_MAX else seq


class Record(NamedTuple):
    """One record of a batch, with its absolute offset and timestamp."""

    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]
    attributes: int = 0
    is_control: bool = False


class AssignResult(NamedTuple):
    """What assign_offsets did to a produce payload."""

    first_offset: int
    last_offset: int
    max_timestamp: int
    offset_of_max_timestamp: int
    headers: list[BatchHeader]


def read_header(buf: bytes | bytearray | memoryview, pos: int = 0) -> BatchHeader:
    """Parse the batch header at ``pos`` (no validation beyond the buffer being long enough)."""
    if len(buf) - pos < HEADER_SIZE:
        raise CorruptRecordError(
            f"record batch header truncated: {len(buf) - pos} bytes at position {pos}"
        )
    return BatchHeader._make(_HEADER.unpack_from(buf, pos))


def validate_batches(
    buf: bytes | bytearray | memoryview, *, max_batch_bytes: int | None = None
) -> list[BatchHeader]:
    """Walk every batch of a payload without touching records; return their headers.

    Checks, as Kafka does: at least one batch (InvalidRecordError); each batch is complete and its
    sizes consistent, nothing trails the last batch (CorruptRecordError); magic is 2 (magic 0/1
    -> InvalidRecordError as for produce v3+, any other -> CorruptRecordError); the CRC32C matches
    (CorruptRecordError); a batch is not larger than ``max_batch_bytes`` (RecordTooLargeError).
    """
    total = len(buf)
    if total == 0:
        raise InvalidRecordError("produce request must contain at least one record batch")
    headers: list[BatchHeader] = []
    append = headers.append
    unpack = _HEADER.unpack_from
    make = BatchHeader._make
    pos = 0
    view = buf if isinstance(buf, memoryview) else memoryview(buf)
    while pos < total:
        remaining = total - pos
        if remaining < HEADER_SIZE:
            raise CorruptRecordError(
                f"{remaining} trailing bytes at position {pos} are not a record batch"
            )
        fields = unpack(buf, pos)
        length = fields[1]
        magic = fields[3]
        if magic != MAGIC:
            if magic in (0, 1):
                raise InvalidRecordError(
                    f"only record batches with magic 2 are allowed, got magic {magic}"
                )
            raise CorruptRecordError(f"invalid magic {magic} at position {pos}")
        if length < MIN_BATCH_LENGTH:
            raise CorruptRecordError(f"record batch length {length} is smaller than its header")
        end = pos + LOG_OVERHEAD + length
        if end > total:
            raise CorruptRecordError(
                f"record batch at position {pos} claims {length + LOG_OVERHEAD} bytes, "
                f"only {remaining} present"
            )
        if max_batch_bytes is not None and length + LOG_OVERHEAD > max_batch_bytes:
            raise RecordTooLargeError(
                f"record batch of {length + LOG_OVERHEAD} bytes exceeds the maximum of "
                f"{max_batch_bytes} bytes"
            )
        if crc32c(view[pos + CRC_START:end]) != fields[4]:
            raise CorruptRecordError(f"CRC32C mismatch in record batch at position {pos}")
        if fields[12] < 0 or fields[6] < 0:
            raise CorruptRecordError(f"negative record count or offset delta at position {pos}")
        append(make(fields))
        pos = end
    return headers


def intact_prefix(buf: bytes | bytearray | memoryview) -> tuple[int, bool]:
    """Length of the leading run of whole batches whose CRC32C matches, and whether anything
    after it is damaged (a CRC mismatch, or bytes that do not frame as a batch).

    Used on the fetch path so that a byte flipped on disk is never served as good data: the
    intact prefix is served, the damage is reported. One CRC pass per batch, no record work.
    """
    view = buf if isinstance(buf, memoryview) else memoryview(buf)
    end = 0
    for pos, header in iter_batches(buf):
        if header.magic != MAGIC or crc32c(view[pos + CRC_START:pos + header.size]) != header.crc:
            return pos, True
        end = pos + header.size
    return end, end != len(buf)


def iter_batches(buf: bytes | bytearray | memoryview) -> Iterator[tuple[int, BatchHeader]]:
    """Yield (position, header) of each complete batch; stop silently at an incomplete tail."""
    total = len(buf)
    pos = 0
    unpack = _HEADER.unpack_from
    while total - pos >= HEADER_SIZE:
        header = BatchHeader._make(unpack(buf, pos))
        size = header.batch_length + LOG_OVERHEAD
        if header.batch_length < MIN_BATCH_LENGTH or pos + size > total:
            return
        yield pos, header
        pos += size


def assign_offsets(
    buf: bytearray,
    first_offset: int,
    *,
    leader_epoch: int,
    log_append_time_ms: int | None,
    headers: list[BatchHeader] | None = None,
) -> AssignResult:
    """Assign offsets in place, as the leader does on append.

    Writes each batch's base offset and partition leader epoch (both outside the CRC). With
    ``log_append_time_ms`` (message.timestamp.type=LogAppendTime) it also sets the timestamp type
    bit, the max timestamp and the base timestamp to that time (as Kafka does) and recomputes the
    CRC. ``headers`` may be passed when the payload was already validated. The offset of the max
    timestamp is the last offset of the batch holding it (Kafka's shallow value for v2).
    """
    if headers is None:
        headers = validate_batches(buf)
    view = memoryview(buf)
    offset = first_offset
    max_ts = -1
    offset_of_max = -1
    out: list[BatchHeader] = []
    pos = 0
    for header in headers:
        last = offset + header.last_offset_delta
        _Q.pack_into(buf, pos, offset)
        _I.pack_into(buf, pos + 12, leader_epoch)
        if log_append_time_ms is not None:
            attributes = header.attributes | ATTR_LOG_APPEND_TIME
            _ATTR.pack_into(buf, pos + 21, attributes)
            _TS2.pack_into(buf, pos + 27, log_append_time_ms, log_append_time_ms)
            crc = crc32c(view[pos + CRC_START:pos + LOG_OVERHEAD + header.batch_length])
            _CRC.pack_into(buf, pos + 17, crc)
            header = header._replace(
                attributes=attributes, base_timestamp=log_append_time_ms,
                max_timestamp=log_append_time_ms, crc=crc,
            )
        header = header._replace(base_offset=offset, partition_leader_epoch=leader_epoch)
        if header.max_timestamp > max_ts:
            max_ts = header.max_timestamp
            offset_of_max = last
        out.append(header)
        offset = last + 1
        pos += header.batch_length + LOG_OVERHEAD
    return AssignResult(first_offset, offset - 1, max_ts, offset_of_max, out)


# --- compression ------------------------------------------------------------------------------

_XERIAL_MAGIC = b"\x82SNAPPY\x00"


def _snappy_decompress(data: bytes | memoryview) -> bytes:
    raw = bytes(data)
    if raw.startswith(_XERIAL_MAGIC):
        out = bytearray()
        pos = 16  # magic (8) + version (4) + compatible version (4)
        while pos < len(raw):
            (size,) = struct.unpack_from(">i", raw, pos)
            pos += 4
            out += bytes(cramjam.snappy.decompress_raw(raw[pos:pos + size]))
            pos += size
        return bytes(out)
    return bytes(cramjam.snappy.decompress_raw(raw))


def decompress(codec: int, data: bytes | memoryview) -> bytes:
    """Decompress a batch's records section (gzip, snappy raw or xerial, LZ4 frame, zstd)."""
    try:
        if codec == COMPRESSION_NONE:
            return bytes(data)
        if codec == COMPRESSION_GZIP:
            return bytes(cramjam.gzip.decompress(bytes(data)))
        if codec == COMPRESSION_SNAPPY:
            return _snappy_decompress(data)
        if codec == COMPRESSION_LZ4:
            return bytes(cramjam.lz4.decompress(bytes(data)))
        if codec == COMPRESSION_ZSTD:
            return bytes(cramjam.zstd.decompress(bytes(data)))
    except Exception as exc:  # cramjam raises its own DecompressionError
        raise CorruptRecordError(f"cannot decompress records ({codec=}): {exc}") from None
    raise CorruptRecordError(f"unknown compression codec {codec}")


def compress(codec: int, data: bytes) -> bytes:
    """Compress a records section the way Kafka's Java client does (snappy: xerial framing)."""
    if codec == COMPRESSION_NONE:
        return data
    if codec == COMPRESSION_GZIP:
        return bytes(cramjam.gzip.compress(data))
    if codec == COMPRESSION_SNAPPY:
        out = bytearray(_XERIAL_MAGIC + struct.pack(">ii", 1, 1))
        block = 32 * 1024
        for start in range(0, max(len(data), 1), block):
            chunk = bytes(cramjam.snappy.compress_raw(data[start:start + block]))
            out += struct.pack(">i", len(chunk)) + chunk
        return bytes(out)
    if codec == COMPRESSION_LZ4:
        return bytes(cramjam.lz4.compress(data))
    if codec == COMPRESSION_ZSTD:
        return bytes(cramjam.zstd.compress(data))
    raise ValueError(f"unknown compression codec {codec}")


# --- records ----------------------------------------------------------------------------------


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    """Decode a zigzag varint/varlong at pos; return (value, new position)."""
    result = 0
    shift = 0
    while True:
        try:
            byte = buf[pos]
        except IndexError:
            raise CorruptRecordError("record truncated inside a varint") from None
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (result >> 1) ^ -(result & 1), pos
        shift += 7
        if shift > 63:
            raise CorruptRecordError("varint too long")


def _bytes_field(buf: bytes, pos: int) -> tuple[bytes | None, int]:
    length, pos = _varint(buf, pos)
    if length < 0:
        return None, pos
    end = pos + length
    if end > len(buf):
        raise CorruptRecordError("record field runs past the end of the batch")
    return buf[pos:end], end


def iter_records(batch: bytes | bytearray | memoryview) -> Iterator[Record]:
    """Yield the records of one batch (decompressing it if needed), with absolute offsets.

    Records of a control batch come out with ``is_control=True`` (their key is the control
    record's type, their value its payload).
    """
    header = read_header(batch, 0)
    if header.magic != MAGIC:
        raise CorruptRecordError(f"cannot read records of a batch with magic {header.magic}")
    end = header.batch_length + LOG_OVERHEAD
    if end > len(batch):
        raise CorruptRecordError("record batch truncated")
    body = decompress(header.compression, memoryview(batch)[HEADER_SIZE:end])
    base_offset = header.base_offset
    log_append = bool(header.attributes & ATTR_TIMESTAMP_TYPE)
    base_ts = header.base_timestamp
    control = header.is_control
    pos = 0
    for _ in range(header.records_count):
        length, pos = _varint(body, pos)
        record_end = pos + length
        if record_end > len(body) or length < 0:
            raise CorruptRecordError("record runs past the end of the batch")
        attributes = body[pos]
        ts_delta, pos = _varint(body, pos + 1)
        offset_delta, pos = _varint(body, pos)
        key, pos = _bytes_field(body, pos)
        value, pos = _bytes_field(body, pos)
        count, pos = _varint(body, pos)
        headers: list[tuple[str, bytes | None]] = []
        for _h in range(count):
            hkey, pos = _bytes_field(body, pos)
            hvalue, pos = _bytes_field(body, pos)
            headers.append(((hkey or b"").decode("utf-8", "replace"), hvalue))
        if pos != record_end:
            raise CorruptRecordError("record length does not match its contents")
        timestamp = header.max_timestamp if log_append else base_ts + ts_delta
        yield Record(base_offset + offset_delta, timestamp, key, value, headers, attributes,
                     control)


def _skip_varint(body: bytes, pos: int) -> int:
    """The position after the varint at ``pos`` (its value is not needed)."""
    try:
        while body[pos] & 0x80:
            pos += 1
    except IndexError:
        raise CorruptRecordError("record truncated inside a varint") from None
    return pos + 1


def keyless_records(batch: bytes | bytearray | memoryview) -> list[int]:
    """Indexes in the batch (0 = its first record) of the records of one batch whose key is
    null, decompressing a compressed batch: what Kafka's LogValidator.validateKey checks on a
    compacted topic. Per-record work, only for the appends that need it (compacted topics):
    each record's length, timestamp and offset deltas and key length are read, its key, value
    and headers skipped.

    Raises CorruptRecordError if a record does not frame, and InvalidRecordError (as Kafka's
    record iterator) if bytes remain after the declared number of records.
    """
    header = read_header(batch, 0)
    end = header.batch_length + LOG_OVERHEAD
    if end > len(batch):
        raise CorruptRecordError("record batch truncated")
    body = decompress(header.compression, memoryview(batch)[HEADER_SIZE:end])
    size = len(body)
    out: list[int] = []
    pos = 0
    for index in range(header.records_count):
        length, pos = _varint(body, pos)
        record_end = pos + length
        if length <= 0 or record_end > size:
            raise CorruptRecordError("record runs past the end of the batch")
        # attributes (1 byte), timestampDelta (varlong), offsetDelta (varint), keyLength
        key_pos = _skip_varint(body, _skip_varint(body, pos + 1))
        key_length, after = _varint(body, key_pos)
        if after > record_end:
            raise CorruptRecordError("record runs past the end of the batch")
        if key_length < 0:
            out.append(index)
        pos = record_end
    if pos != size:
        raise InvalidRecordError("Incorrect declared batch size, records still remaining in file")
    return out


def _put_varint(out: bytearray, value: int) -> None:
    value = (value << 1) ^ (value >> 63)
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _put_bytes(out: bytearray, value: bytes | None) -> None:
    if value is None:
        out.append(1)  # zigzag(-1)
    else:
        _put_varint(out, len(value))
        out += value


def encode_record(
    out: bytearray,
    offset_delta: int,
    timestamp_delta: int,
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[tuple[str | bytes, bytes | None]],
    attributes: int = 0,
) -> None:
    """Append one encoded record (length-prefixed) to ``out``."""
    body = bytearray()
    body.append(attributes & 0xFF)
    _put_varint(body, timestamp_delta)
    _put_varint(body, offset_delta)
    _put_bytes(body, key)
    _put_bytes(body, value)
    _put_varint(body, len(headers))
    for hkey, hvalue in headers:
        _put_bytes(body, hkey.encode() if isinstance(hkey, str) else hkey)
        _put_bytes(body, hvalue)
    _put_varint(out, len(body))
    out += body


def assemble_batch(
    records_section: bytes,
    *,
    base_offset: int,
    partition_leader_epoch: int,
    attributes: int,
    last_offset_delta: int,
    base_timestamp: int,
    max_timestamp: int,
    producer_id: int,
    producer_epoch: int,
    base_sequence: int,
    records_count: int,
) -> bytes:
    """Put a header (with length and CRC) in front of an already encoded records section."""
    tail = bytearray(40)
    struct.pack_into(
        ">hiqqqhii", tail, 0, attributes, last_offset_delta, base_timestamp, max_timestamp,
        producer_id, producer_epoch, base_sequence, records_count,
    )
    tail += records_section
    crc = crc32c(tail)
    head = struct.pack(">qiibI", base_offset, len(tail) + 9, partition_leader_epoch, MAGIC, crc)
    return head + bytes(tail)


def build_batch(
    records: Sequence[tuple[bytes | None, bytes | None, Sequence[tuple[str, bytes | None]]]],
    *,
    base_offset: int = 0,
    timestamp_ms: int,
    compression: int = COMPRESSION_NONE,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    is_transactional: bool = False,
    is_control: bool = False,
    partition_leader_epoch: int = -1,
) -> bytes:
    """Build one v2 batch of (key, value, headers) records, all with ``timestamp_ms``."""
    if not records:
        raise ValueError("a record batch needs at least one record")
    body = bytearray()
    for index, (key, value, headers) in enumerate(records):
        encode_record(body, index, 0, key, value, headers or ())
    attributes = compression & 7
    if is_transactional:
        attributes |= ATTR_TRANSACTIONAL
    if is_control:
        attributes |= ATTR_CONTROL
    return assemble_batch(
        compress(compression, bytes(body)),
        base_offset=base_offset, partition_leader_epoch=partition_leader_epoch,
        attributes=attributes, last_offset_delta=len(records) - 1,
        base_timestamp=timestamp_ms, max_timestamp=timestamp_ms, producer_id=producer_id,
        producer_epoch=producer_epoch, base_sequence=base_sequence,
        records_count=len(records),
    )


def build_control_batch(
    *,
    commit: bool,
    producer_id: int,
    producer_epoch: int,
    coordinator_epoch: int,
    timestamp_ms: int,
    base_offset: int = 0,
    partition_leader_epoch: int = -1,
) -> bytes:
    """An end-transaction marker (COMMIT or ABORT control record), as Kafka writes it."""
    key = struct.pack(">hh", 0, 1 if commit else 0)
    value = struct.pack(">hi", 0, coordinator_epoch)
    return build_batch(
        [(key, value, [])], base_offset=base_offset, timestamp_ms=timestamp_ms,
        producer_id=producer_id, producer_epoch=producer_epoch, base_sequence=-1,
        is_transactional=True, is_control=True, partition_leader_epoch=partition_leader_epoch,
    )
