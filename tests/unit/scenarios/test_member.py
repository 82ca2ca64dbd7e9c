"""Pure parts of the scenario consumers: the subscription bytes, Kafka's range assignment,
and the reset-offsets step of the scenario file."""

from __future__ import annotations

import pytest

from core.admin.assignment import decode_subscription
from core.admin.offsets_io import GroupNotInactiveError, reset_target
from core.admin.snapshot import MemberInfo
from core.scenarios.member import encode_subscription, range_assign
from core.scenarios.model import ScenarioError, parse


def test_subscription_round_trips_through_the_admin_decoder():
    sub = decode_subscription(encode_subscription(["b", "a", "a"]))
    assert sub.topics == ("a", "b") and sub.user_data is None


def test_range_assign_is_kafkas_range_assignor():
    # the example of Kafka's RangeAssignor javadoc: C0 and C1, t0 and t1 of 3 partitions
    plan = range_assign({"C1": ["t0", "t1"], "C0": ["t0", "t1"]}, {"t0": 3, "t1": 3})
    assert plan == {"C0": {"t0": [0, 1], "t1": [0, 1]}, "C1": {"t0": [2], "t1": [2]}}


def test_range_assign_per_topic_subscribers_and_spare_members():
    plan = range_assign({"a-1": ["x"], "a-2": ["x", "y"], "a-3": ["x"]}, {"x": 2, "y": 5})
    assert plan == {"a-1": {"x": [0]}, "a-2": {"x": [1], "y": [0, 1, 2, 3, 4]}, "a-3": {}}
    assert range_assign({"m": ["gone"]}, {}) == {"m": {}}


def test_reset_step_parsing():
    sc = parse({"consumers": [{"group": "g", "topic": "t"}, {"group": "g", "topic": "u"}],
                "faults": [{"at": 5, "action": "reset-offsets", "group": "g", "to": "offset",
                            "offset": 7, "partitions": [0, 2]},
                           {"at": 1, "fault": "kill", "broker": 1}]})
    step = sc.faults[1]
    assert step.is_action and step.topics == ("t", "u") and step.value == 7
    assert step.partitions == (0, 2) and step.target_text() == "group g"
    assert step.reset_text() == "offset 7" and not sc.faults[0].is_action


@pytest.mark.parametrize("step, message", [
    ({"group": "g", "to": "first"}, "to must be one of"),
    ({"to": "earliest"}, "needs group"),
    ({"group": "g", "to": "timestamp"}, "needs timestamp"),
    ({"group": "other", "to": "latest"}, "topic is required"),
    ({"group": "g", "to": "latest", "broker": 1}, "targets a group"),
])
def test_reset_step_validation(step, message):
    doc = {"consumers": [{"group": "g", "topic": "t"}],
           "faults": [{"at": 1, "action": "reset-offsets", **step}]}
    with pytest.raises(ScenarioError, match=message):
        parse(doc)


def test_reset_target_and_kafkas_message():
    assert reset_target("earliest") == "earliest"
    assert reset_target("offset", 3) == ("offset", 3)
    assert reset_target("timestamp", 1700) == 1700
    with pytest.raises(ValueError):
        reset_target("shift-by", 1)
    err = GroupNotInactiveError("g", "Stable", [MemberInfo("m-1", None, "c", "/10.0.0.1")],
                                "Active members")
    assert str(err) == ("Assignments can only be reset if the group 'g' is inactive, but the "
                        "current state is Stable. Active members: m-1 (c, /10.0.0.1).")
