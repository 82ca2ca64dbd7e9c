"""How a broker talks to the active controller: ISR proposals, forwarding, registration.

On the active controller these are local calls; elsewhere they travel as Kafka requests
(AlterPartition, CreateTopics, BrokerRegistration, BrokerHeartbeat, AllocateProducerIds).
"""

from __future__ import annotations

import logging
from typing import Any

from core.common.errors import KafkaError, NotControllerError

log = logging.getLogger(__name__)


async def propose_isr(broker: Any, partition: Any, new_isr: list[int]) -> None:
    """Ask the controller to change a led partition's ISR (AlterPartition)."""
    reg = partition.registration
    shrink = len(new_isr) < len(reg.isr)
    partition.isr_change_pending = True
    try:
        if broker.is_controller():
            await broker.controller.alter_partition(partition.tp.topic, partition.tp.partition,
                                                    broker.node_id, reg.leader_epoch,
                                                    reg.partition_epoch, new_isr)
        else:
            raise NotControllerError("remote AlterPartition is not wired yet")
    except KafkaError as exc:
        partition.isr_change_pending = False
        log.info("ISR change %s -> %s for %s refused: %s", list(reg.isr), new_isr,
                 partition.tp, exc)
        return
    (broker.metrics.isr_shrinks if shrink else broker.metrics.isr_expands).inc()
    log.info("ISR of %s %s from %s to %s", partition.tp, "shrunk" if shrink else "expanded",
             list(reg.isr), new_isr)
