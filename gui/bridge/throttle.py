"""Replication throttles on one broker, the way Kafka's tools set them.

A throttle is two halves (KIP-73): the broker's dynamic configs
``leader.replication.throttled.rate`` / ``follower.replication.throttled.rate`` (bytes/s) and,
per topic, which replicas they apply to: ``leader.replication.throttled.replicas`` /
``follower.replication.throttled.replicas``, either ``*`` or a list of ``partition:broker``.
kafka-reassign-partitions --throttle throttles the moving partitions only: the leader side on
the replicas that hold the data now, the follower side on the replicas being added.

The planning functions are pure; :func:`apply_throttle` / :func:`clear_throttle` /
:func:`read_throttles` do the IncrementalAlterConfigs / DescribeConfigs with
core.admin's AdminClient.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

from core.admin.client import RESOURCE_BROKER, RESOURCE_TOPIC, AdminClient
from gui.bridge.backend import ThrottleSpec
from gui.bridge.types import (
    FOLLOWER_THROTTLE_RATE,
    FOLLOWER_THROTTLED_REPLICAS,
    LEADER_THROTTLE_RATE,
    LEADER_THROTTLED_REPLICAS,
)

TP = tuple[str, int]
#: {tp: (replicas, adding_replicas, removing_replicas)} as ListPartitionReassignments says
Reassignments = Mapping[TP, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]
RATES = (LEADER_THROTTLE_RATE, FOLLOWER_THROTTLE_RATE)
REPLICA_LISTS = (LEADER_THROTTLED_REPLICAS, FOLLOWER_THROTTLED_REPLICAS)
#: Kafka's default rate (Long.MAX_VALUE) means "no throttle"
UNTHROTTLED = 2**63 - 1


class ThrottleError(Exception):
    """A throttle request that cannot be carried out (the message is for the operator)."""


def reassignment_replicas(reassignments: Reassignments) -> dict[str, tuple[str, str]]:
    """{topic: (leader list, follower list)} for the partitions being reassigned.

    As Kafka's ReassignPartitionsCommand: the leader throttle covers the replicas that hold
    the data now (replicas minus the adding ones), the follower throttle the adding ones.
    """
    leader: dict[str, list[str]] = {}
    follower: dict[str, list[str]] = {}
    for (topic, partition), (replicas, adding, _removing) in sorted(reassignments.items()):
        current = [r for r in replicas if r not in adding]
        leader.setdefault(topic, []).extend(f"{partition}:{r}" for r in current)
        follower.setdefault(topic, []).extend(f"{partition}:{r}" for r in adding)
    return {t: (",".join(leader[t]), ",".join(follower.get(t, []))) for t in leader}


def rate_configs(spec: ThrottleSpec) -> tuple[dict[str, str], list[str]]:
    """(configs to set, configs to delete) on the broker resource for ``spec``."""
    set_: dict[str, str] = {}
    delete: list[str] = []
    for name, bps in ((LEADER_THROTTLE_RATE, spec.leader_bps),
                      (FOLLOWER_THROTTLE_RATE, spec.follower_bps)):
        if bps is None:
            delete.append(name)
        elif bps <= 0:
            raise ThrottleError(f"{name} must be a positive number of bytes/s, got {bps}")
        else:
            set_[name] = str(int(bps))
    if not set_:
        raise ThrottleError("Give a leader or a follower rate (or clear the throttle).")
    return set_, delete


def throttled_topics(topics: Iterable[Any]) -> list[str]:
    """The topics whose replica lists get ``*`` for an "all replicas" throttle: every
    non-internal topic, not only those with a replica on the broker now, so a replica that
    a reassignment later adds to the broker is throttled too (the rates are per broker: a
    broker without one is not slowed by ``*``)."""
    return sorted(t.name for t in topics if not t.internal)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


async def read_throttles(admin: AdminClient, broker_id: int,
                         ) -> tuple[int | None, int | None]:
    """(leader, follower) throttle rates of one broker in bytes/s, None when unset."""
    found = await admin.describe_configs(RESOURCE_BROKER, str(broker_id), RATES)
    leader = found.get(LEADER_THROTTLE_RATE)
    follower = found.get(FOLLOWER_THROTTLE_RATE)

    def value(entry: Any) -> int | None:
        # Kafka's default is Long.MAX_VALUE: unthrottled
        if entry is None or getattr(entry, "is_default", False):
            return None
        rate = _int(entry.value)
        return None if rate is None or rate >= UNTHROTTLED else rate

    return value(leader), value(follower)


async def apply_throttle(admin: AdminClient, broker_id: int, spec: ThrottleSpec,
                         topics: Iterable[Any]) -> str:
    """Set the rates on ``broker_id`` and the throttled-replica lists on the topics."""
    set_, delete = rate_configs(spec)
    if spec.replicas == "reassigning":
        moving = await admin.list_partition_reassignments()
        lists = reassignment_replicas(moving)
        if not lists:
            raise ThrottleError("No partition is being reassigned: nothing to throttle. "
                                "Choose all replicas (*) or start a reassignment first.")
    elif spec.replicas == "all":
        lists = {t: ("*", "*") for t in throttled_topics(topics)}
    else:
        raise ThrottleError(f"Unknown replica selection {spec.replicas!r}")
    await admin.incremental_alter_configs(RESOURCE_BROKER, str(broker_id), set_, delete)
    for topic, (leader, follower) in sorted(lists.items()):
        configs = {LEADER_THROTTLED_REPLICAS: leader}
        if follower:
            configs[FOLLOWER_THROTTLED_REPLICAS] = follower
        await admin.incremental_alter_configs(RESOURCE_TOPIC, topic, configs, [])
    where = ("all replicas (*)" if spec.replicas == "all"
             else f"{sum(1 for _ in lists)} topic(s) being reassigned")
    return (f"Broker {broker_id}: replication throttled "
            f"({', '.join(f'{k}={v}' for k, v in set_.items())}) on {where}")


async def clear_throttle(admin: AdminClient, broker_id: int, others: Iterable[int],
                         topics: Iterable[Any]) -> str:
    """Delete the broker's rates; once no broker in ``others`` is throttled either, delete the
    topics' throttled-replica lists too (as kafka-reassign-partitions --verify does)."""
    await admin.incremental_alter_configs(RESOURCE_BROKER, str(broker_id), {}, list(RATES))
    still = []
    for other in others:
        if other == broker_id:
            continue
        try:
            if any(v is not None for v in await read_throttles(admin, other)):
                still.append(other)
        except Exception:  # a dead broker keeps no throttle that matters now
            continue
    if still:
        return (f"Broker {broker_id}: throttle cleared (the topics' throttled replicas stay: "
                f"broker(s) {', '.join(map(str, still))} are still throttled)")
    names = [t.name for t in topics if not t.internal]
    described = await admin.describe_topic_configs_many(names) if names else {}
    cleared = 0
    for name, entries in sorted(described.items()):
        if not isinstance(entries, dict):
            continue
        drop = [k for k in REPLICA_LISTS
                if k in entries and not entries[k].is_default and entries[k].value]
        if drop:
            await admin.incremental_alter_configs(RESOURCE_TOPIC, name, {}, drop)
            cleared += 1
    return (f"Broker {broker_id}: throttle cleared"
            + (f"; throttled-replica lists removed from {cleared} topic(s)" if cleared else ""))


async def read_all(admin: AdminClient, broker_ids: Iterable[int], timeout: float = 3.0,
                   ) -> dict[int, tuple[int | None, int | None]]:
    """Throttle rates of several brokers at once; brokers that do not answer are left out."""
    ids = list(broker_ids)

    async def one(bid: int) -> tuple[int | None, int | None]:
        return await asyncio.wait_for(read_throttles(admin, bid), timeout)

    results = await asyncio.gather(*(one(b) for b in ids), return_exceptions=True)
    return {b: r for b, r in zip(ids, results, strict=True) if isinstance(r, tuple)}
