"""Which Fetch clients get record bytes by sendfile (KAFLAB_SENDFILE: auto / 1 / 0)."""

from __future__ import annotations

import pytest

from core.broker.handlers import fetch


@pytest.mark.parametrize(("mode", "host", "expected"), [
    ("auto", "127.0.0.1", False),       # loopback: read + copy measured cheaper
    ("auto", "127.3.4.5", False),
    ("auto", "::1", False),
    ("auto", "10.1.2.3", True),         # a real interface: zero copy, as Kafka
    ("auto", "fe80::1%eth0", True),
    ("auto", "not-an-address", False),
    ("1", "127.0.0.1", True),
    ("0", "10.1.2.3", False),
])
def test_sendfile_policy(monkeypatch: pytest.MonkeyPatch, mode: str, host: str,
                         expected: bool) -> None:
    monkeypatch.setattr(fetch, "SENDFILE_MODE", mode)
    assert fetch.sendfile_for(host) is expected
