"""Error codes in admin responses -> KafkaError subclasses with Kafka's own messages.

Classes come from core.common.errors when it has one for the code; for the others a subclass
named after the code (e.g. ``LeaderNotAvailableError``) is generated here, so callers can catch
precise types. When a broker sends no error message, Kafka's default message for the code is used.
"""

from __future__ import annotations

import core.common.errors as _common
from core.common.errors import ErrorCode, KafkaError

__all__ = ["KAFKA_MESSAGES", "error_class", "error_for", "raise_for"]

#: Kafka's default messages (org.apache.kafka.common.protocol.Errors) for common codes.
KAFKA_MESSAGES: dict[ErrorCode, str] = {
    ErrorCode.unknown_server_error:
        "The server experienced an unexpected error when processing the request.",
    ErrorCode.offset_out_of_range:
        "The requested offset is not within the range of offsets maintained by the server.",
    ErrorCode.corrupt_message:
        "This message has failed its CRC checksum, exceeds the valid size, has a null key for "
        "a compacted topic, or is otherwise corrupt.",
    ErrorCode.unknown_topic_or_partition: "This server does not host this topic-partition.",
    ErrorCode.leader_not_available:
        "There is no leader for this topic-partition as we are in the middle of a leadership "
        "election.",
    ErrorCode.not_leader_or_follower:
        "For requests intended only for the leader, this error indicates that the broker is "
        "not the current leader. For requests intended for any replica, this error indicates "
        "that the broker is not a replica of the topic partition.",
    ErrorCode.request_timed_out: "The request timed out.",
    ErrorCode.broker_not_available: "The broker is not available.",
    ErrorCode.replica_not_available:
        "The replica is not available for the requested topic-partition.",
    ErrorCode.message_too_large:
        "The request included a message larger than the max message size the server will "
        "accept.",
    ErrorCode.network_exception: "The server disconnected before a response was received.",
    ErrorCode.coordinator_load_in_progress:
        "The coordinator is loading and hence can't process requests.",
    ErrorCode.coordinator_not_available: "The coordinator is not available.",
    ErrorCode.not_coordinator: "This is not the correct coordinator.",
    ErrorCode.invalid_topic_exception:
        "The request attempted to perform an operation on an invalid topic.",
    ErrorCode.record_list_too_large:
        "The request included message batch larger than the configured segment size on the "
        "server.",
    ErrorCode.not_enough_replicas:
        "Messages are rejected since there are fewer in-sync replicas than required.",
    ErrorCode.not_enough_replicas_after_append:
        "Messages are written to the log, but to fewer in-sync replicas than required.",
    ErrorCode.invalid_required_acks:
        "Produce request specified an invalid value for required acks.",
    ErrorCode.illegal_generation: "Specified group generation id is not valid.",
    ErrorCode.invalid_group_id: "The configured groupId is invalid.",
    ErrorCode.unknown_member_id: "The coordinator is not aware of this member.",
    ErrorCode.rebalance_in_progress: "The group is rebalancing, so a rejoin is needed.",
    ErrorCode.invalid_commit_offset_size: "The committing offset data size is not valid.",
    ErrorCode.topic_authorization_failed: "Topic authorization failed.",
    ErrorCode.group_authorization_failed: "Group authorization failed.",
    ErrorCode.cluster_authorization_failed: "Cluster authorization failed.",
    ErrorCode.invalid_timestamp: "The timestamp of the message is out of acceptable range.",
    ErrorCode.unsupported_version: "The version of API is not supported.",
    ErrorCode.topic_already_exists: "Topic with this name already exists.",
    ErrorCode.invalid_partitions: "Number of partitions is below 1.",
    ErrorCode.invalid_replication_factor:
        "Replication factor is below 1 or larger than the number of available brokers.",
    ErrorCode.invalid_replica_assignment: "Replica assignment is invalid.",
    ErrorCode.invalid_config: "Configuration is invalid.",
    ErrorCode.not_controller: "This is not the correct controller for this cluster.",
    ErrorCode.invalid_request:
        "This most likely occurs because of a request being malformed by the client library "
        "or the message was sent to an incompatible broker. See the broker logs for more "
        "details.",
    ErrorCode.policy_violation: "Request parameters do not satisfy the configured policy.",
    ErrorCode.out_of_order_sequence_number:
        "The broker received an out of order sequence number.",
    ErrorCode.duplicate_sequence_number: "The broker received a duplicate sequence number.",
    ErrorCode.invalid_producer_epoch: "Producer attempted to produce with an old epoch.",
    ErrorCode.topic_deletion_disabled: "Topic deletion is disabled.",
    ErrorCode.kafka_storage_error: "Disk error when trying to access log file on the disk.",
    ErrorCode.log_dir_not_found:
        "The user-specified log directory is not found in the broker config.",
    ErrorCode.unknown_leader_epoch:
        "The leader epoch in the request is newer than the epoch on the broker.",
    ErrorCode.fenced_leader_epoch:
        "The leader epoch in the request is older than the epoch on the broker.",
    ErrorCode.non_empty_group: "The group is not empty.",
    ErrorCode.group_id_not_found: "The group id does not exist.",
    ErrorCode.offset_not_available:
        "The leader high watermark has not caught up from a recent leader election so the "
        "offsets cannot be guaranteed to be monotonically increasing.",
    ErrorCode.preferred_leader_not_available: "The preferred leader was not available.",
    ErrorCode.election_not_needed: "Leader election not needed for topic partition.",
    ErrorCode.eligible_leaders_not_available:
        "Eligible topic partition leaders are not available.",
    ErrorCode.unknown_topic_id: "This server does not host this topic ID.",
    ErrorCode.throttling_quota_exceeded: "The throttling quota has been exceeded.",
    ErrorCode.unstable_offset_commit: "There are unstable offsets that need to be cleared.",
    ErrorCode.group_subscribed_to_topic:
        "Deleting offsets of a topic is forbidden while the consumer group is actively "
        "subscribed to it.",
    ErrorCode.producer_fenced:
        "There is a newer producer with the same transactionalId which fences the current one.",
    ErrorCode.invalid_record:
        "This record has failed the validation on broker and hence will be rejected.",
    ErrorCode.member_id_required:
        "The group member needs to have a valid member id before actually entering a "
        "consumer group.",
}


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def _build_classes() -> dict[ErrorCode, type[KafkaError]]:
    classes: dict[ErrorCode, type[KafkaError]] = {}
    for value in vars(_common).values():
        if isinstance(value, type) and issubclass(value, KafkaError) and value is not KafkaError:
            classes.setdefault(value.code, value)
    for code in ErrorCode:
        if code == ErrorCode.none or code in classes:
            continue
        name = _camel(code.name)
        name = name if name.endswith(("Error", "Exception")) else name + "Error"
        name = name.replace("Exception", "Error")
        cls = type(name, (KafkaError,), {"code": code, "__doc__": f"Kafka error {code.name}.",
                                         "__module__": __name__})
        globals()[name] = cls
        __all__.append(name)
        classes[code] = cls
    return classes


_CLASSES = _build_classes()


def error_class(code: int | ErrorCode) -> type[KafkaError]:
    """The KafkaError subclass for an error code."""
    try:
        return _CLASSES.get(ErrorCode(int(code)), KafkaError)
    except ValueError:
        return KafkaError


def error_for(code: int | ErrorCode, message: str | None = None,
              context: str = "") -> KafkaError | None:
    """The exception for an error code in a response (None for NONE).

    The text is ``"<context>: <CODE_NAME>: <broker message or Kafka's default>"``.
    """
    try:
        ec = ErrorCode(int(code))
    except ValueError:
        return KafkaError(f"{context}: unknown error code {int(code)}")
    if ec == ErrorCode.none:
        return None
    text = message or KAFKA_MESSAGES.get(ec, "")
    prefix = f"{context}: " if context else ""
    return error_class(ec)(f"{prefix}{ec.name.upper()}" + (f": {text}" if text else ""), ec)


def raise_for(code: int | ErrorCode, message: str | None = None, context: str = "") -> None:
    """Raise `error_for(...)` unless the code is NONE."""
    exc = error_for(code, message, context)
    if exc is not None:
        raise exc
