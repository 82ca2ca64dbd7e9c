"""All partition logs of one broker data directory (Kafka's LogManager).

Loads every ``<topic>-<partition>`` directory (recovering each), creates and deletes logs, writes
the directory-level checkpoints (recovery points, high watermarks, log start offsets) atomically,
runs retention / compaction / flush.ms, and isolates storage failures: a partition whose disk
fails (ENOSPC, EIO) or whose segment cannot be read goes offline (KafkaStorageError for it from
then on) while the others keep working.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.common.errors import KafkaError, KafkaStorageError
from core.common.types import TopicPartition
from core.storage.checkpoints import (
    atomic_write,
    read_offset_checkpoint,
    write_offset_checkpoint,
)
from core.storage.log import Log, parse_topic_partition

__all__ = [
    "HIGH_WATERMARK_CHECKPOINT",
    "LOG_START_OFFSET_CHECKPOINT",
    "RECOVERY_POINT_CHECKPOINT",
    "LogManager",
]

log = logging.getLogger(__name__)

RECOVERY_POINT_CHECKPOINT = "recovery-point-offset-checkpoint"
HIGH_WATERMARK_CHECKPOINT = "replication-offset-checkpoint"
LOG_START_OFFSET_CHECKPOINT = "log-start-offset-checkpoint"
CLEAN_SHUTDOWN_FILE = ".kafka_cleanshutdown"


class LogManager:
    """Owns the Log of every partition stored in ``data_dir``."""

    def __init__(self, data_dir: Path, default_config: dict[str, Any]) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.default_config = dict(default_config)
        self._logs: dict[TopicPartition, Log] = {}
        self._offline: dict[TopicPartition, str] = {}

    def set_default_config(self, config: dict[str, Any]) -> None:
        """The topic config a log gets when none is given (the broker's effective topic
        defaults: they change with dynamic broker configs). Running logs are not touched:
        their owner applies each log's own resolved config with Log.update_config."""
        self.default_config = dict(config)

    def _read_checkpoint(self, name: str) -> dict[TopicPartition, int]:
        try:
            return read_offset_checkpoint(self.data_dir / name)
        except (ValueError, OSError) as exc:
            log.warning("ignoring unreadable checkpoint %s: %s", name, exc)
            return {}

    _checkpoint_errno: int | None = None

    def load_all(
        self, config_for: Callable[[TopicPartition], dict[str, Any]] | None = None
    ) -> dict[TopicPartition, Log]:
        """Open (and recover) every partition directory; return the logs."""
        recovery = self._read_checkpoint(RECOVERY_POINT_CHECKPOINT)
        hws = self._read_checkpoint(HIGH_WATERMARK_CHECKPOINT)
        starts = self._read_checkpoint(LOG_START_OFFSET_CHECKPOINT)
        marker = self.data_dir / CLEAN_SHUTDOWN_FILE
        clean = marker.exists()
        for name in sorted(os.listdir(self.data_dir)):
            path = self.data_dir / name
            if name.endswith("-delete") and path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
                continue
            tp = parse_topic_partition(name)
            if tp is None or not path.is_dir() or tp in self._logs:
                continue
            config = config_for(tp) if config_for else self.default_config
            try:
                opened = Log(path, config, recovery_point=recovery.get(tp),
                             log_start_offset=starts.get(tp), high_watermark=hws.get(tp),
                             clean_shutdown=True if clean else None)
            except (OSError, KafkaError, ValueError) as exc:
                self._mark_offline(tp, f"cannot load {path}: {exc}")
                continue
            if opened.is_offline:
                self._mark_offline(tp, opened.offline_reason or "load failed")
            self._logs[tp] = opened
        marker.unlink(missing_ok=True)
        return dict(self._logs)

    def _mark_offline(self, tp: TopicPartition, reason: str) -> None:
        if tp not in self._offline:
            log.error("partition %s is OFFLINE: %s", tp, reason)
        self._offline[tp] = reason

    def get(self, tp: TopicPartition) -> Log | None:
        """The log of ``tp`` (possibly offline: its methods then raise KafkaStorageError)."""
        return self._logs.get(tp)

    def get_or_create(self, tp: TopicPartition, config: dict[str, Any] | None = None) -> Log:
        """The log of ``tp``, created empty if absent; ``config`` is applied either way."""
        existing = self._logs.get(tp)
        if existing is not None:
            if config is not None and not existing.is_offline:
                existing.update_config(config)
            return existing
        if tp in self._offline:
            raise KafkaStorageError(f"partition {tp} is offline: {self._offline[tp]}")
        try:
            created = Log(self.data_dir / str(tp), config if config is not None
                          else self.default_config)
        except OSError as exc:
            self._mark_offline(tp, str(exc))
            raise KafkaStorageError(f"cannot create log for {tp}: {exc}") from exc
        self._logs[tp] = created
        return created

    def reopen(self, tp: TopicPartition, config: dict[str, Any] | None = None) -> Log | None:
        """Try to bring an offline partition back (after a full disk was freed): close the
        failed log, recover it from its files as at startup, and return the new Log, or None
        if it still cannot be opened. The recovery truncates whatever the failure tore."""
        old = self._logs.get(tp)
        if old is not None and not old.is_offline:
            return old
        if old is not None:
            try:
                old.close()
            except (OSError, KafkaError):
                pass
        try:
            revived = Log(self.data_dir / str(tp),
                          config if config is not None else self.default_config)
        except (OSError, KafkaError, ValueError) as exc:
            self._mark_offline(tp, f"still cannot open: {exc}")
            return None
        if revived.is_offline:
            return None
        self._logs[tp] = revived
        self._offline.pop(tp, None)
        log.warning("partition %s is back ONLINE", tp)
        return revived

    def delete(self, tp: TopicPartition) -> None:
        """Close and remove the partition's directory (renamed to ``*-delete`` first)."""
        existing = self._logs.pop(tp, None)
        self._offline.pop(tp, None)
        path = self.data_dir / str(tp)
        if existing is not None:
            existing.delete()
        if path.exists():
            target = self.data_dir / f"{tp}.{uuid.uuid4().hex}-delete"
            try:
                os.replace(path, target)
                shutil.rmtree(target, ignore_errors=True)
            except OSError:
                shutil.rmtree(path, ignore_errors=True)

    def logs(self) -> dict[TopicPartition, Log]:
        return dict(self._logs)

    def offline_partitions(self) -> set[TopicPartition]:
        """Partitions whose storage failed (load or I/O error)."""
        for tp, item in self._logs.items():
            if item.is_offline:
                self._mark_offline(tp, item.offline_reason or "storage error")
        return set(self._offline)

    def checkpoint(self) -> None:
        """Write the recovery point, high watermark and log start offset checkpoints.

        A failure (a full disk) is logged once per kind of error and otherwise ignored: the
        previous checkpoint files stay intact (they are replaced atomically) and recovery
        only needs them to be no newer than the logs.
        """
        online = {tp: item for tp, item in self._logs.items() if not item.is_offline}
        try:
            write_offset_checkpoint(self.data_dir / RECOVERY_POINT_CHECKPOINT,
                                    {tp: item.recovery_point for tp, item in online.items()})
            write_offset_checkpoint(self.data_dir / HIGH_WATERMARK_CHECKPOINT,
                                    {tp: item.high_watermark for tp, item in online.items()})
            write_offset_checkpoint(self.data_dir / LOG_START_OFFSET_CHECKPOINT,
                                    {tp: item.log_start_offset for tp, item in online.items()})
        except OSError as exc:
            if exc.errno != self._checkpoint_errno:
                log.error("cannot write offset checkpoints in %s: %s", self.data_dir, exc)
            self._checkpoint_errno = exc.errno
            return
        self._checkpoint_errno = None

    def run_maintenance(self, now_ms: int | None = None) -> dict[str, int]:
        """flush.ms, retention and compaction over every online log; returns counters."""
        now = int(time.time() * 1000) if now_ms is None else now_ms
        stats = {"flushed": 0, "segments_deleted": 0, "bytes_compacted": 0, "errors": 0}
        for tp, item in list(self._logs.items()):
            if item.is_offline:
                continue
            try:
                stats["flushed"] += int(item.maybe_flush(now))
                stats["segments_deleted"] += item.enforce_retention(now)
                stats["bytes_compacted"] += item.compact(now)
            except KafkaStorageError as exc:
                self._mark_offline(tp, str(exc))
                stats["errors"] += 1
            except Exception:  # one bad partition must not stop maintenance of the others
                log.exception("maintenance of %s failed", tp)
                stats["errors"] += 1
        return stats

    def close(self) -> None:
        """Close every log, checkpoint, and mark the directory cleanly shut down."""
        for item in self._logs.values():
            item.close()
        self.checkpoint()
        if not self._offline:
            atomic_write(self.data_dir / CLEAN_SHUTDOWN_FILE, b"")
