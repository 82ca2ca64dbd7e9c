"""Save a consumer group's committed offsets to a JSON file and restore them later; reset them.

Restoring and resetting follow Kafka's rule for changing a group's offsets from outside: the
group must be inactive (Empty or Dead), else the live consumers would overwrite them; we say
so with kafka-consumer-groups.sh's own message. :func:`reset_offsets` can also be given the
consumers the caller runs itself in that group (an :class:`OwnedConsumers`, e.g. a scenario
run): it stops them, waits for the group to be Empty, resets, and starts them again; members
it does not own make it refuse, naming them.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

from core.admin.client import AdminClient, OffsetSpec
from core.admin.snapshot import GroupInfo, MemberInfo

__all__ = ["GroupNotEmptyError", "GroupNotInactiveError", "OwnedConsumers", "reset_offsets",
           "reset_target", "restore_offsets", "save_offsets"]

#: Group states in which Kafka lets offsets be changed from outside the group.
INACTIVE_STATES = ("Empty", "Dead")

FORMAT = "kaflab-group-offsets/1"


class GroupNotEmptyError(Exception):
    """The group has active members; stop its consumers before restoring offsets."""


class GroupNotInactiveError(GroupNotEmptyError):
    """Kafka's refusal to reset an active group's offsets, naming the members in the way."""

    def __init__(self, group: str, state: str, members: Iterable[MemberInfo] = (),
                 advice: str = "") -> None:
        self.group, self.state, self.members = group, state, tuple(members)
        text = (f"Assignments can only be reset if the group '{group}' is inactive, but the "
                f"current state is {state}.")
        if self.members:
            text += f" {advice or 'Active members'}: " + ", ".join(
                describe_member(m) for m in self.members) + "."
        elif advice:
            text += f" {advice}."
        super().__init__(text)


def describe_member(m: MemberInfo) -> str:
    """``member-id (client id, host)`` for error messages."""
    return f"{m.member_id} ({m.client_id or 'no client id'}, {m.host or '?'})"


class OwnedConsumers(Protocol):
    """Consumers the caller runs itself (a scenario's), which a reset may stop and restart."""

    def owned_member_ids(self, group: str) -> set[str]:
        """Every member id the caller's consumers of ``group`` have used."""
        ...

    def owns_group(self, group: str) -> bool:
        """True when the caller runs consumers in ``group`` now."""
        ...

    async def stop_group(self, group: str) -> int:
        """Stop (LeaveGroup) the caller's consumers of ``group``; returns how many."""
        ...

    async def start_group(self, group: str) -> int:
        """Start them again (they resume from the committed offsets); returns how many."""
        ...


Progress = Callable[[str], None]


def reset_target(to: str, value: int | None = None) -> OffsetSpec | tuple[str, int]:
    """The console's / a scenario's choice -> AdminClient.reset_consumer_group_offsets' target:
    ``earliest``, ``latest``, ``timestamp`` (value: ms) or ``offset`` (value: the offset)."""
    if to in ("earliest", "latest"):
        return to
    if to == "timestamp":
        return int(value or 0)
    if to == "offset":
        return ("offset", int(value or 0))
    raise ValueError(f"reset to earliest, latest, timestamp or offset, not {to!r}")


async def _state(admin: AdminClient, group: str) -> GroupInfo:
    return (await admin.describe_groups([group]))[group]


async def plan_offsets(admin: AdminClient, topic: str, to: OffsetSpec | tuple[str, int],
                       partitions: Iterable[int] | None = None) -> dict[tuple[str, int], int]:
    """The offsets a reset would commit (kafka-consumer-groups.sh --dry-run): earliest /
    latest / the first offset at or after a timestamp (latest when none) / ("offset", n)."""
    return await admin.reset_targets(topic, to, partitions)


async def reset_offsets(admin: AdminClient, group: str, topic: str,
                        to: OffsetSpec | tuple[str, int],
                        partitions: Iterable[int] | None = None, *,
                        owner: OwnedConsumers | None = None, progress: Progress | None = None,
                        empty_timeout: float = 30.0,
                        dry_run: bool = False) -> dict[tuple[str, int], int]:
    """Reset ``group``'s offsets on ``topic`` to earliest / latest / a timestamp (ms) /
    ("offset", n), only while the group is inactive (Kafka's rule).

    With ``owner``: when every member of the active group is one of the owner's consumers,
    they are stopped, the group is awaited Empty, the offsets are reset and the consumers
    started again (also when the reset fails). Raises GroupNotInactiveError otherwise,
    without changing anything. ``dry_run``: the same checks, returns the plan, commits
    nothing (and stops no consumer)."""
    say = progress or (lambda _text: None)
    info = await _state(admin, group)
    if info.state not in INACTIVE_STATES:
        owned = owner.owned_member_ids(group) if owner is not None else set()
        foreign = [m for m in info.members if m.member_id not in owned]
        if owner is None or not owner.owns_group(group):
            raise GroupNotInactiveError(group, info.state, info.members,
                                        "Stop its consumers first; active members")
        if foreign:
            raise GroupNotInactiveError(
                group, info.state, foreign,
                "The console stops only the consumers it started; members it does not own")
        if dry_run:
            return await plan_offsets(admin, topic, to, partitions)
        stopped = await owner.stop_group(group)
        try:
            say(f"stopped {stopped} consumer(s) of {group}; waiting for the group to be Empty")
            deadline = time.monotonic() + empty_timeout
            while info.state not in INACTIVE_STATES:
                if time.monotonic() > deadline:
                    raise GroupNotInactiveError(group, info.state, info.members,
                                                "Still active after its consumers stopped")
                await asyncio.sleep(0.2)
                info = await _state(admin, group)
            say(f"{group} is {info.state}: resetting {topic}")
            return await _reset(admin, group, topic, to, partitions)
        finally:
            started = await owner.start_group(group)
            say(f"restarted {started} consumer(s) of {group}")
    if dry_run:
        return await plan_offsets(admin, topic, to, partitions)
    say(f"{group} is {info.state}: resetting {topic}")
    return await _reset(admin, group, topic, to, partitions)


async def _reset(admin: AdminClient, group: str, topic: str, to: OffsetSpec | tuple[str, int],
                 partitions: Iterable[int] | None) -> dict[tuple[str, int], int]:
    from core.common.errors import ErrorCode, KafkaError

    target = await plan_offsets(admin, topic, to, partitions)
    try:
        await admin.alter_consumer_group_offsets(group, target)
        return target
    except KafkaError as exc:  # a member joined between the check and the commit
        if exc.code != ErrorCode.unknown_member_id:
            raise
        info = await _state(admin, group)
        raise GroupNotInactiveError(group, info.state, info.members,
                                    "A member joined meanwhile") from exc


async def save_offsets(admin: AdminClient, group_id: str, path: str | Path) -> dict[str, Any]:
    """Write the group's committed offsets to `path`; returns the document written."""
    committed = await admin.list_consumer_group_offsets(group_id)
    document = {
        "format": FORMAT, "group": group_id, "saved_at_ms": int(time.time() * 1000),
        "offsets": [{"topic": t, "partition": p, "offset": c.offset,
                     "metadata": c.metadata or ""}
                    for (t, p), c in sorted(committed.items())]}
    Path(path).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return document


def load_offsets(path: str | Path) -> dict[str, Any]:
    document = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(document, dict) or "offsets" not in document:
        raise ValueError(f"{path} is not a saved group offsets file")
    return document


async def restore_offsets(admin: AdminClient, path: str | Path,
                          group_id: str | None = None) -> dict[tuple[str, int], int]:
    """Commit the offsets saved in `path` for `group_id` (default: the saved group).

    Raises GroupNotEmptyError when the group has members (Kafka's rule)."""
    document = load_offsets(path)
    group = group_id or document["group"]
    info = (await admin.describe_groups([group]))[group]
    if info.members or info.state not in ("Empty", "Dead", "Unknown", ""):
        raise GroupNotEmptyError(
            f"Consumer group '{group}' is not empty (state {info.state}, "
            f"{len(info.members)} member(s)). Kafka only lets you set the committed offsets "
            "of an empty group: stop its consumers first, then restore.")
    offsets = {(o["topic"], int(o["partition"])): int(o["offset"])
               for o in document["offsets"]}
    if offsets:
        await admin.alter_consumer_group_offsets(group, offsets)
    return offsets
