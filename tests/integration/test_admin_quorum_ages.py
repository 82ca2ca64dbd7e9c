"""The console's admin client carries DescribeQuorum's per-replica times (KIP-836) into its
snapshot types: on a real 3-broker cluster, ``AdminClient.describe_quorum()`` gives every voter
a ``last_fetch_timestamp`` and a ``last_caught_up_timestamp`` in epoch ms within a few seconds
of now (they were dropped: the QuorumVoter had no such fields). Asked through each broker's
bootstrap (a non-leader forwards DescribeQuorum to the active controller)."""

from __future__ import annotations

import asyncio
import time

import pytest

from core.admin.client import AdminClient
from core.admin.snapshot import QuorumInfo
from tests.fixtures import running_local_cluster, wait_for

pytestmark = pytest.mark.timeout(180)

CONFIG = {"group.initial.rebalance.delay.ms": "0", "offsets.topic.num.partitions": "3"}
#: how far from time.time() a live, caught-up voter's times may be (two shared cores)
SLACK_MS = 5000


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    yield from running_local_cluster(tmp_path_factory, "admin-quorum-ages", CONFIG)


async def _describe(bootstrap: str) -> QuorumInfo | None:
    async with AdminClient(bootstrap) as admin:
        return await admin.describe_quorum()


def _problems(quorum: QuorumInfo | None) -> list[str]:
    """What is wrong with the voters' times now (empty: all within SLACK_MS of the clock)."""
    if quorum is None:
        return ["describe_quorum returned None"]
    now = time.time() * 1000
    problems = []
    if sorted(v.id for v in quorum.voters) != [1, 2, 3]:
        problems.append(f"voters {[v.id for v in quorum.voters]}")
    for v in quorum.voters:
        for name in ("last_fetch_timestamp", "last_caught_up_timestamp"):
            value = getattr(v, name, None)
            if not isinstance(value, int) or not now - SLACK_MS <= value <= now + SLACK_MS:
                problems.append(f"voter {v.id} (leader {quorum.leader_id}) {name}={value!r}, "
                                f"now {now:.0f}")
    return problems


@pytest.mark.parametrize("broker_id", [1, 2, 3])
def test_describe_quorum_carries_each_voters_times(cluster, broker_id):
    bootstrap = f"127.0.0.1:{cluster.port + broker_id - 1}"
    seen: list[str] = []

    def good() -> bool:
        seen[:] = _problems(asyncio.run(_describe(bootstrap)))
        return not seen

    try:
        wait_for(good, timeout=20, what="every voter's times within 5 s of now")
    except Exception:
        raise AssertionError(f"last answer: {seen}") from None
