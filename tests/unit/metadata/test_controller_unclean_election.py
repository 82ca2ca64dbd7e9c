"""Unclean leader election (unclean.leader.election.enable), as Kafka's KRaft controller
resolves it: the topic config, else the dynamic broker config (this node's, then the cluster
default ""), else the controller's server.properties, else false.

The partition: replicas 1, 2, 3, ISR shrunk to [1], then brokers 1 and 2 fenced (leaderless:
its only ISR member is gone). When broker 2 comes back, it may lead only by an unclean
election, with ISR [2].
"""

from __future__ import annotations

import pytest

from core.common.config import BrokerConfig
from core.metadata.controller import QuorumController
from core.metadata.image import NO_LEADER
from tests.unit.metadata.test_controller_alter_partition_epochs import Cluster, run

pytestmark = pytest.mark.timeout(30)


async def leaderless_then_broker_2_returns(c: Cluster, *, broker_default: str | None = None,
                                           node_value: str | None = None,
                                           topic_value: str | None = None) -> tuple[int, tuple]:
    await c.start(topic_isr=[1])
    if broker_default is not None:
        await c.controller.alter_configs(
            "broker", "", {"unclean.leader.election.enable": broker_default})
    if node_value is not None:
        await c.controller.alter_configs(
            "broker", "1", {"unclean.leader.election.enable": node_value})
    if topic_value is not None:
        await c.controller.alter_configs(
            "topic", "t", {"unclean.leader.election.enable": topic_value})
    for b in (1, 2):
        await c.controller.heartbeat(b, c.epochs[b], want_fence=True, want_shutdown=False)
    assert c.part().leader == NO_LEADER
    await c.controller.heartbeat(2, c.epochs[2], want_fence=False, want_shutdown=False)
    return c.part().leader, c.part().isr


def static_cluster(value: str) -> Cluster:
    c = Cluster()
    c.controller = QuorumController(1, BrokerConfig({"unclean.leader.election.enable": value}),
                                    c.log, lambda: c.log.image)
    return c


def test_off_by_default_the_partition_stays_offline() -> None:
    leader, isr = run(leaderless_then_broker_2_returns(Cluster()))
    assert leader == NO_LEADER and isr == (1,)


def test_static_config_true_elects_the_returning_replica() -> None:
    leader, isr = run(leaderless_then_broker_2_returns(static_cluster("true")))
    assert (leader, isr) == (2, (2,))


def test_dynamic_cluster_default_applies_without_restart() -> None:
    leader, isr = run(leaderless_then_broker_2_returns(Cluster(), broker_default="true"))
    assert (leader, isr) == (2, (2,))


def test_dynamic_value_of_the_controller_node_beats_the_cluster_default() -> None:
    leader, _ = run(leaderless_then_broker_2_returns(Cluster(), broker_default="true",
                                                     node_value="false"))
    assert leader == NO_LEADER


def test_topic_config_beats_the_dynamic_default() -> None:
    leader, _ = run(leaderless_then_broker_2_returns(Cluster(), broker_default="true",
                                                     topic_value="false"))
    assert leader == NO_LEADER
    leader, isr = run(leaderless_then_broker_2_returns(static_cluster("false"),
                                                       topic_value="true"))
    assert (leader, isr) == (2, (2,))
