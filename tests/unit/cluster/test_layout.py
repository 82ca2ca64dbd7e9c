from pathlib import Path

import pytest

from core.cluster.layout import (
    BrokerPaths,
    bootstrap,
    broker_properties,
    parse_overrides,
    quorum_voters,
    render_properties,
)
from core.common.config import BrokerConfig, load_properties


def props(broker_id: int, brokers: int, **kw):
    return broker_properties(broker_id=broker_id, base_port=9092, voters_of=brokers,
                             data_dir=Path("/d/broker-1/data"), metrics_port=7000, **kw)


def test_paths():
    paths = BrokerPaths.of("/d", 2)
    assert paths.config == Path("/d/broker-2/server.properties")
    assert paths.log_file == Path("/d/broker-2/broker.log")
    assert paths.data == Path("/d/broker-2/data")


@pytest.mark.parametrize(("brokers", "voters"), [
    (1, "1@127.0.0.1:9092"),
    (2, "1@127.0.0.1:9092,2@127.0.0.1:9093"),
    (3, "1@127.0.0.1:9092,2@127.0.0.1:9093,3@127.0.0.1:9094"),
    (5, "1@127.0.0.1:9092,2@127.0.0.1:9093,3@127.0.0.1:9094"),
])
def test_quorum_voters(brokers, voters):
    assert quorum_voters(9092, brokers) == voters
    assert props(1, brokers)["controller.quorum.voters"] == voters


@pytest.mark.parametrize(("brokers", "rf"), [(1, "1"), (2, "2"), (3, "3"), (7, "3")])
def test_replication_factors(brokers, rf):
    p = props(1, brokers)
    assert p["default.replication.factor"] == rf
    assert p["offsets.topic.replication.factor"] == rf
    assert p["min.insync.replicas"] == "1"


def test_broker_properties_names_and_overrides():
    p = props(2, 3, overrides={"min.insync.replicas": "2", "num.partitions": "6"})
    assert p["node.id"] == "2"
    assert p["listeners"] == "PLAINTEXT://127.0.0.1:9093"
    assert p["log.dirs"] == "/d/broker-1/data"
    assert p["metrics.port"] == "7000"
    assert p["min.insync.replicas"] == "2"
    assert p["num.partitions"] == "6"
    assert props(4, 5)["process.roles"] == "broker"
    assert props(3, 5)["process.roles"] == "broker,controller"


def test_rendered_properties_parse_with_common_config(tmp_path):
    path = tmp_path / "server.properties"
    path.write_text(render_properties(props(1, 3), header="hello"))
    loaded = load_properties(str(path))
    assert loaded == props(1, 3)
    config = BrokerConfig(loaded)
    assert config["node.id"] == 1
    assert config["default.replication.factor"] == 3


def test_parse_overrides():
    assert parse_overrides(["a.b=1", " c = x=y "]) == {"a.b": "1", "c": "x=y"}
    assert parse_overrides(None) == {}
    with pytest.raises(ValueError):
        parse_overrides(["novalue"])
    with pytest.raises(ValueError):
        parse_overrides(["=1"])


def test_bootstrap():
    assert bootstrap(9092, range(1, 4)) == "127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094"
