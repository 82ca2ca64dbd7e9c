"""AlterReplicaLogDirs (34): move replicas between a broker's log dirs. A kaflab broker has one
log dir, so this answers as Kafka's ReplicaManager.alterReplicaLogDirs does on such a broker:
a path that is not the configured dir -> LOG_DIR_NOT_FOUND; a partition this broker has no
replica of -> REPLICA_NOT_AVAILABLE; an offline one -> KAFKA_STORAGE_ERROR; otherwise the
replica already lives there and nothing moves (NONE)."""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from core.broker.api import RequestContext, api
from core.common.types import TopicPartition
from core.protocol.build import build
from core.protocol.codec import response_class


@api(key=34, min_version=1, max_version=2)
async def handle_alter_replica_log_dirs(ctx: RequestContext, request: Any) -> Any:
    broker = ctx.broker
    log_dir = str(broker.data_dir)
    results: dict[str, list[dict[str, Any]]] = {}
    for d in request.dirs:
        for topic in d.topics:
            for index in topic.partitions:
                if d.path != log_dir:
                    error = ErrorCode.log_dir_not_found
                else:
                    partition = broker.replicas.partitions.get(TopicPartition(topic.name, index))
                    if partition is None:
                        error = ErrorCode.replica_not_available
                    elif getattr(partition.log, "is_offline", False):
                        error = ErrorCode.kafka_storage_error
                    else:
                        error = ErrorCode.none
                results.setdefault(topic.name, []).append(
                    dict(partition_index=index, error_code=error))
    return build(response_class(34, ctx.version), throttle_time=0,
                 results=[dict(topic_name=name, partitions=parts)
                          for name, parts in results.items()])
