"""AlterPartition broker-epoch checks on a real 3-broker `serve` cluster.

A follower R is restarted (a new incarnation: its registered broker epoch grows). Then:

* the partition leader re-adds R to the ISR: its AlterPartition v3 names R with the epoch of
  R's new registration (KIP-903), so the controller accepts it;
* a request in the name of R's old incarnation (its old BrokerEpoch), or of the leader with
  BrokerEpoch -1, gets a top-level STALE_BROKER_EPOCH and changes nothing;
* a request from the leader at its current epoch whose new ISR names R with R's old epoch gets
  INELIGIBLE_REPLICA for the partition and changes nothing.

Broker epochs and the partition's leader/partition epochs are read from the active
controller's metadata log file (read-only). The cluster (a `serve` subprocess and its broker
processes) is ended by PID in the fixture's teardown.
"""

from __future__ import annotations

import asyncio
import struct
import uuid
from collections.abc import Iterator
from typing import Any

import crc32c
import pytest
from kio.schema.errors import ErrorCode

from core.cluster.layout import BrokerPaths
from core.cluster.local import LocalCluster
from core.common.types import TopicPartition
from core.metadata.image import MetadataImage, PartitionRegistration
from core.metadata.records import decode_record
from core.network.client import KafkaConnection
from tests.fixtures import QUIET_CLUSTER_CONFIG, running_local_cluster, wait_for

confluent_kafka = pytest.importorskip("confluent_kafka")
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

pytestmark = pytest.mark.timeout(300)

TOPIC = "ap-epochs"
CONFIG = QUIET_CLUSTER_CONFIG


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    yield from running_local_cluster(tmp_path_factory, "ap-epochs", CONFIG)


def port_of(cluster: LocalCluster, broker_id: int) -> int:
    return cluster.port + broker_id - 1


def controller_id(cluster: LocalCluster) -> int:
    doc = cluster.control.read_cluster_json()
    assert doc is not None and doc.get("controller_id") in (1, 2, 3), doc
    return int(doc["controller_id"])


def metadata_image(cluster: LocalCluster, broker_id: int) -> MetadataImage:
    """The image folded from broker `broker_id`'s metadata log file, read without writing
    (raft.log: u32 length, u32 crc32c, body = i64 offset, i32 epoch, u8 flags, data; a torn
    tail ends the read)."""
    path = BrokerPaths.of(cluster.data_dir, broker_id).data / "metadata-quorum" / "raft.log"
    buffer = path.read_bytes()
    records, pos, last = [], 0, -1
    while pos + 8 <= len(buffer):
        length, crc = struct.unpack_from(">II", buffer, pos)
        body = buffer[pos + 8:pos + 4 + length]
        if length < 17 or len(body) != length - 4 or crc32c.crc32c(body) != crc:
            break
        offset, _epoch, flags = struct.unpack_from(">qiB", body, 0)
        assert not flags & 0x02, "the log starts at a snapshot: not expected in this test"
        if not flags & 0x01:
            try:
                records.append(decode_record(body[13:]))
            except ValueError:
                pass
        last = offset
        pos += 4 + length
    return MetadataImage().apply_batch(records, last)


def partition(image: MetadataImage) -> PartitionRegistration:
    reg = image.partition(TopicPartition(TOPIC, 0))
    assert reg is not None
    return reg


def alter_partition(cluster: LocalCluster, image: MetadataImage, *, sender: int,
                    sender_epoch: int, new_isr: list[tuple[int, int]]) -> Any:
    """AlterPartition v3 to the active controller for TOPIC-0 at the image's epochs."""
    reg = partition(image)
    topic_id = uuid.UUID(image.topics[TOPIC].topic_id)

    async def send() -> Any:
        conn = await KafkaConnection.connect("127.0.0.1", port_of(cluster, controller_id(cluster)),
                                             client_id="test-alter-partition", timeout=10)
        async with conn:
            return await conn.request(56, version=3, broker_id=sender, broker_epoch=sender_epoch,
                                      topics=[dict(topic_id=topic_id, partitions=[dict(
                                          partition_index=0, leader_epoch=reg.leader_epoch,
                                          new_isr_with_epochs=[
                                              dict(broker_id=b, broker_epoch=e)
                                              for b, e in new_isr],
                                          leader_recovery_state=0,
                                          partition_epoch=reg.partition_epoch)])])
    return asyncio.run(send())


def test_old_incarnation_epochs_cannot_change_the_isr(cluster: LocalCluster) -> None:
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    wait_for(lambda: len(admin.list_topics(timeout=5).brokers) == 3, 60, "3 brokers")
    ctrl = controller_id(cluster)
    leader, restarted = [b for b in (1, 2, 3) if b != ctrl]
    new = NewTopic(TOPIC, num_partitions=1, replica_assignment=[[leader, ctrl, restarted]])
    admin.create_topics([new])[TOPIC].result(30)
    full = {leader, ctrl, restarted}
    wait_for(lambda: set(partition(metadata_image(cluster, ctrl)).isr) == full, 60, "full ISR")
    before = metadata_image(cluster, ctrl)
    assert partition(before).leader == leader
    old_epoch = before.brokers[restarted].epoch

    cluster.control.restart_sync(restarted)

    # the leader re-adds the new incarnation: its v3 request names the new epoch
    def rejoined() -> bool:
        image = metadata_image(cluster, ctrl)
        broker = image.brokers[restarted]
        return (broker.epoch > old_epoch and not broker.fenced
                and set(partition(image).isr) == full)
    wait_for(rejoined, 90, f"broker {restarted} back in the ISR with a new epoch")
    assert controller_id(cluster) == ctrl and partition(metadata_image(cluster, ctrl)).leader \
        == leader, "leadership moved: the rest of this test assumes it did not"

    image = metadata_image(cluster, ctrl)
    epochs = {b: r.epoch for b, r in image.brokers.items()}
    shrink = [(leader, epochs[leader]), (restarted, epochs[restarted])]  # drops `ctrl`

    # the restarted broker's old incarnation, and a sender without an epoch: stale
    for sender, sender_epoch in ((restarted, old_epoch), (leader, -1)):
        response = alter_partition(cluster, image, sender=sender, sender_epoch=sender_epoch,
                                   new_isr=shrink)
        assert response.error_code == ErrorCode.stale_broker_epoch, (sender, response)
        assert response.topics == ()

    # the leader at its current epoch, naming the restarted follower with its old epoch
    stale_member = [(leader, epochs[leader]), (restarted, old_epoch)]
    response = alter_partition(cluster, image, sender=leader, sender_epoch=epochs[leader],
                               new_isr=stale_member)
    assert response.error_code == ErrorCode.none
    [[result]] = [t.partitions for t in response.topics]
    assert result.error_code == ErrorCode.ineligible_replica, result

    after = metadata_image(cluster, ctrl)
    assert partition(after) == partition(image), "a refused AlterPartition changed the partition"
    assert set(partition(after).isr) == full
