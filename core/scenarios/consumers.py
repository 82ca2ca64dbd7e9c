"""A scenario's consumer groups: real group members (core.scenarios.member) that fetch their
assigned partitions, process (slowly when asked), and commit after each fetch.

:class:`GroupConsumers` holds the members of one group id; the runner can stop them (each
commits and leaves the group) and start them again, which is what a reset of the group's
offsets needs (core.admin.offsets_io.reset_offsets with the runner as the owner).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from core.admin.browser import Browser
from core.admin.client import AdminClient, OffsetResult
from core.common.errors import ErrorCode, KafkaError
from core.scenarios.member import TP, GroupMember, MemberConfig
from core.scenarios.model import ConsumerSpec

log = logging.getLogger(__name__)

#: how long a stop waits for a member to commit and leave before cancelling it
STOP_GRACE_S = 15.0
#: how often the group's leader compares the topics' partition counts with its assignment
METADATA_CHECK_S = 3.0


class ScenarioConsumer:
    """One member: join, read the assigned partitions from the committed offsets (else the
    earliest: auto.offset.reset=earliest), count records, commit, rejoin on rebalance."""

    def __init__(self, bootstrap: str, spec: ConsumerSpec, index: int,
                 on_records: Callable[[str, int], None],
                 config: MemberConfig | None = None,
                 on_error: Callable[[str], None] | None = None) -> None:
        self.spec = spec
        self.index = index
        self.on_records = on_records
        self.on_error = on_error
        # the client id starts the member id, so the range assignor orders members by index
        self.client_id = f"kaflab-scenario-{spec.group}-{index:03d}"
        self.admin = AdminClient(bootstrap, client_id=self.client_id, request_timeout=10.0,
                                 retries=3)
        self.member = GroupMember(self.admin, spec.group, [spec.topic], config=config)
        self._stop = asyncio.Event()
        self.positions: dict[TP, int] = {}
        self.committed: dict[TP, int] = {}

    def stop(self) -> None:
        """Ask the loop to commit, leave the group and end."""
        self._stop.set()
        self.member.closing = True

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    async def run(self) -> None:
        """The consumer loop; always leaves the group and closes its connections."""
        try:
            while not self.stopping:
                assignment = await self.member.join()
                self.positions = await self._start_positions(assignment)
                self.committed = dict(self.positions)
                await self._consume_until_rebalance(assignment)
                await self._commit()
        except KafkaError as exc:  # not retriable (e.g. INCONSISTENT_GROUP_PROTOCOL)
            log.warning("%s stopped: %s", self.client_id, exc)
            if self.on_error is not None:
                self.on_error(f"consumer {self.client_id} of group {self.spec.group} "
                              f"stopped: {exc}")
        finally:
            with contextlib.suppress(KafkaError, OSError, TimeoutError):
                await asyncio.wait_for(self._commit(), 5)
            await self.member.leave()
            await self.admin.close()

    async def _consume_until_rebalance(self, assignment: tuple[TP, ...]) -> None:
        spec = self.spec
        browser = Browser(self.admin)
        per_fetch = spec.max_records
        if spec.processing_ms > 0:  # about one second of work per fetch, then commit
            per_fetch = max(1, min(per_fetch, int(1000 / spec.processing_ms)))
        next_check = time.monotonic() + METADATA_CHECK_S
        while not self.stopping and not self.member.needs_rejoin:
            if self.member.is_leader and time.monotonic() >= next_check:
                next_check = time.monotonic() + METADATA_CHECK_S
                with contextlib.suppress(KafkaError, OSError, TimeoutError):
                    if await self.member.metadata_changed():
                        break
            got = 0
            for tp in assignment:
                if self.stopping or self.member.needs_rejoin:
                    break
                try:
                    result = await browser.fetch(tp[0], tp[1], self.positions[tp],
                                                 max_wait_ms=100, max_records=per_fetch)
                except (KafkaError, OSError, TimeoutError) as exc:
                    if isinstance(exc, KafkaError) and exc.code == ErrorCode.offset_out_of_range:
                        self.positions[tp] = await self._earliest(tp)
                        continue
                    log.debug("fetch %s-%d failed: %s", tp[0], tp[1], exc)
                    await asyncio.sleep(0.3)
                    continue
                done = await self._process(len(result.records))
                if done < len(result.records):  # stopped mid-fetch: resume at the first left
                    self.positions[tp] = result.records[done].offset
                    break
                got += done
                if result.next_offset != self.positions[tp]:
                    self.positions[tp] = result.next_offset
                    await self._commit()
            if not got:
                await asyncio.sleep(0.1)

    async def _process(self, n: int) -> int:
        """Count ``n`` records, spending processing_ms on each; returns how many were done
        (fewer when asked to stop, so a slow member leaves within one record's time)."""
        if n and self.spec.processing_ms <= 0:
            self.on_records(self.spec.group, n)
            return n
        pause = self.spec.processing_ms / 1000
        for i in range(n):
            if self.stopping:
                return i
            await asyncio.sleep(pause)
            self.on_records(self.spec.group, 1)
        return n

    async def _commit(self) -> None:
        todo = {tp: off for tp, off in self.positions.items() if self.committed.get(tp) != off}
        if todo and await self.member.commit(todo):
            self.committed.update(todo)

    async def _earliest(self, tp: TP) -> int:
        found = await self.admin.list_offsets([tp], "earliest")
        r = found[tp]
        return r.offset if isinstance(r, OffsetResult) else 0

    async def _start_positions(self, assignment: tuple[TP, ...]) -> dict[TP, int]:
        if not assignment:
            return {}
        for _ in range(50):
            try:
                committed = await self.admin.list_consumer_group_offsets(self.spec.group,
                                                                         assignment)
                earliest = await self.admin.list_offsets(assignment, "earliest")
                out = {}
                for tp in assignment:
                    c = committed.get(tp)
                    e = earliest[tp]
                    out[tp] = c.offset if c is not None and c.offset >= 0 else (
                        e.offset if isinstance(e, OffsetResult) else 0)
                return out
            except (KafkaError, OSError, TimeoutError):
                await asyncio.sleep(0.3)
        return dict.fromkeys(assignment, 0)


class GroupConsumers:
    """The members a scenario runs in one group id (from one or more ConsumerSpecs)."""

    def __init__(self, group: str, specs: list[ConsumerSpec], bootstrap: str,
                 on_records: Callable[[str, int], None],
                 config: MemberConfig | None = None,
                 on_error: Callable[[str], None] | None = None) -> None:
        self.group = group
        self.specs = specs
        self.bootstrap = bootstrap
        self.on_records = on_records
        self.config = config
        self.on_error = on_error
        self.consumers: list[ScenarioConsumer] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.ids_used: set[str] = set()

    @property
    def running(self) -> bool:
        return any(not t.done() for t in self.tasks)

    def member_ids(self) -> set[str]:
        """Every member id these consumers have had (now and before a restart)."""
        for c in self.consumers:
            self.ids_used |= c.member.ids_used
        return set(self.ids_used)

    def start(self) -> int:
        """Start one task per member; returns how many."""
        self.member_ids()
        self.consumers = [ScenarioConsumer(self.bootstrap, spec, i, self.on_records,
                                           self.config, self.on_error)
                          for i, spec in enumerate(s for s in self.specs
                                                   for _ in range(s.members))]
        self.tasks = [asyncio.ensure_future(c.run()) for c in self.consumers]
        return len(self.tasks)

    async def stop(self, grace_s: float = STOP_GRACE_S) -> int:
        """Ask every member to commit and leave; cancel those still running after grace_s."""
        for c in self.consumers:
            c.stop()
        n = len(self.tasks)
        if self.tasks:
            _done, pending = await asyncio.wait(self.tasks, timeout=grace_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
        self.member_ids()
        self.tasks = []
        return n
