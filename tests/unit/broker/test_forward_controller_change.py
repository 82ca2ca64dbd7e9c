"""forward() / _to_controller follow the active controller (fakes, no network): a request
waiting on a controller that stops answering is re-sent as soon as the quorum names another
leader; an answer with NOT_CONTROLLER (top level, per topic, per resource) is re-sent; all of
it bounded by the request's own timeout."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from kio.schema.errors import ErrorCode

from core.broker import quorum
from core.common.errors import NotControllerError
from core.network.client import BrokerConnectionError
from core.protocol.build import build
from core.protocol.codec import (
    decode_response,
    encode_response,
    request_class,
    response_class,
)

pytestmark = pytest.mark.timeout(30)

#: every test bounds its run well under the old 10 s wait, so the old code fails fast
BOUND_S = 3.0


class FakeLog:
    def __init__(self, leader: int) -> None:
        self.leader = leader

    def leader_id(self) -> int:
        return self.leader


@dataclass
class FakeBroker:
    leader: int
    node_id: int = 3
    voters: dict[int, tuple[str, int]] = field(
        default_factory=lambda: {1: ("c1", 1), 2: ("c2", 2), 3: ("c3", 3)})
    controller_conns: dict[int, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.metadata_log = FakeLog(self.leader)


class FakeConn:
    """A connection to controller `node`; `answer(request)` gives its response (None: never
    answers until the send's timeout)."""

    def __init__(self, node: int, answer: Any) -> None:
        self.node, self.answer, self.closed, self.sent = node, answer, False, 0

    async def send(self, request: Any, version: int | None = None, *,
                   timeout: float | None = None) -> Any:
        self.sent += 1
        response = self.answer(request)
        if response is None:
            await asyncio.sleep(timeout or 10.0)
            raise BrokerConnectionError(f"c{self.node}: no response within {timeout}")
        return response

    def close_nowait(self) -> None:
        self.closed = True


#: every connection opened, per controller, in order (the fakes' ports are the node ids)
Opened = dict[int, list[FakeConn]]


def sends(opened: Opened, node: int) -> int:
    return sum(c.sent for c in opened.get(node, []))


def install(monkeypatch: pytest.MonkeyPatch, answers: dict[int, Any]) -> dict[int, FakeConn]:
    """Fake connections; returns the latest connection per controller (all of them in
    `install.opened`)."""
    conns: dict[int, FakeConn] = {}
    opened: Opened = {}
    install.opened = opened  # type: ignore[attr-defined]

    class FakeKafkaConnection:
        @staticmethod
        async def connect(host: str, port: int, **_: Any) -> FakeConn:
            conns[port] = FakeConn(port, answers[port])
            opened.setdefault(port, []).append(conns[port])
            return conns[port]

    monkeypatch.setattr(quorum, "KafkaConnection", FakeKafkaConnection)
    return conns


@dataclass
class Ctx:
    version: int


def create_topics(timeout_ms: int = 30000) -> Any:
    return build(request_class(19, 5), topics=[dict(
        name="t", num_partitions=1, replication_factor=1, assignments=[], configs=[])],
        timeout=timeout_ms, validate_only=False)


def created(code: int = 0) -> Any:
    return build(response_class(19, 5), throttle_time=0, topics=[dict(
        name="t", error_code=code, error_message=None, num_partitions=1,
        replication_factor=1, configs=[])])


async def move_leader(broker: FakeBroker, to: int, after: float) -> None:
    await asyncio.sleep(after)
    broker.metadata_log.leader = to


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, BOUND_S))


def test_waiting_request_follows_a_controller_change_at_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    conns = install(monkeypatch, {1: lambda r: None, 2: lambda r: created()})
    broker = FakeBroker(leader=1)

    async def go() -> tuple[Any, float]:
        asyncio.get_running_loop().create_task(move_leader(broker, 2, 0.3))
        started = time.monotonic()
        response = await quorum.forward(broker, Ctx(5), create_topics())
        return response, time.monotonic() - started

    response, took = run(go())
    assert response.topics[0].error_code == 0
    assert took < 1.0
    assert conns[1].sent == 1 and conns[2].sent == 1
    assert conns[1].closed  # the stale connection is dropped (its other waiters re-send)
    assert 1 not in broker.controller_conns


def test_an_unknown_leader_is_not_a_move(monkeypatch: pytest.MonkeyPatch) -> None:
    """During an election the leader is unknown (-1): the wait on the old one goes on, and
    its answer (it was only slow) is returned, not given up."""
    async def slow(request: Any, version: int | None = None, *,
                   timeout: float | None = None) -> Any:
        await asyncio.sleep(0.4)
        return created()

    conns = install(monkeypatch, {1: lambda r: created()})
    broker = FakeBroker(leader=1)

    async def go() -> Any:
        conn = await quorum.controller_connection(broker)
        conn.send = slow  # type: ignore[method-assign]
        asyncio.get_running_loop().create_task(move_leader(broker, -1, 0.1))
        return await quorum.forward(broker, Ctx(5), create_topics(timeout_ms=1000))

    assert run(go()).topics[0].error_code == 0
    assert not conns[1].closed


@pytest.mark.parametrize("where", ["per-topic", "top-level"])
def test_not_controller_in_the_answer_is_resent_to_the_new_controller(
        monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    broker = FakeBroker(leader=1)
    if where == "per-topic":
        request, version = create_topics(), 5
        stale, fresh = created(ErrorCode.not_controller), created()
    else:
        request = build(request_class(46, 0), timeout=30000, topics=None)
        version = 0
        stale = build(response_class(46, 0), throttle_time=0,
                      error_code=ErrorCode.not_controller, error_message=None, topics=[])
        fresh = build(response_class(46, 0), throttle_time=0, error_code=0,
                      error_message=None, topics=[])

    def lost_leadership(r: Any) -> Any:
        broker.metadata_log.leader = 2  # the metadata naming the new one follows soon
        return stale

    conns = install(monkeypatch, {1: lost_leadership, 2: lambda r: fresh})
    response = run(quorum.forward(broker, Ctx(version), request))
    assert response is fresh
    assert conns[1].sent == 1 and conns[2].sent == 1
    assert conns[1].closed and 1 not in broker.controller_conns


def test_not_controller_per_resource_in_incremental_alter_configs(
        monkeypatch: pytest.MonkeyPatch) -> None:
    broker = FakeBroker(leader=1)
    request = build(request_class(44, 1), resources=[dict(
        resource_type=2, resource_name="t", configs=[dict(
            name="retention.ms", config_operation=0, value="1000")])], validate_only=False)

    def answer(code: int) -> Any:
        return build(response_class(44, 1), throttle_time=0, responses=[dict(
            error_code=code, error_message=None, resource_type=2, resource_name="t")])

    def lost_leadership(r: Any) -> Any:
        broker.metadata_log.leader = 2
        return answer(ErrorCode.not_controller)

    install(monkeypatch, {1: lost_leadership, 2: lambda r: answer(0)})
    response = run(quorum.forward(broker, Ctx(1), request))
    assert response.responses[0].error_code == 0


def test_describe_quorum_from_a_voter_that_lost_leadership_is_resent(
        monkeypatch: pytest.MonkeyPatch) -> None:
    broker = FakeBroker(leader=1)
    request = build(request_class(55, 1), topics=[dict(
        topic_name="__cluster_metadata", partitions=[dict(partition_index=0)])])

    def answer(code: int, leader: int) -> Any:
        return build(response_class(55, 1), error_code=code, topics=[dict(
            topic_name="__cluster_metadata", partitions=[dict(
                partition_index=0, error_code=code, leader_id=leader, leader_epoch=2,
                high_watermark=-1, current_voters=[], observers=[])])])

    def not_leader(r: Any) -> Any:
        broker.metadata_log.leader = 2
        return answer(ErrorCode.not_leader_or_follower, 2)

    install(monkeypatch, {1: not_leader, 2: lambda r: answer(0, 2)})
    response = run(quorum.forward(broker, Ctx(1), request))
    assert response.error_code == 0 and response.topics[0].partitions[0].leader_id == 2


def test_bounded_by_the_requests_own_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """No answer within the request's timeout (500 ms, not CONTROLLER_TIMEOUT_S): the client
    gets NOT_CONTROLLER per topic (retriable), not a closed connection."""
    install(monkeypatch, {1: lambda r: None})
    broker = FakeBroker(leader=1)

    async def go() -> tuple[Any, float]:
        started = time.monotonic()
        response = await quorum.forward(broker, Ctx(5), create_topics(timeout_ms=500))
        return response, time.monotonic() - started

    response, took = run(go())
    assert response.topics[0].error_code == ErrorCode.not_controller
    assert response.topics[0].name == "t"
    assert 0.4 < took < 1.5


def test_describe_quorum_unanswered_raises_for_its_handler(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """DescribeQuorum's handler answers with the voter's own view when forwarding fails."""
    install(monkeypatch, {1: lambda r: None})
    broker = FakeBroker(leader=1)
    monkeypatch.setattr(quorum, "CONTROLLER_TIMEOUT_S", 0.5)
    request = build(request_class(55, 1), topics=[dict(
        topic_name="__cluster_metadata", partitions=[dict(partition_index=0)])])
    with pytest.raises(NotControllerError):
        run(quorum.forward(broker, Ctx(1), request))


FORWARDED = {  # api key -> (versions the handlers serve, a request's fields)
    19: (range(2, 6), dict(topics=[dict(name="a", num_partitions=1, replication_factor=1,
                                        assignments=[], configs=[])],
                           timeout=1000, validate_only=False)),
    20: (range(1, 6), dict(topic_names=["a", "b"], timeout=1000)),
    37: (range(0, 4), dict(topics=[dict(name="a", count=3, assignments=None)], timeout=1000,
                           validate_only=False)),
    33: (range(0, 3), dict(resources=[dict(resource_type=2, resource_name="a", configs=[])],
                           validate_only=False)),
    44: (range(0, 2), dict(resources=[dict(resource_type=2, resource_name="a", configs=[])],
                           validate_only=False)),
    43: (range(0, 3), dict(election_type=0, topic_partitions=[dict(topic="a", partitions=[0])],
                           timeout=1000)),
    45: (range(0, 1), dict(timeout=1000, topics=[dict(name="a", partitions=[dict(
        partition_index=0, replicas=[1])])])),
    46: (range(0, 1), dict(timeout=1000, topics=None)),
}


@pytest.mark.parametrize("key", sorted(FORWARDED))
def test_unanswered_forward_answers_not_controller_in_each_api(key: int) -> None:
    """Every forwarded API's NOT_CONTROLLER answer encodes at every served version and is
    recognised by says_not_controller (where each API carries its errors)."""
    versions, fields = FORWARDED[key]
    for version in versions:
        request = build(request_class(key, version), **fields)
        answer = quorum.not_controller_response(request, version, "no controller")
        assert answer is not None
        _cid, decoded = decode_response(key, version, encode_response(key, version, 7, answer)[4:])
        assert quorum.says_not_controller(key, decoded), (key, version)
        codes = quorum.error_codes(decoded)
        assert codes == {ErrorCode.not_controller}, (key, version, codes)


def test_not_controller_until_the_deadline_is_what_the_client_gets(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """No controller answers otherwise in time: the last NOT_CONTROLLER answer is returned
    (re-sent meanwhile, not returned at the first one)."""
    install(monkeypatch, {1: lambda r: created(ErrorCode.not_controller)})
    broker = FakeBroker(leader=1)

    async def go() -> tuple[Any, float]:
        started = time.monotonic()
        response = await quorum.forward(broker, Ctx(5), create_topics(timeout_ms=600))
        return response, time.monotonic() - started

    response, took = run(go())
    assert response.topics[0].error_code == ErrorCode.not_controller
    assert took >= 0.5 and sends(install.opened, 1) >= 3  # type: ignore[attr-defined]
    # as Kafka does, each NOT_CONTROLLER answer closes the connection to that controller
    assert all(c.closed for c in install.opened[1][:-1])  # type: ignore[attr-defined]


def test_request_timeout() -> None:
    assert quorum.request_timeout_s(create_topics(timeout_ms=2500)) == 2.5
    assert quorum.request_timeout_s(create_topics(timeout_ms=0)) == quorum.CONTROLLER_TIMEOUT_S
    no_field = build(request_class(44, 1), resources=[], validate_only=False)
    assert quorum.request_timeout_s(no_field) == quorum.CONTROLLER_TIMEOUT_S


def test_internal_requests_follow_a_controller_change(monkeypatch: pytest.MonkeyPatch) -> None:
    """A heartbeat waiting on a paused controller goes to the new one at once, too."""
    def beat(r: Any) -> Any:
        return build(response_class(63, 0), throttle_time=0, error_code=0, is_caught_up=True,
                     is_fenced=False, should_shut_down=False)

    conns = install(monkeypatch, {1: lambda r: None, 2: beat})
    broker = FakeBroker(leader=1)
    broker.broker_epoch = 5  # type: ignore[attr-defined]
    broker.image = type("Image", (), {"offset": 10})()  # type: ignore[attr-defined]

    async def go() -> float:
        asyncio.get_running_loop().create_task(move_leader(broker, 2, 0.3))
        started = time.monotonic()
        response = await quorum.heartbeat(broker)
        assert response.error_code == 0
        return time.monotonic() - started

    assert run(go()) < 1.0
    assert conns[2].sent == 1
