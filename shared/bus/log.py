"""A bus with Kafka's semantics over a :class:`PartitionLog`, inside one process.

The log keeps topics, records and committed offsets (in memory, or on disk); the bus keeps
Kafka's rules over it: records are placed by murmur2 of the key and get the partition's
next offset, a consumer group splits partitions across its members (partition p of every
topic to member p mod n, so topics with equal partition counts are co-partitioned, as with
Kafka's range assignor), and a membership change rewinds every member to the group's
committed offsets, exactly as an eager Kafka rebalance does: uncommitted records are
therefore redelivered. A poll waiting for records is woken by the next publish.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from shared.bus.partitioning import partition_for
from shared.bus.protocol import ConsumedRecord, OutgoingRecord, TopicPartition
from shared.clock import Clock, SystemClock
from shared.contracts.topics import TopicSpec
from shared.errors import CommitFailed, MilepostError

TAIL_BATCH = 5000
"""Records a :meth:`LogBus.read_tail` batch holds at most."""


class PartitionLog(Protocol):
    """Where a :class:`LogBus` keeps its topics, records and groups' committed offsets.

    Offsets and partition counts are answered from memory; the rest may wait for storage.
    """

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    def partitions(self, topic: str) -> int | None:
        """The topic's partition count; ``None`` when it does not exist."""
        ...

    def end_offset(self, tp: TopicPartition) -> int:
        """The offset the partition's next record will get (0: a partition the topic
        does not have)."""
        ...

    async def create_topic(self, topic: str, partitions: int, retention_ms: int | None) -> None:
        """Create ``topic`` unless it exists (an existing topic keeps its settings)."""
        ...

    async def append(self, placed: Sequence[tuple[int, OutgoingRecord]], timestamp_ms: int) -> None:
        """Append each record to its partition of its topic, in order; all or none."""
        ...

    async def read(
        self, positions: Sequence[tuple[TopicPartition, int]], limit: int
    ) -> list[ConsumedRecord]:
        """Up to ``limit`` records, partition after partition in the order given, each
        from its position on (from the log's start when its position was deleted)."""
        ...

    async def committed(self, group: str) -> dict[TopicPartition, int]: ...

    async def commit(self, group: str, offsets: Mapping[TopicPartition, int]) -> None: ...


@dataclass(slots=True)
class _Group:
    committed: dict[TopicPartition, int]
    members: list[LogConsumer] = field(default_factory=list)


class LogBus:
    """A :class:`shared.bus.Bus` over ``log``. Topics missing on first use are created
    with ``default_partitions``, as a broker with ``auto.create.topics.enable`` does."""

    def __init__(
        self, log: PartitionLog, *, default_partitions: int = 4, clock: Clock | None = None
    ) -> None:
        self.log = log
        self.clock = clock or SystemClock()
        self._default_partitions = default_partitions
        self._groups: dict[str, _Group] = {}
        self._published = asyncio.Event()
        """Set by the next publish (or the close), then replaced: waiting holds no lock, so
        a poll cancelled while it is being woken ends cancelled."""
        self._generation = 0
        """Counts publishes, so a poll sees one that came while it was reading."""
        self.closed = False

    async def start(self) -> None:
        await self.log.open()
        self.closed = False

    async def close(self) -> None:
        self.closed = True
        self._wake()
        await self.log.close()

    async def is_ready(self) -> bool:
        return not self.closed

    async def publish(self, records: Sequence[OutgoingRecord]) -> None:
        if self.closed:
            raise MilepostError("the bus is closed")
        placed = [
            (partition_for(record.key, await self._partitions(record.topic)), record)
            for record in records
        ]
        await self.log.append(placed, int(self.clock.now().timestamp() * 1000))
        self._generation += 1
        self._wake()

    async def ensure_topics(self, specs: Sequence[TopicSpec], *, replication_factor: int) -> None:
        for spec in specs:
            retention = spec.retention if spec.cleanup_policy == "delete" else None
            retention_ms = None if retention is None else int(retention.total_seconds() * 1000)
            await self.log.create_topic(spec.topic, spec.partitions, retention_ms)

    async def subscribe(
        self, topics: Sequence[str], *, group_id: str, from_beginning: bool = True
    ) -> LogConsumer:
        for topic in topics:
            await self._partitions(topic)
        if group_id not in self._groups:
            committed = await self.log.committed(group_id)
            self._groups.setdefault(group_id, _Group(committed))  # another may have come first
        group = self._groups[group_id]
        consumer = LogConsumer(self, group_id, group, tuple(topics), from_beginning=from_beginning)
        group.members.append(consumer)
        self._rebalance(group)
        return consumer

    async def end_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        for topic in {tp.topic for tp in partitions}:
            await self._partitions(topic)
        return {tp: self.log.end_offset(tp) for tp in partitions}

    async def read_tail(
        self, topic: str, *, per_partition: int
    ) -> AsyncIterator[list[ConsumedRecord]]:
        partitions = [TopicPartition(topic, p) for p in range(await self._partitions(topic))]
        ends = {tp: self.log.end_offset(tp) for tp in partitions}
        for tp, end in ends.items():
            position = max(0, end - per_partition)
            while position < end:
                read = await self.log.read([(tp, position)], min(TAIL_BATCH, end - position))
                batch = [record for record in read if record.offset < end]
                if not batch:
                    break
                yield batch
                position = batch[-1].offset + 1

    async def _partitions(self, topic: str) -> int:
        count = self.log.partitions(topic)
        if count is None:
            await self.log.create_topic(topic, self._default_partitions, None)
            count = self.log.partitions(topic)
            assert count is not None
        return count

    async def wait_for_publish(self, seen: int, seconds: float) -> None:
        """Return once a publish came after generation ``seen``, the bus closed, or
        ``seconds`` passed."""
        if self._generation != seen or self.closed:
            return
        try:
            await asyncio.wait_for(self._published.wait(), timeout=seconds)
        except TimeoutError:
            return

    def _wake(self) -> None:
        """Wake every waiting poll; later ones wait for the next publish."""
        self._published.set()
        self._published = asyncio.Event()

    @property
    def generation(self) -> int:
        """How many publishes there were (a poll notes it before it reads)."""
        return self._generation

    def _rebalance(self, group: _Group) -> None:
        assignments: dict[int, set[TopicPartition]] = {id(m): set() for m in group.members}
        topics = sorted({t for member in group.members for t in member.topics})
        for topic in topics:
            owners = [m for m in group.members if topic in m.topics]
            for partition in range(self.log.partitions(topic) or 0):
                owner = owners[partition % len(owners)]
                assignments[id(owner)].add(TopicPartition(topic, partition))
        for member in group.members:
            member.assign(frozenset(assignments[id(member)]))

    def leave(self, group: _Group, consumer: LogConsumer) -> None:
        """Take ``consumer`` out of ``group``; the others share its partitions."""
        group.members.remove(consumer)
        self._rebalance(group)


class LogConsumer:
    """One member of a :class:`LogBus` consumer group."""

    def __init__(
        self,
        bus: LogBus,
        group_id: str,
        group: _Group,
        topics: tuple[str, ...],
        *,
        from_beginning: bool,
    ) -> None:
        self._bus = bus
        self._group_id = group_id
        self._group = group
        self.topics = topics
        self._from_beginning = from_beginning
        self._assignment: frozenset[TopicPartition] = frozenset()
        self._positions: dict[TopicPartition, int] = {}
        self._cursor = 0
        self._closed = False

    def assign(self, partitions: frozenset[TopicPartition]) -> None:
        """Take ownership after a rebalance, resuming from the committed offsets."""
        self._assignment = partitions
        self._positions = {tp: self._start_offset(tp) for tp in sorted(partitions, key=_order)}

    def assignment(self) -> frozenset[TopicPartition]:
        return self._assignment

    async def poll(self, *, max_records: int = 500, timeout_ms: int = 1000) -> list[ConsumedRecord]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_ms / 1000
        while True:
            seen = self._bus.generation
            records = await self._take(max_records)
            remaining = deadline - loop.time()
            if records or self._closed or self._bus.closed or remaining <= 0:
                return records
            await self._bus.wait_for_publish(seen, remaining)

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        foreign = [tp for tp in offsets if tp not in self._assignment]
        if foreign:
            raise CommitFailed(f"partitions not owned by this member: {foreign}")
        await self._bus.log.commit(self._group_id, offsets)
        self._group.committed.update(offsets)

    async def seek_to_committed(self) -> None:
        self._positions = {tp: self._start_offset(tp) for tp in self._positions}

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._bus.leave(self._group, self)

    def _start_offset(self, tp: TopicPartition) -> int:
        committed = self._group.committed.get(tp)
        if committed is not None:
            return committed
        return 0 if self._from_beginning else self._bus.log.end_offset(tp)

    async def _take(self, max_records: int) -> list[ConsumedRecord]:
        """Up to ``max_records``, starting at a rotating partition so none starves.

        A rebalance or a seek while the log is read discards what was read: the positions
        it was read from are no longer this member's."""
        positions = self._positions
        owned = list(positions)
        if not owned:
            return []
        self._cursor = (self._cursor + 1) % len(owned)
        wanted = [
            (tp, positions[tp])
            for tp in owned[self._cursor :] + owned[: self._cursor]
            if positions[tp] < self._bus.log.end_offset(tp)
        ]
        if not wanted:
            return []
        taken = await self._bus.log.read(wanted, max_records)
        if self._positions is not positions:
            return []
        for record in taken:
            positions[record.topic_partition] = record.offset + 1
        return taken


def _order(tp: TopicPartition) -> tuple[str, int]:
    return (tp.topic, tp.partition)
