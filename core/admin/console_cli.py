"""`python main.py produce` / `consume`: kafka-console-producer / -consumer style tools.

produce: one record per stdin line (optionally "key<sep>value"), headers from --header K=V,
to --partition or the default partitioner; exits non-zero if any record failed.

consume: without --group, reads every partition from the latest offset (or the earliest with
--from-beginning) and commits nothing. With --group it is a simple *assigned* consumer (no
rebalancing): it starts from the group's committed offsets (else earliest/latest), and commits
what it printed with OffsetCommit (generation -1), as `kafka-console-consumer` with manual
assignment would. Stops after --max-messages, or when idle for --timeout-ms.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import AsyncIterator
from typing import TextIO

from core.admin.browser import BrowsedRecord, Browser
from core.admin.client import AdminClient
from core.admin.producer import Producer, ProducerRecord
from core.common.errors import KafkaError

__all__ = ["consume", "produce", "run"]

_BATCH = 500


def run(command: str, args: argparse.Namespace) -> int:
    """Entry point from main.py; returns the exit code."""
    try:
        if command == "produce":
            return asyncio.run(produce(args))
        if command == "consume":
            return asyncio.run(consume(args))
    except KeyboardInterrupt:
        return 130
    except KafkaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"unknown command {command}", file=sys.stderr)
    return 2


def _headers(specs: list[str]) -> list[tuple[str, bytes | None]]:
    out = []
    for spec in specs:
        key, sep, value = spec.partition("=")
        out.append((key, value.encode() if sep else None))
    return out


async def produce(args: argparse.Namespace, stdin: TextIO | None = None) -> int:
    """Read lines from stdin and produce them; prints failures to stderr."""
    stdin = stdin or sys.stdin
    headers = _headers(getattr(args, "header", []) or [])
    separator = getattr(args, "key_separator", None)
    failures = 0
    async with AdminClient(args.bootstrap_server, client_id="kaflab-console-producer") as admin:
        producer = Producer(admin, acks=args.acks)
        pending: list[ProducerRecord] = []

        async def flush() -> None:
            nonlocal failures
            if not pending:
                return
            for report in await producer.send_many(args.topic, pending):
                if report.error is not None:
                    failures += 1
                    print(f"error: {report.error}", file=sys.stderr)
            pending.clear()

        loop = asyncio.get_running_loop()
        lines: asyncio.Queue[str | None] = asyncio.Queue()

        def read_all() -> None:  # a thread: stdin blocks
            for raw in stdin:
                loop.call_soon_threadsafe(lines.put_nowait, raw)
            loop.call_soon_threadsafe(lines.put_nowait, None)

        reader = loop.run_in_executor(None, read_all)
        while True:
            try:
                line = await asyncio.wait_for(lines.get(), 0.05 if pending else None)
            except TimeoutError:  # input paused: send what we have
                await flush()
                continue
            if line is None:
                break
            line = line.rstrip("\n")
            key: bytes | None = None
            value = line
            if separator:
                k, sep, v = line.partition(separator)
                if sep:
                    key, value = k.encode(), v
            pending.append(ProducerRecord(value.encode(), key, headers, args.partition))
            if len(pending) >= _BATCH:
                await flush()
        await flush()
        await reader
    return 1 if failures else 0


def _format(record: BrowsedRecord, print_key: bool, separator: str) -> str:
    value = "null" if record.value is None else record.value.decode("utf-8", "replace")
    if not print_key:
        return value
    key = "null" if record.key is None else record.key.decode("utf-8", "replace")
    return f"{key}{separator}{value}"


async def consume(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Print records of a topic to stdout (see module docstring)."""
    out = out or sys.stdout
    group = getattr(args, "group", None)
    max_messages = getattr(args, "max_messages", None)
    timeout_ms = getattr(args, "timeout_ms", None)
    start = "earliest" if args.from_beginning else "latest"
    printed = 0
    async with AdminClient(args.bootstrap_server, client_id="kaflab-console-consumer") as admin:
        browser = Browser(admin)
        partitions = await admin.partitions_of(args.topic)
        positions = await browser.start_offsets(args.topic, partitions, start)
        if group:
            committed = await admin.list_consumer_group_offsets(
                group, [(args.topic, p) for p in partitions])
            for (_t, p), c in committed.items():
                if c.offset >= 0:
                    positions[p] = c.offset
        to_commit: dict[tuple[str, int], int] = {}

        async def commit() -> None:
            if group and to_commit:
                await admin.alter_consumer_group_offsets(group, dict(to_commit))
                to_commit.clear()

        iterator = _tail_from(browser, args.topic, positions)
        idle = (timeout_ms / 1000) if timeout_ms else None
        try:
            while max_messages is None or printed < max_messages:
                try:
                    record = await asyncio.wait_for(iterator.__anext__(), idle)
                except TimeoutError:
                    break
                except StopAsyncIteration:
                    break
                out.write(_format(record, args.print_key, args.key_separator) + "\n")
                printed += 1
                to_commit[(record.topic, record.partition)] = record.offset + 1
                if printed % _BATCH == 0:
                    out.flush()
                    await commit()
        finally:
            out.flush()
            await iterator.aclose()
            await commit()
    print(f"Processed a total of {printed} messages", file=sys.stderr)
    return 0


async def _tail_from(browser: Browser, topic: str,
                     positions: dict[int, int]) -> AsyncIterator[BrowsedRecord]:
    """Merge tails of each partition started at its own offset."""
    queue: asyncio.Queue[BrowsedRecord | BaseException] = asyncio.Queue(maxsize=10000)

    async def one(p: int, offset: int) -> None:
        try:
            async for r in browser.tail(topic, [p], start=("offset", offset)):
                await queue.put(r)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            await queue.put(exc)

    tasks = [asyncio.ensure_future(one(p, o)) for p, o in positions.items()]
    try:
        while True:
            item = await queue.get()
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
