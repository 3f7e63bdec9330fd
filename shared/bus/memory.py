"""An in-process bus with Kafka's semantics, for the embedded mode and unit tests.

Kept to the same contract as the Kafka adapter (one test suite runs against both):
records are placed by murmur2 of the key, each partition is an append-only log with
offsets, a consumer group splits partitions across its members (partition p of every
topic to member p mod n, so topics with equal partition counts are co-partitioned, as
with Kafka's range assignor), and a membership change rewinds every member to the
group's committed offsets, exactly as an eager Kafka rebalance does. Uncommitted records are therefore redelivered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from shared.bus.partitioning import partition_for
from shared.bus.protocol import ConsumedRecord, OutgoingRecord, TopicPartition
from shared.clock import Clock, SystemClock
from shared.contracts.topics import TopicSpec
from shared.errors import CommitFailed, MilepostError


@dataclass(slots=True)
class _Group:
    committed: dict[TopicPartition, int] = field(default_factory=dict)
    members: list[InMemoryConsumer] = field(default_factory=list)


class InMemoryBus:
    """The whole bus in one process. Topics missing on first use are created with
    ``default_partitions``, as a broker with ``auto.create.topics.enable`` does."""

    def __init__(self, *, default_partitions: int = 4, clock: Clock | None = None) -> None:
        self._default_partitions = default_partitions
        self._clock = clock or SystemClock()
        self._logs: dict[str, list[list[ConsumedRecord]]] = {}
        self._groups: dict[str, _Group] = {}
        self._published = asyncio.Condition()
        self._closed = False

    async def start(self) -> None:
        self._closed = False

    async def close(self) -> None:
        self._closed = True
        async with self._published:
            self._published.notify_all()

    async def is_ready(self) -> bool:
        return not self._closed

    async def publish(self, records: Sequence[OutgoingRecord]) -> None:
        if self._closed:
            raise MilepostError("the in-memory bus is closed")
        timestamp_ms = int(self._clock.now().timestamp() * 1000)
        for record in records:
            log = self._log(record.topic)
            partition = partition_for(record.key, len(log))
            entries = log[partition]
            entries.append(
                ConsumedRecord(
                    topic=record.topic,
                    partition=partition,
                    offset=len(entries),
                    key=record.key,
                    value=record.value,
                    headers=record.headers,
                    timestamp_ms=timestamp_ms,
                )
            )
        async with self._published:
            self._published.notify_all()

    async def ensure_topics(self, specs: Sequence[TopicSpec], *, replication_factor: int) -> None:
        for spec in specs:
            if spec.topic not in self._logs:
                self._logs[spec.topic] = [[] for _ in range(spec.partitions)]

    async def subscribe(
        self, topics: Sequence[str], *, group_id: str, from_beginning: bool = True
    ) -> InMemoryConsumer:
        for topic in topics:
            self._log(topic)
        group = self._groups.setdefault(group_id, _Group())
        consumer = InMemoryConsumer(self, group, tuple(topics), from_beginning=from_beginning)
        group.members.append(consumer)
        self._rebalance(group)
        return consumer

    async def end_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: len(self._log(tp.topic)[tp.partition]) for tp in partitions}

    def _log(self, topic: str) -> list[list[ConsumedRecord]]:
        log = self._logs.get(topic)
        if log is None:
            log = self._logs[topic] = [[] for _ in range(self._default_partitions)]
        return log

    def _rebalance(self, group: _Group) -> None:
        assignments: dict[int, set[TopicPartition]] = {id(m): set() for m in group.members}
        topics = sorted({t for member in group.members for t in member.topics})
        for topic in topics:
            owners = [m for m in group.members if topic in m.topics]
            for partition in range(len(self._log(topic))):
                owner = owners[partition % len(owners)]
                assignments[id(owner)].add(TopicPartition(topic, partition))
        for member in group.members:
            member.assign(frozenset(assignments[id(member)]))

    def _leave(self, group: _Group, consumer: InMemoryConsumer) -> None:
        group.members.remove(consumer)
        self._rebalance(group)


class InMemoryConsumer:
    def __init__(
        self,
        bus: InMemoryBus,
        group: _Group,
        topics: tuple[str, ...],
        *,
        from_beginning: bool,
    ) -> None:
        self._bus = bus
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
        condition = self._bus._published
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_ms / 1000
        async with condition:
            while True:
                records = self._take(max_records)
                remaining = deadline - loop.time()
                if records or self._closed or self._bus._closed or remaining <= 0:
                    return records
                try:
                    await asyncio.wait_for(condition.wait(), timeout=remaining)
                except TimeoutError:
                    return self._take(max_records)

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        foreign = [tp for tp in offsets if tp not in self._assignment]
        if foreign:
            raise CommitFailed(f"partitions not owned by this member: {foreign}")
        self._group.committed.update(offsets)

    async def seek_to_committed(self) -> None:
        self._positions = {tp: self._start_offset(tp) for tp in self._positions}

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._bus._leave(self._group, self)

    def _start_offset(self, tp: TopicPartition) -> int:
        committed = self._group.committed.get(tp)
        if committed is not None:
            return committed
        return 0 if self._from_beginning else len(self._bus._log(tp.topic)[tp.partition])

    def _take(self, max_records: int) -> list[ConsumedRecord]:
        """Up to ``max_records``, starting at a rotating partition so none starves."""
        owned = list(self._positions)
        if not owned:
            return []
        self._cursor = (self._cursor + 1) % len(owned)
        taken: list[ConsumedRecord] = []
        for tp in owned[self._cursor :] + owned[: self._cursor]:
            if len(taken) >= max_records:
                break
            position = self._positions[tp]
            entries = self._bus._log(tp.topic)[tp.partition]
            batch = entries[position : position + max_records - len(taken)]
            if batch:
                taken.extend(batch)
                self._positions[tp] = position + len(batch)
        return taken


def _order(tp: TopicPartition) -> tuple[str, int]:
    return (tp.topic, tp.partition)
