"""CreateTopics as Kafka's controller answers it, on a 3-broker cluster, over the wire (kio).

* Colliding names ('.' versus '_') are refused by the controller itself, against its own
  state (ReplicationControlManager.validateNewTopicNames): two colliding creates sent at the
  same moment cannot both pass a broker's not yet updated image; exactly one is created, the
  other gets INVALID_TOPIC_EXCEPTION "Topic 'x' collides with existing topic: y".
* The configs CreateTopics returns (validate_only or not) are the new topic's effective
  configs with their sources, as DescribeConfigs then describes the topic: a dynamic cluster
  default is source 3 (DYNAMIC_DEFAULT_BROKER_CONFIG) with its value, a server.properties
  value source 4, a request override source 1 (was: static defaults, source 5 for all but
  overrides).
"""

from __future__ import annotations

import threading
import uuid

import pytest
from kio.schema.errors import ErrorCode

from tests.fixtures import raw_request, running_local_cluster, wait_for

pytestmark = pytest.mark.timeout(180)

#: log.roll.ms from server.properties (static, source 4): segment.ms's broker default
CONFIG = {"group.initial.rebalance.delay.ms": "0", "offsets.topic.num.partitions": "3",
          "log.roll.ms": "7200000"}
RETENTION = "3600000"  # the dynamic cluster default of log.retention.ms this test sets


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    yield from running_local_cluster(tmp_path_factory, "create-topics-controller", CONFIG)


def _controller_port(cluster) -> int:
    response = raw_request(cluster.port, 3, 12, topics=[], allow_auto_topic_creation=False,
                           include_topic_authorized_operations=False)
    assert response.controller_id in (1, 2, 3)
    return cluster.port + response.controller_id - 1


def _create(port: int, name: str, *, validate_only: bool = False,
            configs: dict[str, str] | None = None) -> object:
    response = raw_request(port, 19, 5, timeout=15_000, validate_only=validate_only, topics=[
        dict(name=name, num_partitions=1, replication_factor=3, assignments=[],
             configs=[dict(name=k, value=v) for k, v in (configs or {}).items()])])
    return response.topics[0]


def test_colliding_creates_at_the_same_moment_only_one_is_created(cluster):
    port = _controller_port(cluster)
    for _ in range(3):
        stem = uuid.uuid4().hex[:8]
        names = [f"race_{stem}.a", f"race.{stem}_a"]
        results: dict[str, object] = {}
        start = threading.Barrier(len(names))

        def send(name: str, start: threading.Barrier = start,
                 results: dict[str, object] = results) -> None:
            start.wait()
            results[name] = _create(port, name)

        threads = [threading.Thread(target=send, args=(n,)) for n in names]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        codes = {n: r.error_code for n, r in results.items()}
        assert sorted(codes.values()) == sorted([ErrorCode.none,
                                                 ErrorCode.invalid_topic_exception]), codes
        (winner,) = [n for n in names if codes[n] == ErrorCode.none]
        (loser,) = [n for n in names if n != winner]
        assert results[loser].error_message == \
            f"Topic '{loser}' collides with existing topic: {winner}"


def _set_cluster_default(port: int, name: str, value: str) -> None:
    response = raw_request(port, 44, 1, validate_only=False, resources=[dict(
        resource_type=4, resource_name="",
        configs=[dict(name=name, config_operation=0, value=value)])])
    assert response.responses[0].error_code == ErrorCode.none, response


def _returned(result) -> dict[str, tuple[str | None, int]]:
    assert result.error_code == ErrorCode.none, result
    return {c.name: (c.value, int(c.config_source)) for c in result.configs}


def _described(port: int, topic: str) -> dict[str, tuple[str | None, int]]:
    response = raw_request(port, 32, 4, include_synonyms=False, include_documentation=False,
                           resources=[dict(resource_type=2, resource_name=topic,
                                           configuration_keys=None)])
    result = response.results[0]
    assert result.error_code == ErrorCode.none, result
    return {c.name: (c.value, int(c.config_source)) for c in result.configs}


def test_returned_configs_follow_dynamic_defaults_as_describe_configs_does(cluster):
    _set_cluster_default(cluster.port, "log.retention.ms", RETENTION)
    override = {"max.message.bytes": "200000"}
    checked: list[object] = []

    def validated() -> bool:
        # CreateTopics is answered by the controller: wait until it applied the default
        port = _controller_port(cluster)
        checked[:] = [port, _returned(_create(port, f"vo-{uuid.uuid4().hex[:8]}",
                                              validate_only=True, configs=override))]
        return checked[1]["retention.ms"] == (RETENTION, 3)

    wait_for(validated, timeout=30, what="validate_only CreateTopics with the dynamic default")
    port, configs = checked
    assert configs["retention.ms"] == (RETENTION, 3)  # DYNAMIC_DEFAULT_BROKER_CONFIG
    assert configs["segment.ms"] == ("7200000", 4)  # STATIC_BROKER_CONFIG (log.roll.ms)
    assert configs["max.message.bytes"] == ("200000", 1)  # DYNAMIC_TOPIC_CONFIG
    assert configs["cleanup.policy"] == ("delete", 5)  # DEFAULT_CONFIG

    # creating it for real returns the same, and DescribeConfigs then agrees entry by entry
    topic = f"cfg-{uuid.uuid4().hex[:8]}"
    created = _returned(_create(port, topic, configs=override))
    assert created == configs
    described: dict[str, tuple[str | None, int]] = {}

    def seen() -> bool:
        described.update(_described(port, topic))
        return True

    wait_for(seen, timeout=15, what=f"{topic} described by the controller")
    assert described == created
