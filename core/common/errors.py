"""Kafka error codes as exceptions.

The codes themselves come from kio's ErrorCode (generated from Kafka's own list); each exception
carries one, so a handler can turn any domain failure into the code a real broker would send.
"""

from __future__ import annotations

from collections.abc import Sequence

from kio.schema.errors import ErrorCode

__all__ = ["ErrorCode", "KafkaError", "RecordValidationError"]  # subclasses append themselves below


class KafkaError(Exception):
    """A failure that maps to one Kafka error code."""

    code: ErrorCode = ErrorCode.unknown_server_error

    def __init__(self, message: str = "", code: ErrorCode | None = None) -> None:
        super().__init__(message or self.__class__.__name__)
        if code is not None:
            self.code = code

    @property
    def retriable(self) -> bool:
        return bool(self.code.retriable)


class RecordValidationError(KafkaError):
    """Records of a batch refused one by one (Kafka's RecordValidationException): the whole
    batch is refused; ``record_errors`` are (index of the record in its batch, message) pairs,
    answered in ProduceResponse v8+ ``record_errors``; the exception's message (Kafka's
    summary, "One or more records have been rejected ...") is the ``error_message``.
    ``log_start_offset`` is the partition's, answered with the error as Kafka does (-1 if
    unknown)."""

    code: ErrorCode = ErrorCode.invalid_record

    def __init__(self, record_errors: Sequence[tuple[int, str | None]], *,
                 log_start_offset: int = -1, code: ErrorCode | None = None) -> None:
        self.record_errors: tuple[tuple[int, str | None], ...] = tuple(record_errors)
        self.log_start_offset = log_start_offset
        shown = []
        for index, message in self.record_errors[:3]:  # as Kafka's RecordError.toString
            quoted = "null" if message is None else f"'{message}'"
            shown.append(f"RecordError(batchIndex={index}, message={quoted})")
        super().__init__(
            f"One or more records have been rejected due to {len(self.record_errors)} record "
            "errors in total, and only showing the first three errors at most: "
            f"[{', '.join(shown)}]",
            code)


def _error(name: str, code: ErrorCode) -> type[KafkaError]:
    cls = type(name, (KafkaError,), {"code": code, "__doc__": f"Kafka error {code.name}."})
    globals()[name] = cls
    __all__.append(name)
    return cls


CorruptRecordError = _error("CorruptRecordError", ErrorCode.corrupt_message)
InvalidRecordError = _error("InvalidRecordError", ErrorCode.invalid_record)
UnsupportedForMessageFormatError = _error(
    "UnsupportedForMessageFormatError", ErrorCode.unsupported_for_message_format
)
OffsetOutOfRangeError = _error("OffsetOutOfRangeError", ErrorCode.offset_out_of_range)
UnknownTopicOrPartitionError = _error(
    "UnknownTopicOrPartitionError", ErrorCode.unknown_topic_or_partition
)
InvalidTopicError = _error("InvalidTopicError", ErrorCode.invalid_topic_exception)
TopicAlreadyExistsError = _error("TopicAlreadyExistsError", ErrorCode.topic_already_exists)
InvalidPartitionsError = _error("InvalidPartitionsError", ErrorCode.invalid_partitions)
InvalidReplicationFactorError = _error(
    "InvalidReplicationFactorError", ErrorCode.invalid_replication_factor
)
InvalidConfigError = _error("InvalidConfigError", ErrorCode.invalid_config)
InvalidRequestError = _error("InvalidRequestError", ErrorCode.invalid_request)
KafkaStorageError = _error("KafkaStorageError", ErrorCode.kafka_storage_error)
RecordTooLargeError = _error("RecordTooLargeError", ErrorCode.message_too_large)
RecordBatchTooLargeError = _error("RecordBatchTooLargeError", ErrorCode.record_list_too_large)
OutOfOrderSequenceError = _error(
    "OutOfOrderSequenceError", ErrorCode.out_of_order_sequence_number
)
DuplicateSequenceError = _error("DuplicateSequenceError", ErrorCode.duplicate_sequence_number)
InvalidProducerEpochError = _error("InvalidProducerEpochError", ErrorCode.invalid_producer_epoch)
ProducerFencedError = _error("ProducerFencedError", ErrorCode.producer_fenced)
UnknownProducerIdError = _error("UnknownProducerIdError", ErrorCode.unknown_producer_id)
NotLeaderOrFollowerError = _error("NotLeaderOrFollowerError", ErrorCode.not_leader_or_follower)
FencedLeaderEpochError = _error("FencedLeaderEpochError", ErrorCode.fenced_leader_epoch)
UnknownLeaderEpochError = _error("UnknownLeaderEpochError", ErrorCode.unknown_leader_epoch)
NotEnoughReplicasError = _error("NotEnoughReplicasError", ErrorCode.not_enough_replicas)
NotEnoughReplicasAfterAppendError = _error(
    "NotEnoughReplicasAfterAppendError", ErrorCode.not_enough_replicas_after_append
)
RequestTimedOutError = _error("RequestTimedOutError", ErrorCode.request_timed_out)
PolicyViolationError = _error("PolicyViolationError", ErrorCode.policy_violation)
NotControllerError = _error("NotControllerError", ErrorCode.not_controller)
CoordinatorNotAvailableError = _error(
    "CoordinatorNotAvailableError", ErrorCode.coordinator_not_available
)
NotCoordinatorError = _error("NotCoordinatorError", ErrorCode.not_coordinator)
CoordinatorLoadInProgressError = _error(
    "CoordinatorLoadInProgressError", ErrorCode.coordinator_load_in_progress
)
IllegalGenerationError = _error("IllegalGenerationError", ErrorCode.illegal_generation)
UnknownMemberIdError = _error("UnknownMemberIdError", ErrorCode.unknown_member_id)
RebalanceInProgressError = _error("RebalanceInProgressError", ErrorCode.rebalance_in_progress)
InvalidGroupIdError = _error("InvalidGroupIdError", ErrorCode.invalid_group_id)
GroupIdNotFoundError = _error("GroupIdNotFoundError", ErrorCode.group_id_not_found)
NonEmptyGroupError = _error("NonEmptyGroupError", ErrorCode.non_empty_group)
UnsupportedVersionError = _error("UnsupportedVersionError", ErrorCode.unsupported_version)
