"""Save a consumer group's committed offsets to a JSON file and restore them later.

Restoring follows Kafka's rule for changing a group's offsets from outside: the group must be
empty (no member), else the live consumers would overwrite them; we say so clearly.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from core.admin.client import AdminClient

__all__ = ["GroupNotEmptyError", "restore_offsets", "save_offsets"]

FORMAT = "kaflab-group-offsets/1"


class GroupNotEmptyError(Exception):
    """The group has active members; stop its consumers before restoring offsets."""


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
