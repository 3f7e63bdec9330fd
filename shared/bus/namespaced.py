"""A bus whose topic names carry a prefix, for several Milepost installations (or test
runs) on one Kafka cluster: ``staging.`` makes ``milepost.events`` ``staging.milepost.events``.

Services keep using the plain names: the prefix is added on the way to the broker and
removed from everything that comes back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import replace

from shared.bus.protocol import Bus, ConsumedRecord, Consumer, OutgoingRecord, TopicPartition
from shared.contracts.topics import TopicSpec


class NamespacedBus:
    def __init__(self, inner: Bus, prefix: str) -> None:
        self.inner = inner
        self.prefix = prefix

    def outward(self, topic: str) -> str:
        return f"{self.prefix}{topic}"

    def inward(self, topic: str) -> str:
        return topic.removeprefix(self.prefix)

    async def start(self) -> None:
        await self.inner.start()

    async def close(self) -> None:
        await self.inner.close()

    async def is_ready(self) -> bool:
        return await self.inner.is_ready()

    async def publish(self, records: Sequence[OutgoingRecord]) -> None:
        await self.inner.publish([r.on(self.outward(r.topic)) for r in records])

    async def ensure_topics(self, specs: Sequence[TopicSpec], *, replication_factor: int) -> None:
        renamed = [replace(spec, topic=self.outward(spec.topic)) for spec in specs]
        await self.inner.ensure_topics(renamed, replication_factor=replication_factor)

    async def subscribe(
        self, topics: Sequence[str], *, group_id: str, from_beginning: bool = True
    ) -> Consumer:
        consumer = await self.inner.subscribe(
            [self.outward(t) for t in topics], group_id=group_id, from_beginning=from_beginning
        )
        return _NamespacedConsumer(consumer, self)

    async def end_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        ends = await self.inner.end_offsets(
            [TopicPartition(self.outward(tp.topic), tp.partition) for tp in partitions]
        )
        return {
            TopicPartition(self.inward(tp.topic), tp.partition): end for tp, end in ends.items()
        }

    async def read_tail(
        self, topic: str, *, per_partition: int
    ) -> AsyncIterator[list[ConsumedRecord]]:
        async for batch in self.inner.read_tail(self.outward(topic), per_partition=per_partition):
            yield [record.on(topic) for record in batch]


class _NamespacedConsumer:
    def __init__(self, inner: Consumer, bus: NamespacedBus) -> None:
        self.inner = inner
        self.bus = bus

    async def poll(self, *, max_records: int = 500, timeout_ms: int = 1000) -> list[ConsumedRecord]:
        records = await self.inner.poll(max_records=max_records, timeout_ms=timeout_ms)
        return [r.on(self.bus.inward(r.topic)) for r in records]

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        await self.inner.commit(
            {
                TopicPartition(self.bus.outward(tp.topic), tp.partition): o
                for tp, o in offsets.items()
            }
        )

    def assignment(self) -> frozenset[TopicPartition]:
        return frozenset(
            TopicPartition(self.bus.inward(tp.topic), tp.partition)
            for tp in self.inner.assignment()
        )

    async def seek_to_committed(self) -> None:
        await self.inner.seek_to_committed()

    async def close(self) -> None:
        await self.inner.close()
