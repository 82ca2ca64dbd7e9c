"""The single-voter path (`serve --brokers 1`): a LocalMetadataLog is always ready, so the
controller acts at once (it waits for MetadataLog.leader_ready only on a Raft quorum), and
after a restart the replayed log is what it checks against."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest
from kio.schema.errors import ErrorCode

from core.common.config import BrokerConfig
from core.common.errors import KafkaError
from core.metadata.controller import QuorumController
from core.metadata.image import MetadataImage
from core.metadata.log import LocalMetadataLog
from core.metadata.records import decode_record

pytestmark = pytest.mark.timeout(30)


class Broker:
    """What BrokerServer does with a LocalMetadataLog: fold batches into its image."""

    def __init__(self, path: Path) -> None:
        self.image = MetadataImage()
        self.log = LocalMetadataLog(path, 1, fsync=False)
        self.log.add_batch_listener(self.apply)
        self.controller = QuorumController(1, BrokerConfig({}), self.log, lambda: self.image)
        self.controller.ready_timeout_s = 0.05
        self.log.replay()

    def apply(self, entries: Sequence[tuple[int, bytes]]) -> None:
        self.image = self.image.apply_batch([decode_record(e) for _, e in entries],
                                            entries[-1][0])


def test_single_voter_controller_acts_at_once_and_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "__cluster_metadata.log"

    async def first() -> None:
        broker = Broker(path)
        assert broker.log.leader_ready() and broker.controller.ready()
        epoch = await broker.controller.register_broker(1, "127.0.0.1", 9092, None, "i")
        await broker.controller.heartbeat(1, epoch, want_fence=False, want_shutdown=False)
        created = await broker.controller.create_topic("a.b", 1, 1)
        assert created.name == "a.b" and "a.b" in broker.image.topics
        start, _ = await broker.controller.allocate_producer_ids(1, epoch)
        assert start == 0
        broker.log.close()

    async def again() -> None:
        broker = Broker(path)
        with pytest.raises(KafkaError) as collides:
            await broker.controller.create_topic("a_b", 1, 1)
        assert collides.value.code == ErrorCode.invalid_topic_exception
        epoch = broker.image.brokers[1].epoch
        start, _ = await broker.controller.allocate_producer_ids(1, epoch)
        assert start > 0
        broker.log.close()

    asyncio.run(first())
    asyncio.run(again())
