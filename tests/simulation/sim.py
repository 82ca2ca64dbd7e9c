"""A deterministic simulator for core.raft: virtual time, a faulty network, crashes.

Everything random comes from one seeded `random.Random`, so a seed replays exactly.
The network delays (hence reorders), drops and duplicates messages and honours partitions;
a crashed node loses everything but its log, snapshots and quorum store, which survive the
restart; `disk_loss_rate` crashes also destroy its snapshots (a voter whose log started after
one then refuses to start and stays down: `failed`; at most a minority of voters is hit).

`Checker` asserts Raft's safety properties after every step:
  * election safety: at most one leader per epoch, and every node that records a leader for
    an epoch (in its persistent quorum state) records that same one;
  * log matching: checked on every append, by induction: (offset, epoch) always identifies
    the same entry and the same previous epoch; plus a full pairwise scan on demand;
  * leader completeness: every committed entry is in the log of every later leader;
  * state machine safety: the sequences poll_committed() returns on every node (incarnation)
    are prefixes of one another, and high watermarks never go back.

With `snapshot_every=N` every node's state machine (the list of committed entries) snapshots
itself once its log holds N applied entries past the log start (KIP-630), which deletes the
log prefix; nodes that fall behind the leader's log start then catch up through FetchSnapshot
(in chunks of `snapshot_chunk_bytes`, a node option). A snapshot loaded by a node (after a
restart, or fetched) must be exactly a prefix of what was committed, and the checks above
only look at entries a log still holds.
"""

from __future__ import annotations

import dataclasses
import heapq
import random
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.raft.log import LogEntry, MemoryLog
from core.raft.messages import Outbound
from core.raft.node import CommittedEntry, LostLogError, NotLeader, RaftNode
from core.raft.snapshot import MemorySnapshotStore
from core.raft.store import ElectionState, MemoryQuorumStore


class SafetyViolation(AssertionError):
    """A Raft safety property failed in the simulation."""


@dataclass
class Faults:
    """A fault mix. Rates are per virtual second."""

    drop: float = 0.0
    duplicate: float = 0.0
    min_delay_ms: int = 1
    max_delay_ms: int = 20
    crash_rate: float = 0.0
    partition_rate: float = 0.0
    resign_rate: float = 0.0
    #: crashes that also destroy the node's snapshots (its log, whose prefix they replaced,
    #: and its quorum store survive): a voter must then refuse to start (LostLogError)
    disk_loss_rate: float = 0.0
    append_rate: float = 5.0
    restart_after_ms: tuple[int, int] = (200, 3000)


class Checker:
    """Global safety bookkeeping across all nodes and incarnations."""

    def __init__(self) -> None:
        self.leader_of: dict[int, int] = {}  # epoch -> leader id
        self.entries: dict[tuple[int, int], tuple[bytes, bool, int]] = {}  # (off, ep) -> entry
        self.committed: list[CommittedEntry] = []
        self.commit_epoch: list[int] = []  # per committed entry: an epoch it was committed by
        self.committed_end = 0  # max high watermark reached by any node
        self.leaders_checked: set[tuple[int, int]] = set()

    def on_store_write(self, node_id: int, state: ElectionState) -> None:
        if state.leader_id is None:
            return
        known = self.leader_of.setdefault(state.epoch, state.leader_id)
        if known != state.leader_id:
            raise SafetyViolation(
                f"epoch {state.epoch}: node {node_id} records leader {state.leader_id}, "
                f"but {known} was recorded before")

    def on_append(self, log: MemoryLog, base: int, entries: Sequence[LogEntry]) -> None:
        for i, entry in enumerate(entries):
            offset = base + i
            if i > 0:
                prev: int | None = entries[i - 1].epoch
            else:
                prev = log.epoch_at(offset - 1) if offset > 0 else 0
            if prev is None:
                raise SafetyViolation(f"append at {offset} past the end of the log")
            key = (offset, entry.epoch)
            value = (entry.data, entry.control, prev)
            seen = self.entries.setdefault(key, value)
            if seen != value:
                raise SafetyViolation(f"log matching: offset {offset} epoch {entry.epoch}: "
                                      f"{value!r} vs {seen!r}")

    def on_committed(self, node_id: int, epoch: int, delivered: list[CommittedEntry],
                     new: list[CommittedEntry]) -> None:
        for entry in new:
            index = len(delivered)
            if index < len(self.committed):
                if self.committed[index] != entry:
                    raise SafetyViolation(
                        f"state machine safety: node {node_id} applied {entry} at position "
                        f"{index}, others applied {self.committed[index]}")
            else:
                if self.committed and entry.offset <= self.committed[-1].offset:
                    raise SafetyViolation(f"node {node_id}: committed offsets not increasing")
                self.committed.append(entry)
                self.commit_epoch.append(epoch)
            delivered.append(entry)

    def on_snapshot_loaded(self, node_id: int, entries: list[CommittedEntry]) -> None:
        """A state machine loaded a snapshot: it must be a prefix of the committed entries."""
        if entries != self.committed[:len(entries)]:
            raise SafetyViolation(f"node {node_id} loaded a snapshot that is not a prefix of "
                                  f"the committed entries ({len(entries)} entries)")

    def check_leader(self, node: RaftNode) -> None:
        """Leader completeness for a node that is leader now."""
        key = (node.node_id, node.epoch)
        if key in self.leaders_checked:
            return
        self.leaders_checked.add(key)
        for entry, epoch in zip(self.committed, self.commit_epoch, strict=True):
            offset = entry.offset
            if offset < node.log.start_offset():
                continue  # covered by the leader's snapshot (checked when it was loaded)
            if epoch < node.epoch and node.log.epoch_at(offset) != entry.epoch:
                raise SafetyViolation(
                    f"leader completeness: leader {node.node_id} of epoch {node.epoch} lacks "
                    f"committed entry at offset {offset} (epoch {entry.epoch})")


class CheckedLog(MemoryLog):
    def __init__(self, checker: Checker) -> None:
        super().__init__()
        self._checker = checker

    def append(self, entries: Sequence[LogEntry]) -> int:
        self._checker.on_append(self, self.end_offset(), entries)
        return super().append(entries)


class CheckedStore(MemoryQuorumStore):
    def __init__(self, node_id: int, checker: Checker) -> None:
        super().__init__()
        self._node_id = node_id
        self._checker = checker

    def write(self, state: ElectionState) -> None:
        self._checker.on_store_write(self._node_id, state)
        super().write(state)


@dataclass(order=True)
class _Event:
    time: int
    seq: int
    action: Callable[[], None] = field(compare=False)


class Simulation:
    """Voters 1..n, observers n+1..n+m; drive with run_for(ms) / run_until(predicate, ms)."""

    def __init__(
        self,
        seed: int,
        voters: int = 3,
        observers: int = 0,
        faults: Faults | None = None,
        tick_ms: int = 10,
        node_options: dict[str, Any] | None = None,
        snapshot_every: int | None = None,
    ) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.faults = dataclasses.replace(faults) if faults else Faults()
        self.tick_ms = tick_ms
        self.node_options = node_options or {}
        self.voter_ids = list(range(1, voters + 1))
        self.ids = list(range(1, voters + observers + 1))
        self.checker = Checker()
        self.logs = {i: CheckedLog(self.checker) for i in self.ids}
        self.stores = {i: CheckedStore(i, self.checker) for i in self.ids}
        self.snapshot_every = snapshot_every
        self.snapshot_stores = {i: MemorySnapshotStore() for i in self.ids}
        self.nodes: dict[int, RaftNode | None] = {}
        #: voters that refused to start (LostLogError): down for good
        self.failed: set[int] = set()
        self._disk_lost: set[int] = set()
        self.delivered: dict[int, list[CommittedEntry]] = {}
        self.hw_seen: dict[int, int] = {}
        self.group: dict[int, int] = dict.fromkeys(self.ids, 0)
        self.now = 0
        self.steps = 0
        self._queue: list[_Event] = []
        self._seq = 0
        self.appended: list[bytes] = []
        self.chaos = True
        self.stats: dict[str, int] = {"crashes": 0, "partitions": 0, "resigns": 0,
                                      "messages": 0, "dropped": 0, "appends": 0,
                                      "snapshots": 0, "snapshot_loads": 0, "disk_losses": 0}
        for i in self.ids:
            self._start(i)
        self._schedule(0, self._tick_all)
        self._schedule_chaos()

    # ---------------------------------------------------------------- plumbing

    def _schedule(self, delay: int, action: Callable[[], None]) -> None:
        self._seq += 1
        heapq.heappush(self._queue, _Event(self.now + delay, self._seq, action))

    def _start(self, node_id: int) -> None:
        try:
            self.nodes[node_id] = RaftNode(
                node_id, self.voter_ids, self.logs[node_id], self.stores[node_id],
                rng=random.Random(self.rng.getrandbits(64)),
                snapshots=self.snapshot_stores[node_id], **self.node_options,
            )
        except LostLogError:
            self.failed.add(node_id)
            return
        self.delivered[node_id] = []
        self.hw_seen[node_id] = 0

    def _send(self, src: int, outbound: list[Outbound]) -> None:
        f = self.faults
        for out in outbound:
            self.stats["messages"] += 1
            copies = 1
            if self.chaos and self.rng.random() < f.drop:
                self.stats["dropped"] += 1
                continue
            if self.chaos and self.rng.random() < f.duplicate:
                copies = 2
            for _ in range(copies):
                delay = self.rng.randint(f.min_delay_ms, f.max_delay_ms)
                self._schedule(delay, lambda o=out: self._deliver(src, o))

    def _deliver(self, src: int, out: Outbound) -> None:
        node = self.nodes.get(out.dest)
        if node is None or self.group[src] != self.group[out.dest]:
            self.stats["dropped"] += 1
            return
        self._send(out.dest, node.receive(self.now, src, out.message))

    def _tick_all(self) -> None:
        order = [i for i in self.ids if self.nodes[i] is not None]
        self.rng.shuffle(order)
        for i in order:
            node = self.nodes[i]
            assert node is not None
            self._send(i, node.tick(self.now))
        self._schedule(self.tick_ms, self._tick_all)

    # ---------------------------------------------------------------- faults and clients

    def _schedule_chaos(self) -> None:
        f = self.faults
        rate = f.crash_rate + f.partition_rate + f.resign_rate + f.append_rate + f.disk_loss_rate
        if rate <= 0:
            return
        self._schedule(int(self.rng.expovariate(rate / 1000.0)) + 1, self._chaos_event)

    def _chaos_event(self) -> None:
        f = self.faults
        if self.chaos:
            choice = self.rng.random() * (f.crash_rate + f.partition_rate + f.resign_rate
                                          + f.append_rate + f.disk_loss_rate)
            if choice < f.disk_loss_rate:
                self._lose_disk_of_someone()
            elif (choice := choice - f.disk_loss_rate) < f.crash_rate:
                self.crash(self.rng.choice(self.ids))
            elif choice < f.crash_rate + f.partition_rate:
                self._partition_or_heal()
            elif choice < f.crash_rate + f.partition_rate + f.resign_rate:
                for node in self.leaders():
                    self.stats["resigns"] += 1
                    self._send(node.node_id, node.resign(self.now))
            else:
                self.client_append()
        self._schedule_chaos()

    def _partition_or_heal(self) -> None:
        if any(g != 0 for g in self.group.values()) and self.rng.random() < 0.5:
            self.heal()
            return
        self.stats["partitions"] += 1
        for i in self.ids:
            self.group[i] = self.rng.randint(0, 1)

    def heal(self) -> None:
        self.group = dict.fromkeys(self.ids, 0)

    def crash(self, node_id: int, lose_snapshots: bool = False) -> None:
        """Kill node_id; it restarts after a random delay (while chaos lasts). With
        lose_snapshots its snapshot files are destroyed too (a disk fault): a voter whose log
        had been cut after one must then refuse to start, and stays down."""
        if self.nodes[node_id] is None:
            return
        self.stats["crashes"] += 1
        self.nodes[node_id] = None
        if lose_snapshots:
            self.stats["disk_losses"] += 1
            self._disk_lost.add(node_id)
            self.snapshot_stores[node_id] = MemorySnapshotStore()
        low, high = self.faults.restart_after_ms
        self._schedule(self.rng.randint(low, high), lambda: self.restart(node_id))

    def _lose_disk_of_someone(self) -> None:
        """Crash a node and destroy its snapshots, but never more voters than can be lost
        for good: a voter that refuses to start stays down, and the rest must stay a
        majority for liveness."""
        tolerated = (len(self.voter_ids) - 1) // 2
        hit = self._disk_lost & set(self.voter_ids)  # each may refuse to start
        candidates = [i for i in self.ids if i not in self.failed and (
            i not in self.voter_ids or i in hit or len(hit) < tolerated)]
        if candidates:
            self.crash(self.rng.choice(candidates), lose_snapshots=True)

    def restart(self, node_id: int) -> None:
        if self.nodes[node_id] is None and node_id not in self.failed:
            self._start(node_id)

    def leaders(self) -> list[RaftNode]:
        return [n for n in self.nodes.values() if n is not None and n.is_leader]

    def client_append(self, payload: bytes | None = None,
                      node: RaftNode | None = None) -> tuple[RaftNode, int] | None:
        """Append one unique entry through node, or a random node that believes it leads."""
        if node is None:
            leaders = self.leaders()
            if not leaders:
                return None
            node = self.rng.choice(leaders)
        data = payload or f"s{self.seed}-e{len(self.appended)}".encode()
        offset = node.append([data])
        assert not isinstance(offset, NotLeader)
        self.appended.append(data)
        self.stats["appends"] += 1
        self._send(node.node_id, node.take_outbound())
        return node, offset

    def stop_faults(self) -> None:
        """Heal the network, restart every crashed node, stop dropping messages."""
        self.chaos = False
        # liveness needs partial synchrony: delays well below the timeouts from now on
        self.faults.min_delay_ms, self.faults.max_delay_ms = 1, 50
        self.heal()
        for i in self.ids:
            self.restart(i)

    # ---------------------------------------------------------------- running

    def step(self) -> None:
        event = heapq.heappop(self._queue)
        self.now = event.time
        event.action()
        self.steps += 1
        self.check()

    def run_for(self, ms: int) -> None:
        end = self.now + ms
        while self._queue and self._queue[0].time <= end:
            self.step()
        self.now = end

    def run_until(self, predicate: Callable[[], bool], max_ms: int) -> bool:
        end = self.now + max_ms
        while self._queue and self._queue[0].time <= end:
            if predicate():
                return True
            self.step()
        return predicate()

    def check(self) -> None:
        """Safety checks that run after every step."""
        known = len(self.checker.committed)
        for node_id, node in self.nodes.items():
            if node is None:
                continue
            hw = node.high_watermark
            if hw < self.hw_seen[node_id]:
                raise SafetyViolation(f"node {node_id}: high watermark went back to {hw}")
            self.hw_seen[node_id] = hw
            self.checker.committed_end = max(self.checker.committed_end, hw)
            snapshot = node.poll_snapshot()
            if snapshot is not None:
                records = self.snapshot_stores[node_id].read_records(snapshot)
                loaded = [_decode_entry(r) for r in records]
                self.checker.on_snapshot_loaded(node_id, loaded)
                self.delivered[node_id] = loaded
                self.stats["snapshot_loads"] += 1
            new = node.poll_committed()
            if new:
                self.checker.on_committed(node_id, node.epoch, self.delivered[node_id], new)
            every = self.snapshot_every
            if every and node.applied_offset - node.log.start_offset() >= every:
                node.create_snapshot(node.applied_offset,
                                     [_encode_entry(e) for e in self.delivered[node_id]])
                self.stats["snapshots"] += 1
            if node.is_leader:
                self.checker.check_leader(node)
        if len(self.checker.committed) > known:
            for leader in self.leaders():
                for index in range(known, len(self.checker.committed)):
                    entry = self.checker.committed[index]
                    if self.checker.commit_epoch[index] >= leader.epoch:
                        continue  # a stale leader of an older epoch may lack it
                    if leader.log.epoch_at(entry.offset) != entry.epoch:
                        raise SafetyViolation(
                            f"leader completeness: leader {leader.node_id} of epoch "
                            f"{leader.epoch} lacks committed entry {entry}")

    def check_logs(self) -> None:
        """Full pairwise log matching scan (slower; at the end of a run)."""
        logs = {i: (log.start_offset(), log.entries()) for i, log in self.logs.items()}
        for a in self.ids:
            for b in self.ids:
                if a >= b:
                    continue
                (sa, la), (sb, lb) = logs[a], logs[b]
                first = max(sa, sb)
                common = min(sa + len(la), sb + len(lb))
                last_match = first - 1
                for off in range(common - 1, first - 1, -1):
                    if la[off - sa].epoch == lb[off - sb].epoch:
                        last_match = off
                        break
                if la[first - sa:last_match + 1 - sa] != lb[first - sb:last_match + 1 - sb]:
                    raise SafetyViolation(f"log matching: nodes {a} and {b} differ before "
                                          f"offset {last_match}")

    def stable_leader(self) -> RaftNode | None:
        """The leader, if one leads the highest epoch any live voter has seen."""
        live = [n for n in self.nodes.values() if n is not None]
        top = max(n.epoch for n in live if n.is_voter)
        for node in live:
            if node.is_leader and node.epoch == top:
                return node
        return None


_ENTRY = struct.Struct(">qi")


def _encode_entry(entry: CommittedEntry) -> bytes:
    return _ENTRY.pack(entry.offset, entry.epoch) + entry.data


def _decode_entry(record: bytes) -> CommittedEntry:
    offset, epoch = _ENTRY.unpack_from(record)
    return CommittedEntry(offset, epoch, record[_ENTRY.size:])
