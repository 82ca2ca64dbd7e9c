"""RecordBatch v2: validation, offset assignment, records, compression, interop with kio."""

from __future__ import annotations

import datetime
import io
import struct

import cramjam
import pytest
from crc32c import crc32c
from hypothesis import given, settings
from hypothesis import strategies as st
from kio.records.readers import read_batch as kio_read_batch
from kio.records.schema import NewRecordBatch
from kio.records.schema import Record as KioRecord
from kio.records.schema import RecordHeader as KioHeader
from kio.records.writers import write_new_batch
from kio.static.primitive import TZAwareMicros, i8, i16, i32, i64

from core.common.errors import (
    CorruptRecordError,
    InvalidRecordError,
    RecordTooLargeError,
)
from core.records.batch import (
    COMPRESSION_SNAPPY,
    HEADER_SIZE,
    assign_offsets,
    build_batch,
    build_control_batch,
    iter_records,
    read_header,
    validate_batches,
)

keys = st.one_of(st.none(), st.binary(max_size=20))
values = st.one_of(st.none(), st.binary(max_size=200))
header_lists = st.lists(st.tuples(st.text(max_size=8), st.one_of(st.none(), st.binary(max_size=8))),
                        max_size=3)
record_lists = st.lists(st.tuples(keys, values, header_lists), min_size=1, max_size=20)


@settings(max_examples=60, deadline=None)
@given(records=record_lists, codec=st.integers(0, 4), ts=st.integers(0, 2**41),
       base=st.integers(0, 2**40))
def test_build_iter_round_trip(records, codec, ts, base):
    batch = build_batch(records, base_offset=base, timestamp_ms=ts, compression=codec)
    [header] = validate_batches(batch)
    assert header.records_count == len(records)
    assert header.compression == codec
    assert header.size == len(batch)
    assert header.next_offset == base + len(records)
    out = list(iter_records(batch))
    assert [(r.key, r.value, r.headers) for r in out] == [
        (k, v, [(hk, hv) for hk, hv in h]) for k, v, h in records
    ]
    assert [r.offset for r in out] == list(range(base, base + len(records)))
    assert all(r.timestamp == ts for r in out)


def _kio_batch(n: int, seconds: int) -> bytes:
    stamp = TZAwareMicros.parse(datetime.datetime.fromtimestamp(seconds, datetime.UTC))
    records = tuple(
        KioRecord(attributes=i8(0), timestamp=stamp, offset=i64(i), key=b"k%d" % i,
                  value=b"v" * i, headers=(KioHeader(key=b"h", value=b"x"),))
        for i in range(n)
    )
    buf = io.BytesIO()
    write_new_batch(buf, NewRecordBatch(producer_id=i64(-1), producer_epoch=i16(-1),
                                        base_sequence=i32(-1), records=records,
                                        attributes=i16(0)))
    return buf.getvalue()


def test_reads_batches_written_by_kio():
    batch = _kio_batch(4, 1_700_000_000)
    [header] = validate_batches(batch)
    assert header.records_count == 4 and header.base_timestamp == 1_700_000_000_000
    out = list(iter_records(batch))
    assert [r.key for r in out] == [b"k0", b"k1", b"k2", b"k3"]
    assert out[3].value == b"vvv" and out[0].headers == [("h", b"x")]


def test_kio_reads_our_batches():
    batch = build_batch([(b"a", b"1", [("h", b"v")]), (None, b"2", [])],
                        timestamp_ms=1_700_000_000_000, base_offset=5)
    parsed, size = kio_read_batch(batch, 0)
    assert size == len(batch)
    assert [r.offset for r in parsed.records] == [5, 6]
    assert parsed.records[0].headers[0].value == b"v"


def _corrupt(batch: bytes, index: int, value: int | None = None) -> bytes:
    data = bytearray(batch)
    data[index] = value if value is not None else data[index] ^ 0xFF
    return bytes(data)


def test_validate_errors():
    batch = build_batch([(b"k", b"v", [])], timestamp_ms=1)
    assert len(validate_batches(batch + batch)) == 2
    with pytest.raises(InvalidRecordError):
        validate_batches(b"")
    with pytest.raises(CorruptRecordError):
        validate_batches(_corrupt(batch, len(batch) - 1))  # CRC
    with pytest.raises(InvalidRecordError):
        validate_batches(_corrupt(batch, 16, 1))  # magic 1
    with pytest.raises(CorruptRecordError):
        validate_batches(_corrupt(batch, 16, 7))  # unknown magic
    with pytest.raises(CorruptRecordError):
        validate_batches(batch + b"\x00" * 10)  # trailing garbage
    with pytest.raises(CorruptRecordError):
        validate_batches(batch + batch[:-1])  # truncated second batch
    with pytest.raises(CorruptRecordError):
        validate_batches(struct.pack(">qi", 0, 10) + batch[12:])  # length below header
    with pytest.raises(RecordTooLargeError):
        validate_batches(batch, max_batch_bytes=len(batch) - 1)
    assert validate_batches(batch, max_batch_bytes=len(batch))


@given(cut=st.integers(1, 200))
def test_truncated_payload_is_corrupt(cut):
    batch = build_batch([(b"k", b"v" * 100, [])], timestamp_ms=1)
    with pytest.raises(CorruptRecordError):
        validate_batches(batch[: max(len(batch) - cut, 1)])


def test_assign_offsets_create_time_keeps_crc():
    one = build_batch([(b"a", b"1", []), (b"b", b"2", [])], timestamp_ms=10)
    two = build_batch([(b"c", b"3", [])], timestamp_ms=30)
    buf = bytearray(one + two)
    result = assign_offsets(buf, 100, leader_epoch=7, log_append_time_ms=None)
    assert (result.first_offset, result.last_offset) == (100, 102)
    assert (result.max_timestamp, result.offset_of_max_timestamp) == (30, 102)
    headers = validate_batches(buf)  # CRCs still valid
    assert [h.base_offset for h in headers] == [100, 102]
    assert {h.partition_leader_epoch for h in headers} == {7}
    assert bytes(buf[HEADER_SIZE:len(one)]) == one[HEADER_SIZE:]
    assert [r.offset for r in iter_records(bytes(buf[len(one):]))] == [102]


def test_assign_offsets_log_append_time():
    buf = bytearray(build_batch([(b"a", b"1", []), (b"b", b"2", [])], timestamp_ms=10,
                                compression=3))
    result = assign_offsets(buf, 0, leader_epoch=0, log_append_time_ms=5000)
    [header] = validate_batches(buf)
    assert header.timestamp_type == 1
    assert header.max_timestamp == header.base_timestamp == 5000 == result.max_timestamp
    assert {r.timestamp for r in iter_records(bytes(buf))} == {5000}


def test_snappy_raw_and_xerial():
    body_batch = build_batch([(b"k", b"value" * 50, [])], timestamp_ms=1,
                             compression=COMPRESSION_SNAPPY)
    assert body_batch[HEADER_SIZE:HEADER_SIZE + 8] == b"\x82SNAPPY\x00"  # xerial, like Java
    raw_body = bytes(cramjam.snappy.decompress_raw(body_batch[HEADER_SIZE + 20:]))
    # Re-wrap the same records with raw (unframed) snappy, as librdkafka may send.
    raw = bytes(cramjam.snappy.compress_raw(raw_body))
    tail = bytearray(body_batch[21:HEADER_SIZE]) + raw
    head = struct.pack(">qiibI", 0, len(tail) + 9, -1, 2, crc32c(bytes(tail)))
    raw_batch = head + bytes(tail)
    validate_batches(raw_batch)
    assert [r.value for r in iter_records(raw_batch)] == [b"value" * 50]


def test_corrupt_compressed_payload():
    batch = build_batch([(b"k", b"v" * 100, [])], timestamp_ms=1, compression=4)
    tail = bytearray(batch[21:])
    tail[-5] ^= 0xFF
    head = struct.pack(">qiibI", 0, len(tail) + 9, -1, 2, crc32c(bytes(tail)))
    with pytest.raises(CorruptRecordError):
        list(iter_records(head + bytes(tail)))


def test_control_batch():
    batch = build_control_batch(commit=True, producer_id=9, producer_epoch=2,
                                coordinator_epoch=4, timestamp_ms=1)
    header = read_header(batch)
    assert header.is_control and header.is_transactional and header.producer_id == 9
    [record] = list(iter_records(batch))
    assert record.is_control and record.key == b"\x00\x00\x00\x01"


def test_header_properties():
    batch = build_batch([(b"k", b"v", [])] * 3, timestamp_ms=1, producer_id=1,
                        producer_epoch=0, base_sequence=2**31 - 2, base_offset=10)
    header = read_header(batch)
    assert header.last_offset == 12 and header.next_offset == 13
    assert header.last_sequence == 0  # wraps past int32 max
    assert not header.is_control and not header.is_transactional
