"""Hypothesis strategies for kio types it cannot derive itself.

kio registers strategies for its integer types (within each type's range), and Hypothesis
derives the rest of every request dataclass with `st.from_type`; only `Records` (the record
batch bytes of Produce) needs one: a valid RecordBatch v2, or random bytes.
"""

from __future__ import annotations

from hypothesis import strategies as st
from kio.static.primitive import Records

from core.records.batch import build_batch

_VALID_BATCH = build_batch([(b"k", b"v" * 20, [("h", b"x")])] * 3,
                           timestamp_ms=1_700_000_000_000)

st.register_type_strategy(Records, st.one_of(
    st.just(_VALID_BATCH), st.binary(max_size=300)).map(Records))
