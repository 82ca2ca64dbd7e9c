"""The controller itself checks a new topic's name and manual assignment, as Kafka's
ReplicationControlManager.createTopics does against its own state: a name that differs from an
existing topic's only by '.' versus '_' is INVALID_TOPIC_EXCEPTION "Topic 'x' collides with
existing topic: y" (validateNewTopicNames), and a bad manual assignment INVALID_REPLICA_ASSIGNMENT
with Kafka's messages. Checked under the controller's lock, two colliding creates back to back
(or at once) cannot both pass, whatever a broker's image said when the requests arrived.

A QuorumController over an in-memory metadata log (three registered brokers)."""

from __future__ import annotations

import asyncio

import pytest
from kio.schema.errors import ErrorCode

from core.common.errors import KafkaError
from tests.unit.metadata.test_controller_alter_partition_epochs import Cluster

pytestmark = pytest.mark.timeout(30)


def run(body):
    return asyncio.run(body())


async def brokers() -> Cluster:
    cluster = Cluster()
    for b in (1, 2, 3):
        await cluster.register(b)
    return cluster


def test_back_to_back_colliding_creates_the_second_is_invalid_topic() -> None:
    async def body():
        cluster = await brokers()
        await cluster.controller.create_topic("a.b", 1, 3)
        with pytest.raises(KafkaError) as raised:
            await cluster.controller.create_topic("a_b", 1, 3)
        return cluster, raised.value
    cluster, error = run(body)
    assert error.code == ErrorCode.invalid_topic_exception
    assert str(error) == "Topic 'a_b' collides with existing topic: a.b"
    assert "a.b" in cluster.image.topics and "a_b" not in cluster.image.topics


def test_concurrent_colliding_creates_exactly_one_wins() -> None:
    async def body():
        cluster = await brokers()
        results = await asyncio.gather(cluster.controller.create_topic("x_y.z", 2, 3),
                                       cluster.controller.create_topic("x.y_z", 2, 3),
                                       return_exceptions=True)
        return cluster, results
    cluster, (first, second) = run(body)
    assert first.name == "x_y.z"
    assert isinstance(second, KafkaError) and second.code == ErrorCode.invalid_topic_exception
    assert str(second) == "Topic 'x.y_z' collides with existing topic: x_y.z"
    assert "x.y_z" not in cluster.image.topics


def test_validate_only_collision_and_existing_name() -> None:
    async def body():
        cluster = await brokers()
        await cluster.controller.create_topic("m_n", 1, 1)
        errors = []
        for name in ("m.n", "m_n"):
            with pytest.raises(KafkaError) as raised:
                await cluster.controller.create_topic(name, 1, 1, validate_only=True)
            errors.append(raised.value)
        return errors
    collision, existing = run(body)
    assert collision.code == ErrorCode.invalid_topic_exception
    assert str(collision) == "Topic 'm.n' collides with existing topic: m_n"
    # the same name is TOPIC_ALREADY_EXISTS (Kafka overwrites the collision error with it)
    assert existing.code == ErrorCode.topic_already_exists


@pytest.mark.parametrize(("assignment", "message"), [
    ([(0, [1, 2]), (0, [2, 3])],
     "Found multiple manual partition assignments for partition 0"),
    ({0: [1, 2, 2]}, "The manual partition assignment includes the broker 2 more than once."),
    ({0: [1, 7]}, "The manual partition assignment includes broker 7, but no such broker is "
                  "registered."),
    ({0: [1, 2], 1: []}, "The manual partition assignment includes an empty replica list."),
    ({0: [1, 2], 1: [3]}, "The manual partition assignment includes a partition with 1 "
                          "replica(s), but this is not consistent with previous partitions, "
                          "which have 2 replica(s)."),
    ({0: [1, 2], 2: [2, 3]}, "partitions should be a consecutive 0-based integer sequence"),
])
def test_bad_manual_assignment_is_refused_by_the_controller(assignment, message) -> None:
    async def body():
        cluster = await brokers()
        with pytest.raises(KafkaError) as raised:
            await cluster.controller.create_topic("ra", -1, -1, assignment)
        return cluster, raised.value
    cluster, error = run(body)
    assert error.code == ErrorCode.invalid_replica_assignment
    assert str(error) == message
    assert "ra" not in cluster.image.topics


def test_good_manual_assignment_as_pairs_or_mapping() -> None:
    async def body():
        cluster = await brokers()
        await cluster.controller.create_topic("p", -1, -1, [(1, [2, 3]), (0, [3, 1])])
        await cluster.controller.create_topic("q", -1, -1, {0: [1, 2]})
        return cluster
    cluster = run(body)

    def replicas(topic: str) -> list[list[int]]:
        partitions = cluster.image.topics[topic].partitions
        return [list(partitions[p].replicas) for p in sorted(partitions)]
    assert replicas("p") == [[3, 1], [2, 3]]
    assert replicas("q") == [[1, 2]]
