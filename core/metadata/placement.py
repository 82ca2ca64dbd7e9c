"""Replica placement, as Kafka's round-robin StripedReplicaPlacer spreads it (without racks).

The first replica of partition p goes to broker (start + p) mod n, the others follow with a
shift that grows every n partitions, so leaders and followers both spread evenly.
"""

from __future__ import annotations

import random

from core.common.errors import InvalidReplicationFactorError


def place_replicas(brokers: list[int], partitions: int, replication_factor: int, *,
                   first_partition: int = 0, rng: random.Random | None = None,
                   start_index: int | None = None) -> list[list[int]]:
    """Assign `replication_factor` distinct brokers to each of `partitions` new partitions."""
    live = sorted(brokers)
    n = len(live)
    if replication_factor > n:
        raise InvalidReplicationFactorError(
            f"Unable to replicate the partition {replication_factor} time(s): "
            f"The target replication factor of {replication_factor} cannot be reached "
            f"because only {n} broker(s) are registered.")
    rng = rng or random.Random()
    start = start_index if start_index is not None else rng.randrange(n)
    shift_base = rng.randrange(n) if start_index is None else 0
    result = []
    for i in range(first_partition, first_partition + partitions):
        if i > 0 and i % n == 0:
            shift_base += 1
        first = (start + i) % n
        replicas = [live[first]]
        shift = 1 + (shift_base % max(1, n - 1)) if n > 1 else 0
        for j in range(replication_factor - 1):
            replicas.append(live[(first + shift + j) % n] if n > 1 else live[0])
        # the shift formula keeps them distinct; guard anyway
        seen: list[int] = []
        for b in replicas:
            if b not in seen:
                seen.append(b)
        k = 0
        while len(seen) < replication_factor:
            if live[k] not in seen:
                seen.append(live[k])
            k += 1
        result.append(seen)
    return result
