"""Fixtures shared by the broker unit tests."""

from __future__ import annotations

from typing import Any

import pytest

from core.broker import quorum

from .test_alter_partition_sender import Sent, response


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> Sent:
    """The AlterPartition requests a leader sends (api key, version, fields), answered from
    `sent.answers` in order, then with NONE (the controller replaced by a fake)."""
    calls = Sent()

    async def fake(broker: Any, api_key: int, version: int, **fields: Any) -> Any:
        calls.append((api_key, version, fields))
        return calls.answers.pop(0) if calls.answers else response()

    monkeypatch.setattr(quorum, "_to_controller", fake)
    return calls
