"""A compacted topic refuses records without a key (Kafka's LogValidator.validateKey).

The whole payload is refused with INVALID_RECORD (RecordValidationError) naming the index in
its batch of each keyless record, and nothing of it is appended; a delete-policy log accepts the
same bytes (its fast path is untouched). Every test here refuses something: on the old code,
which appended keyless records to compacted logs, each one fails.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core.common.errors import (
    CorruptRecordError,
    ErrorCode,
    InvalidRecordError,
    RecordValidationError,
)
from core.records.batch import (
    COMPRESSION_GZIP,
    COMPRESSION_LZ4,
    COMPRESSION_NONE,
    COMPRESSION_SNAPPY,
    COMPRESSION_ZSTD,
    assemble_batch,
    build_batch,
    build_control_batch,
    encode_record,
    keyless_records,
)
from core.storage.log import Log

from .helpers import open_log, read_all

COMPACT = {"cleanup.policy": ["compact"], "segment.bytes": 1 << 20}
DELETE = {"cleanup.policy": ["delete"], "segment.bytes": 1 << 20}
CODECS = [COMPRESSION_NONE, COMPRESSION_GZIP, COMPRESSION_SNAPPY, COMPRESSION_LZ4,
          COMPRESSION_ZSTD]


def _message(tp: str) -> str:
    return f"Compacted topic cannot accept message without key in topic partition {tp}"


def _records(keys: list[bytes | None]) -> list[tuple[bytes | None, bytes | None, list[Any]]]:
    return [(key, b"value-%d" % i, []) for i, key in enumerate(keys)]


def _batch(keys: list[bytes | None], *, codec: int = COMPRESSION_NONE, **kwargs: Any) -> bytes:
    return build_batch(_records(keys), timestamp_ms=1_000, compression=codec, **kwargs)


def _files(log: Log) -> dict[str, bytes]:
    """Every byte the log has on disk (segments and indexes)."""
    return {p.name: p.read_bytes() for p in sorted(Path(log.dir).iterdir()) if p.is_file()}


def _refused(log: Log, payload: bytes, indexes: list[int], **kwargs: Any) -> RecordValidationError:
    """Append ``payload``: it must be refused naming ``indexes``, leaving the log as it was."""
    leo, files = log.log_end_offset, _files(log)
    with pytest.raises(RecordValidationError) as info:
        log.append_as_leader(payload, leader_epoch=0, **kwargs)
    exc = info.value
    assert exc.code == ErrorCode.invalid_record
    assert exc.record_errors == tuple((i, _message(str(log.tp))) for i in indexes)
    assert exc.log_start_offset == log.log_start_offset
    assert log.log_end_offset == leo
    assert _files(log) == files
    return exc


def test_fast_path_shape_with_a_null_key_is_refused_and_nothing_appended(tmp_path):
    """One uncompressed CreateTime batch from a client: the shape the fast path takes."""
    compacted = open_log(tmp_path, COMPACT, name="c-0")
    compacted.append_as_leader(_batch([b"a"]), leader_epoch=0)
    exc = _refused(compacted, _batch([b"k1", None, b"k3", None]), [1, 3])
    assert str(exc) == (
        "One or more records have been rejected due to 2 record errors in total, and only "
        "showing the first three errors at most: ["
        f"RecordError(batchIndex=1, message='{_message('c-0')}'), "
        f"RecordError(batchIndex=3, message='{_message('c-0')}')]")
    _refused(compacted, _batch([None]), [0])
    assert [r.key for r in read_all(compacted)] == [b"a"]
    # The same bytes go into a delete-policy log, through the fast path.
    plain = open_log(tmp_path, DELETE, name="p-0")
    assert plain._fast_max > 0
    result = plain.append_as_leader(_batch([b"k1", None, b"k3", None]), leader_epoch=0)
    assert (result.first_offset, result.last_offset) == (0, 3)
    assert [r.key for r in read_all(plain)] == [b"k1", None, b"k3", None]


def test_only_the_first_three_errors_are_shown_in_the_message(tmp_path):
    compacted = open_log(tmp_path, COMPACT)
    exc = _refused(compacted, _batch([None] * 5), [0, 1, 2, 3, 4])
    assert "due to 5 record errors in total" in str(exc)
    assert str(exc).count("RecordError(") == 3


def test_general_path_several_batches_one_keyless_refuses_all(tmp_path):
    """A payload of several batches (general path): a keyless record in the second batch
    refuses the whole payload, the first (keyed) batch included; indexes are in that batch."""
    compacted = open_log(tmp_path, COMPACT, name="c-0")
    payload = _batch([b"a", b"b"]) + _batch([b"c", None, b"d"]) + _batch([None])
    _refused(compacted, payload, [1])
    assert compacted.log_end_offset == 0 and read_all(compacted) == []
    plain = open_log(tmp_path, DELETE, name="p-0")
    assert plain.append_as_leader(payload, leader_epoch=0).last_offset == 5


@pytest.mark.parametrize("codec", CODECS)
def test_compressed_batches_are_decompressed_to_check_keys(tmp_path, codec):
    compacted = open_log(tmp_path, COMPACT, name="c-0")
    payload = _batch([b"k%d" % i if i % 7 else None for i in range(1, 30)], codec=codec)
    _refused(compacted, payload, [6, 13, 20, 27])
    keyed = _batch([b"k%d" % i for i in range(30)], codec=codec)
    assert compacted.append_as_leader(keyed, leader_epoch=0).last_offset == 29
    plain = open_log(tmp_path, DELETE, name="p-0")
    assert plain.append_as_leader(payload, leader_epoch=0).last_offset == 28


@pytest.mark.parametrize("policy", [["compact"], ["compact", "delete"], ["delete", "compact"],
                                    "compact"])
def test_keyed_records_and_tombstones_are_accepted_by_every_compact_policy(tmp_path, policy):
    log = open_log(tmp_path, {"cleanup.policy": policy})
    _refused(log, _batch([b"a", None]), [1])
    log.append_as_leader(_batch([b"a", b"b"]), leader_epoch=0)
    tombstone = build_batch([(b"a", None, [])], timestamp_ms=2_000)
    log.append_as_leader(tombstone, leader_epoch=0)
    log.append_as_leader(build_batch([(b"", b"empty key is a key", [])], timestamp_ms=3_000),
                         leader_epoch=0)
    assert [(r.key, r.value) for r in read_all(log)] == [
        (b"a", b"value-0"), (b"b", b"value-1"), (b"a", None), (b"", b"empty key is a key")]


def test_idempotent_batch_refused_leaves_the_producer_state_alone(tmp_path):
    log = open_log(tmp_path, COMPACT)
    _refused(log, _batch([b"a", None], producer_id=9, producer_epoch=0, base_sequence=0), [1])
    assert 9 not in log.producer_state.producers
    # The producer's next batch, keyed, at the same sequence, is appended normally.
    result = log.append_as_leader(
        _batch([b"a", b"b"], producer_id=9, producer_epoch=0, base_sequence=0), leader_epoch=0)
    assert (result.first_offset, result.last_offset, result.duplicate) == (0, 1, False)
    assert log.producer_state.producers[9].last_seq == 1


def test_log_append_time_compacted_topic_is_checked_too(tmp_path):
    log = open_log(tmp_path, {"cleanup.policy": ["compact"],
                              "message.timestamp.type": "LogAppendTime"})
    _refused(log, _batch([None, b"x"]), [0])
    assert log.append_as_leader(_batch([b"x"]), leader_epoch=0).log_append_time_ms > 0


def test_cleanup_policy_changed_at_runtime(tmp_path):
    """update_config (AlterConfigs on the broker) to compact: the next append is checked; back
    to delete: keyless records go in again, through the fast path."""
    log = open_log(tmp_path, DELETE)
    log.append_as_leader(_batch([None]), leader_epoch=0)
    fast_max = log._fast_max
    assert fast_max > 0
    log.update_config(COMPACT)
    assert log._fast_max == -1
    _refused(log, _batch([None]), [0])
    log.append_as_leader(_batch([b"k"]), leader_epoch=0)
    log.update_config(DELETE)
    assert log._fast_max == fast_max
    log.append_as_leader(_batch([None]), leader_epoch=0)
    assert [r.key for r in read_all(log)] == [None, b"k", None]


def test_control_batches_and_coordinator_writes_still_work(tmp_path):
    """Transactions on a compacted topic: the marker (a control batch, origin coordinator) and
    the internal topics' writers (keyed records) append; a keyless record from the
    coordinator is refused as from anyone (Kafka validates keys whatever the origin)."""
    log = open_log(tmp_path, COMPACT)
    txn = _batch([b"a", b"b"], producer_id=4, producer_epoch=0, base_sequence=0,
                 is_transactional=True)
    log.append_as_leader(txn, leader_epoch=0)
    marker = build_control_batch(commit=True, producer_id=4, producer_epoch=0,
                                 coordinator_epoch=1, timestamp_ms=2_000)
    assert log.append_as_leader(marker, leader_epoch=0, origin="coordinator").first_offset == 2
    assert log.producer_state.first_unstable_offset is None
    assert log.append_as_leader(_batch([b"group-key"]), leader_epoch=0,
                                origin="coordinator").first_offset == 3
    _refused(log, _batch([None]), [0], origin="coordinator")


def test_follower_appends_are_not_checked(tmp_path):
    """Replication copies the leader's log as it is (Kafka validates on the leader only); the
    same payload is refused by a compacted leader."""
    leader = open_log(tmp_path, COMPACT, name="l-0")
    _refused(leader, _batch([None]), [0])
    follower = open_log(tmp_path, COMPACT, name="f-0")
    assert follower.append_as_follower(_batch([None])).last_offset == 0


# --- keyless_records -------------------------------------------------------------------------


def _raw_batch(body: bytes, count: int) -> bytes:
    return assemble_batch(body, base_offset=0, partition_leader_epoch=-1, attributes=0,
                          last_offset_delta=count - 1, base_timestamp=0, max_timestamp=0,
                          producer_id=-1, producer_epoch=-1, base_sequence=-1,
                          records_count=count)


@pytest.mark.parametrize("codec", CODECS)
def test_keyless_records_indexes(codec):
    keys: list[bytes | None] = [None, b"k", b"", None, b"x" * 300, None]
    big = build_batch([(k, b"v" * 200, [("h", b"1"), ("h2", None)]) for k in keys],
                      timestamp_ms=5, compression=codec)
    assert keyless_records(big) == [0, 3, 5]
    assert keyless_records(_batch([b"a", b"b"], codec=codec)) == []


def test_keyless_records_refuses_records_that_do_not_frame():
    body = bytearray()
    encode_record(body, 0, 0, None, b"v", [])
    good = bytes(body)
    assert keyless_records(_raw_batch(good, 1)) == [0]
    with pytest.raises(InvalidRecordError, match="records still remaining"):
        keyless_records(_raw_batch(good + good, 1))
    with pytest.raises(CorruptRecordError):
        keyless_records(_raw_batch(good, 2))  # declares a second record that is not there
    with pytest.raises(CorruptRecordError):
        keyless_records(_raw_batch(good[:-2], 1))  # the record runs past the batch
    with pytest.raises(CorruptRecordError):
        keyless_records(_raw_batch(b"\x06\x00\x80\x80\x80", 1))  # varint runs past the record
