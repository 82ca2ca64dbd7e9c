"""The timeline: every ClusterSnapshot and the broker / supervisor log events, recorded in an
SQLite file so that the state at any past moment can be looked up (core.timeline.store)."""

from core.timeline.store import TimelineEvent, TimelineStore

__all__ = ["TimelineEvent", "TimelineStore"]
