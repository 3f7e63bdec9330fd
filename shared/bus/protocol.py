"""The bus interface every service codes against."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Protocol

import msgspec

from shared.contracts.topics import TopicSpec


class TopicPartition(msgspec.Struct, frozen=True, gc=False):
    """A partition of a topic. Like the records below, a frozen struct: built, hashed and
    compared in C (a tenth of a frozen dataclass's cost; every record makes some)."""

    topic: str
    partition: int


class OutgoingRecord(msgspec.Struct, frozen=True, gc=False):
    topic: str
    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()

    def on(self, topic: str) -> OutgoingRecord:
        """This record for ``topic`` (called per record on a namespaced bus)."""
        return OutgoingRecord(topic, self.key, self.value, self.headers)


class ConsumedRecord(msgspec.Struct, frozen=True, gc=False):
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...]
    timestamp_ms: int

    @property
    def topic_partition(self) -> TopicPartition:
        return TopicPartition(self.topic, self.partition)

    def on(self, topic: str) -> ConsumedRecord:
        """This record as read from ``topic`` (see :meth:`OutgoingRecord.on`)."""
        return ConsumedRecord(
            topic,
            self.partition,
            self.offset,
            self.key,
            self.value,
            self.headers,
            self.timestamp_ms,
        )


class Consumer(Protocol):
    """One member of a consumer group. Offsets are committed only when told to."""

    async def poll(self, *, max_records: int = 500, timeout_ms: int = 1000) -> list[ConsumedRecord]:
        """Records from the assigned partitions, in offset order per partition.

        Waits up to ``timeout_ms`` when nothing is there; returns an empty list then.
        """
        ...

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Commit, per partition, the offset of the next record to read."""
        ...

    def assignment(self) -> frozenset[TopicPartition]:
        """The partitions this member owns now."""
        ...

    async def seek_to_committed(self) -> None:
        """Rewind every owned partition to its committed offset (after a failed batch); one
        the group has not committed yet, to where the consumer started it."""
        ...

    async def close(self) -> None:
        """Leave the group; owned partitions move to the remaining members."""
        ...


class Bus(Protocol):
    async def start(self) -> None:
        """Connect. Does not raise when the broker is down: :meth:`is_ready` says so."""
        ...

    async def close(self) -> None: ...

    async def is_ready(self) -> bool:
        """Whether a publish can be acknowledged now."""
        ...

    async def publish(self, records: Sequence[OutgoingRecord]) -> None:
        """Return once every record is acknowledged by all in-sync replicas.

        Records with the same key land on the same partition in the order given.
        Raises :class:`shared.errors.BusUnavailable` when that cannot be confirmed; some
        records may then still arrive, so callers retry with the same ids.
        """
        ...

    async def ensure_topics(self, specs: Sequence[TopicSpec], *, replication_factor: int) -> None:
        """Create missing topics with their partitions and configs; existing ones stay."""
        ...

    async def subscribe(
        self, topics: Sequence[str], *, group_id: str, from_beginning: bool = True
    ) -> Consumer:
        """Join ``group_id`` on ``topics``. Without a committed offset a partition starts
        at its beginning (or its end when ``from_beginning`` is false)."""
        ...

    async def end_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        """The offset the next record of each partition will get."""
        ...

    def read_tail(self, topic: str, *, per_partition: int) -> AsyncIterator[list[ConsumedRecord]]:
        """The last ``per_partition`` records of each partition of ``topic`` as it ends
        when the read starts (fewer where retention removed older ones), in
        batches: partition after partition, each batch of one partition in offset order.
        Read back from each partition's end, in no consumer group; commits nothing."""
        ...
