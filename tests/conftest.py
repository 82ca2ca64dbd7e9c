"""Shared test setup: Qt runs offscreen; fixtures live in tests/fixtures.py."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

pytest_plugins = ["tests.fixtures"]
