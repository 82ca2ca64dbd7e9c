"""Scenarios: a YAML file of topics, seeded producers, (slow) consumer groups and timed
faults, run against a cluster (core.scenarios.runner) from the CLI or the console."""

from core.scenarios.model import Scenario, ScenarioError, bundled, load, parse

__all__ = ["Scenario", "ScenarioError", "bundled", "load", "parse"]
