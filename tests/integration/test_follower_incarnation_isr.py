"""KIP-903 leader side on a real 3-broker `serve` cluster: a follower's new incarnation is not
re-added to the ISR on its previous incarnation's fetch progress.

Follower R of TOPIC-0 is stopped (controlled shutdown: fenced, out of the ISR). The test then
plays R's two incarnations over the wire:

* the old one: a replica Fetch (replica_id R) at the leader's high watermark, landing after R
  left the ISR (as an in-flight fetch of a stopping broker does);
* the new one: BrokerRegistration with a new incarnation id (a new broker epoch) and
  heartbeats, so the controller unfences it, but no Fetch: its disk could be empty.

The leader must not propose R for the ISR on the old incarnation's fetch; before KIP-903's
leader side it did at once (the controller accepts R's new epoch). Then the new incarnation
fetches at the high watermark itself and R rejoins (the control). The real R is started again
at the end. The cluster (a `serve` subprocess and its broker processes) is ended by PID in the
fixture's teardown.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kio.schema.errors import ErrorCode

from core.cluster.local import LocalCluster
from core.common.types import TopicPartition
from core.metadata.image import MetadataImage, PartitionRegistration
from core.network.client import KafkaConnection
from tests.fixtures import QUIET_CLUSTER_CONFIG, running_local_cluster, wait_for
from tests.integration.test_alter_partition_epochs import controller_id, metadata_image, port_of

confluent_kafka = pytest.importorskip("confluent_kafka")
from confluent_kafka import Producer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

pytestmark = pytest.mark.timeout(300)

TOPIC = "kip903-incarnations"
RECORDS = 200
#: how long R must stay out of the ISR: many leader maintenance rounds (0.5 s each)
WINDOW_S = 6.0
CONFIG = QUIET_CLUSTER_CONFIG


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    yield from running_local_cluster(tmp_path_factory, "kip903", CONFIG)


def reg(image: MetadataImage) -> PartitionRegistration:
    part = image.partition(TopicPartition(TOPIC, 0))
    assert part is not None
    return part


async def _connect(cluster: LocalCluster, broker_id: int) -> KafkaConnection:
    return await KafkaConnection.connect("127.0.0.1", port_of(cluster, broker_id),
                                         client_id="test-kip903", timeout=10)


async def _fetch(conn: KafkaConnection, replica_id: int, leader_epoch: int,
                 offset: int) -> Any:
    response = await conn.request(
        1, version=12, timeout=10, replica_id=replica_id, max_wait=0, min_bytes=0,
        max_bytes=1 << 20, isolation_level=0, session_id=0, session_epoch=-1,
        topics=[dict(topic=TOPIC, partitions=[dict(
            partition=0, current_leader_epoch=leader_epoch, fetch_offset=offset,
            last_fetched_epoch=-1, log_start_offset=0, partition_max_bytes=1 << 20)])],
        forgotten_topics_data=[], rack_id="")
    [[part]] = [t.partitions for t in response.responses]
    assert part.error_code == ErrorCode.none, part
    return part


async def _heartbeats(conn: KafkaConnection, broker_id: int, epoch: int,
                      answers: list[Any]) -> None:
    while True:
        answers.append(await conn.request(
            63, version=0, timeout=10, broker_id=broker_id, broker_epoch=epoch,
            current_metadata_offset=0, want_fence=False, want_shut_down=False))
        await asyncio.sleep(0.3)


def test_new_incarnation_is_not_re_added_on_the_old_ones_fetches(
        cluster: LocalCluster) -> None:
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    wait_for(lambda: len(admin.list_topics(timeout=5).brokers) == 3, 60, "3 brokers")
    cluster_id = admin.list_topics(timeout=5).cluster_id
    ctrl = controller_id(cluster)
    leader, follower = [b for b in (1, 2, 3) if b != ctrl]
    new = NewTopic(TOPIC, num_partitions=1, replica_assignment=[[leader, ctrl, follower]])
    admin.create_topics([new])[TOPIC].result(30)
    full = {leader, ctrl, follower}
    wait_for(lambda: set(reg(metadata_image(cluster, ctrl)).isr) == full, 60, "full ISR")
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all"})
    for i in range(RECORDS):
        producer.produce(TOPIC, value=b"v%d" % i, partition=0)
    assert producer.flush(30) == 0

    cluster.control.stop_sync(follower)
    wait_for(lambda: metadata_image(cluster, ctrl).brokers[follower].fenced
             and follower not in reg(metadata_image(cluster, ctrl)).isr, 60,
             f"broker {follower} fenced and out of the ISR")
    before = metadata_image(cluster, ctrl)
    old_epoch = before.brokers[follower].epoch
    assert controller_id(cluster) == ctrl and reg(before).leader == leader

    async def scenario() -> tuple[int, list[set[int]]]:
        leader_conn = await _connect(cluster, leader)
        ctrl_conn = await _connect(cluster, ctrl)
        heartbeat_conn = await _connect(cluster, ctrl)
        beats: list[Any] = []
        task = None
        try:
            epoch = reg(before).leader_epoch
            hw = (await _fetch(leader_conn, -1, epoch, 0)).high_watermark
            assert hw == RECORDS
            # the old incarnation's last fetch: it has everything up to the HW
            await _fetch(leader_conn, follower, epoch, hw)
            # the new incarnation registers and is unfenced, but does not fetch
            registered = await ctrl_conn.request(
                62, version=0, timeout=10, broker_id=follower, cluster_id=cluster_id,
                incarnation_id=uuid.uuid4(),
                listeners=[dict(name="PLAINTEXT", host="127.0.0.1",
                                port=port_of(cluster, follower), security_protocol=0)],
                features=[], rack=None)
            assert registered.error_code == ErrorCode.none, registered
            new_epoch = int(registered.broker_epoch)
            assert new_epoch > old_epoch
            task = asyncio.get_running_loop().create_task(
                _heartbeats(heartbeat_conn, follower, new_epoch, beats))

            def unfenced() -> bool:
                b = metadata_image(cluster, ctrl).brokers[follower]
                return b.epoch == new_epoch and not b.fenced
            deadline = time.monotonic() + 30
            while not unfenced():
                assert time.monotonic() < deadline, f"broker {follower} never unfenced"
                await asyncio.sleep(0.1)
            seen: list[set[int]] = []
            end = time.monotonic() + WINDOW_S
            while time.monotonic() < end:
                seen.append(set(reg(await asyncio.to_thread(metadata_image, cluster,
                                                            ctrl)).isr))
                await asyncio.sleep(0.2)
            # the control: the new incarnation itself reaches the HW and is re-added
            await _fetch(leader_conn, follower, epoch, hw)
            deadline = time.monotonic() + 30
            while follower not in reg(metadata_image(cluster, ctrl)).isr:
                assert time.monotonic() < deadline, \
                    "the new incarnation reached the HW but was not re-added"
                await asyncio.sleep(0.1)
            assert all(b.error_code == ErrorCode.none for b in beats), beats
            return new_epoch, seen
        finally:
            if task is not None:
                task.cancel()
            for conn in (leader_conn, ctrl_conn, heartbeat_conn):
                await conn.close()

    try:
        new_epoch, seen = asyncio.run(scenario())
        assert seen and all(follower not in isr for isr in seen), (
            f"broker {follower} (new epoch {new_epoch}) was re-added to the ISR on its old "
            f"incarnation's fetch: {seen}")
    finally:
        cluster.control.start_sync(follower)  # the real broker back (a third incarnation)
    wait_for(lambda: set(reg(metadata_image(cluster, ctrl)).isr) == full, 90,
             f"broker {follower}'s real process back in the ISR")
