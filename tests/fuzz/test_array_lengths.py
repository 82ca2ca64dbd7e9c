"""core.protocol.lengths: valid requests pass, an array longer than the frame is refused."""

from __future__ import annotations

import struct

import pytest

from core.protocol.codec import FrameError, decode_body, decode_header, request_class
from core.protocol.lengths import ArrayLengthError, check_array_lengths
from tests.fuzz.templates import templates

TEMPLATES = templates()


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda t: t.id)
def test_every_template_passes_and_decodes(template):
    frame = memoryview(template.frame[4:]).toreadonly()
    header, pos = decode_header(frame)
    decode_body(header, frame, pos)  # runs check_array_lengths first


@pytest.mark.parametrize("length", [2**31 - 1, 1000, 9])
def test_legacy_array_longer_than_the_frame_is_refused(length):
    cls = request_class(3, 8)  # Metadata v8: topics is the first field, an int32 length
    body = struct.pack(">i", length) + b"\0" * 8
    with pytest.raises(ArrayLengthError, match=f"array of {length} elements"):
        check_array_lengths(cls, memoryview(body).toreadonly(), 0)


def test_compact_array_longer_than_the_frame_is_refused_by_decode_body():
    frame = struct.pack(">hhih", 3, 12, 1, 1) + b"x" + b"\0" + b"\xff\xff\xff\xff\x7f" + b"\0" * 8
    view = memoryview(frame).toreadonly()
    header, pos = decode_header(view)
    with pytest.raises(FrameError, match="array of 34359738366 elements"):
        decode_body(header, view, pos)


def test_records_are_skipped_by_length_and_checked_against_the_end():
    produce = next(t for t in TEMPLATES if (t.key, t.version) == (0, 8))
    frame = memoryview(produce.frame[4:-10]).toreadonly()  # records cut short
    header, pos = decode_header(frame)
    with pytest.raises(FrameError):
        decode_body(header, frame, pos)


@pytest.mark.parametrize(("key", "version", "body"), [
    (20, 3, struct.pack(">i", -1) + struct.pack(">i", 1000)),   # DeleteTopics topic_names
    (42, 2, b"\0"),                                              # DeleteGroups groups_names
    (65, 0, b"\0" + b"\0"),                                      # DescribeTransactions ids
    (15, 5, b"\2" + b"\0" + b"\0" + b"\0"),                      # DescribeGroups [null]
])
def test_null_in_a_non_nullable_field_is_refused(key, version, body):
    """kio decodes length -1 (compact 0) to None even where the schema forbids null; the
    handlers then raised TypeError (found by the fuzz run)."""
    flexible = request_class(key, version).__flexible__
    frame = struct.pack(">hhih", key, version, 1, 1) + b"x" + (b"\0" if flexible else b"")
    view = memoryview(frame + body).toreadonly()
    header, pos = decode_header(view)
    with pytest.raises(FrameError, match="null"):  # ours, or kio's for array items
        decode_body(header, view, pos)
