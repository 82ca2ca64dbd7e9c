"""A short seeded chaos run (tests/faults/harness.py) on a 3-broker cluster: about a minute of
kills, pauses, a broker cut off from its peers by the fault proxies (`netfault isolate`) and
restarts under an idempotent acks=all workload.
No acknowledged record lost, none duplicated, offsets contiguous, group lag back to 0.
`make chaos` runs the long version (5 brokers, 10 minutes) and writes docs/reliability.md."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.faults.harness import run_chaos

pytestmark = pytest.mark.timeout(420)

SEED = 2  # first faults: pause_follower, pause_controller, kill_controller, isolate_broker, ...


def test_short_seeded_chaos_run_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    result = run_chaos(tmp_path / "cluster", seconds=55, seed=SEED, brokers=3, rate=200,
                       recover_timeout=60)
    summary = result.summary()
    print(json.dumps(summary, indent=1))
    v = result.verdict
    assert len(result.faults) >= 3, summary
    assert v.acknowledged > 5000, summary
    assert v.lost == 0, summary
    assert v.duplicated == 0, summary
    assert v.out_of_order == 0, summary
    assert v.offset_gaps == 0, summary
    assert v.verified == v.acknowledged, summary
    assert v.final_lag == 0, summary
    assert v.group_missing == 0, summary
    assert not result.unrecovered, summary
    assert result.fatal_producer_errors == 0, summary
