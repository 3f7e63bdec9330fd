"""An in-process bus that keeps nothing when the process ends, for unit tests.

Kafka's semantics come from :class:`shared.bus.log.LogBus`; here each partition is a list.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from shared.bus.log import LogBus
from shared.bus.protocol import ConsumedRecord, OutgoingRecord, TopicPartition
from shared.clock import Clock


class MemoryLog:
    """A :class:`shared.bus.log.PartitionLog` in lists and dicts."""

    def __init__(self) -> None:
        self._logs: dict[str, list[list[ConsumedRecord]]] = {}
        self._committed: dict[str, dict[TopicPartition, int]] = {}

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def partitions(self, topic: str) -> int | None:
        log = self._logs.get(topic)
        return None if log is None else len(log)

    def end_offset(self, tp: TopicPartition) -> int:
        log = self._logs[tp.topic]
        return len(log[tp.partition]) if tp.partition < len(log) else 0

    async def create_topic(self, topic: str, partitions: int, retention_ms: int | None) -> None:
        self._logs.setdefault(topic, [[] for _ in range(partitions)])

    async def append(self, placed: Sequence[tuple[int, OutgoingRecord]], timestamp_ms: int) -> None:
        for partition, record in placed:
            entries = self._logs[record.topic][partition]
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

    async def read(
        self, positions: Sequence[tuple[TopicPartition, int]], limit: int
    ) -> list[ConsumedRecord]:
        taken: list[ConsumedRecord] = []
        for tp, position in positions:
            if len(taken) >= limit:
                break
            taken += self._logs[tp.topic][tp.partition][position : position + limit - len(taken)]
        return taken

    async def committed(self, group: str) -> dict[TopicPartition, int]:
        return dict(self._committed.get(group, {}))

    async def commit(self, group: str, offsets: Mapping[TopicPartition, int]) -> None:
        self._committed.setdefault(group, {}).update(offsets)


class InMemoryBus(LogBus):
    """The whole bus in one process's memory."""

    def __init__(self, *, default_partitions: int = 4, clock: Clock | None = None) -> None:
        super().__init__(MemoryLog(), default_partitions=default_partitions, clock=clock)
