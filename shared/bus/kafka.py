"""The aiokafka adapter: the only module that imports aiokafka.

Producer: idempotent, ``acks=all``, batched with ``linger_ms``, keyed partitioning by
Kafka's murmur2 (aiokafka's default). Consumer: batch ``getmany``, manual commits only.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka import TopicPartition as KafkaTopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import CommitFailedError, KafkaError, TopicAlreadyExistsError

from shared.bus.protocol import ConsumedRecord, OutgoingRecord, TopicPartition
from shared.contracts.topics import TopicSpec
from shared.errors import BusUnavailable, CommitFailed

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class KafkaOptions:
    bootstrap_servers: str
    client_id: str = "milepost"
    linger_ms: int = 5
    max_batch_bytes: int = 1_048_576
    publish_timeout_s: float = 10.0
    request_timeout_ms: int = 30_000


class KafkaBus:
    """A :class:`shared.bus.Bus` on Apache Kafka.

    The producer connects lazily and reconnects after a failed start, so a service
    comes up while the broker is down and answers "not ready" until it is reachable.
    """

    def __init__(self, options: KafkaOptions) -> None:
        self._options = options
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        try:
            await self._started_producer()
        except BusUnavailable as exc:
            logger.warning("kafka not reachable yet", extra={"error": str(exc)})

    async def close(self) -> None:
        async with self._lock:
            if self._producer is not None:
                await self._producer.stop()
                self._producer = None

    async def is_ready(self) -> bool:
        try:
            producer = await self._started_producer()
            await asyncio.wait_for(producer.client.fetch_all_metadata(), timeout=5)
        except (BusUnavailable, KafkaError, TimeoutError):
            return False
        return True

    async def publish(self, records: Sequence[OutgoingRecord]) -> None:
        producer = await self._started_producer()
        try:
            async with asyncio.timeout(self._options.publish_timeout_s):
                deliveries = [
                    await producer.send(r.topic, r.value, key=r.key, headers=list(r.headers))
                    for r in records
                ]
                outcomes = await asyncio.gather(*deliveries, return_exceptions=True)
        except (KafkaError, TimeoutError) as exc:
            raise BusUnavailable(f"kafka did not acknowledge the records: {exc!r}") from exc
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        if failures:
            raise BusUnavailable(f"kafka did not acknowledge the records: {failures[0]!r}")

    async def ensure_topics(self, specs: Sequence[TopicSpec], *, replication_factor: int) -> None:
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self._options.bootstrap_servers,
            client_id=f"{self._options.client_id}-admin",
        )
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            missing = [
                NewTopic(
                    name=spec.topic,
                    num_partitions=spec.partitions,
                    replication_factor=replication_factor,
                    topic_configs=_topic_configs(spec),
                )
                for spec in specs
                if spec.topic not in existing
            ]
            if missing:
                try:
                    await admin.create_topics(missing)
                except TopicAlreadyExistsError:
                    logger.info("topics created concurrently by another process")
        except KafkaError as exc:
            raise BusUnavailable(f"could not create topics: {exc!r}") from exc
        finally:
            await admin.close()

    async def subscribe(
        self, topics: Sequence[str], *, group_id: str, from_beginning: bool = True
    ) -> KafkaConsumer:
        consumer = AIOKafkaConsumer(
            *topics,
            bootstrap_servers=self._options.bootstrap_servers,
            client_id=self._options.client_id,
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest" if from_beginning else "latest",
            request_timeout_ms=self._options.request_timeout_ms,
        )
        try:
            await consumer.start()
        except KafkaError as exc:
            await consumer.stop()
            raise BusUnavailable(f"could not join group {group_id}: {exc!r}") from exc
        return KafkaConsumer(consumer)

    async def end_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        probe = AIOKafkaConsumer(
            bootstrap_servers=self._options.bootstrap_servers,
            client_id=f"{self._options.client_id}-offsets",
            enable_auto_commit=False,
        )
        try:
            await probe.start()
            ends = await probe.end_offsets([_to_kafka(tp) for tp in partitions])
        except KafkaError as exc:
            raise BusUnavailable(f"could not read end offsets: {exc!r}") from exc
        finally:
            await probe.stop()
        return {TopicPartition(tp.topic, tp.partition): offset for tp, offset in ends.items()}

    async def _started_producer(self) -> AIOKafkaProducer:
        if self._producer is not None:
            return self._producer
        async with self._lock:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    bootstrap_servers=self._options.bootstrap_servers,
                    client_id=self._options.client_id,
                    acks="all",
                    enable_idempotence=True,
                    linger_ms=self._options.linger_ms,
                    max_batch_size=self._options.max_batch_bytes,
                    request_timeout_ms=self._options.request_timeout_ms,
                )
                try:
                    await producer.start()
                except KafkaError as exc:
                    await producer.stop()
                    raise BusUnavailable(f"kafka unreachable: {exc!r}") from exc
                self._producer = producer
            return self._producer


class KafkaConsumer:
    """A :class:`shared.bus.Consumer` over an ``AIOKafkaConsumer``."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self._consumer = consumer

    async def poll(self, *, max_records: int = 500, timeout_ms: int = 1000) -> list[ConsumedRecord]:
        try:
            batches = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        except KafkaError as exc:
            raise BusUnavailable(f"fetch failed: {exc!r}") from exc
        return [
            ConsumedRecord(
                topic=r.topic,
                partition=r.partition,
                offset=r.offset,
                key=r.key,
                value=r.value,
                headers=tuple(r.headers),
                timestamp_ms=r.timestamp,
            )
            for records in batches.values()
            for r in records
        ]

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        try:
            await self._consumer.commit({_to_kafka(tp): off for tp, off in offsets.items()})
        except CommitFailedError as exc:
            raise CommitFailed(str(exc)) from exc
        except KafkaError as exc:
            raise BusUnavailable(f"commit failed: {exc!r}") from exc

    def assignment(self) -> frozenset[TopicPartition]:
        return frozenset(
            TopicPartition(tp.topic, tp.partition) for tp in self._consumer.assignment()
        )

    async def seek_to_committed(self) -> None:
        owned = self._consumer.assignment()
        if owned:
            await self._consumer.seek_to_committed(*owned)

    async def close(self) -> None:
        await self._consumer.stop()


def _to_kafka(tp: TopicPartition) -> KafkaTopicPartition:
    return KafkaTopicPartition(tp.topic, tp.partition)


def _topic_configs(spec: TopicSpec) -> dict[str, str]:
    configs = {"cleanup.policy": spec.cleanup_policy}
    if spec.retention is not None:
        configs["retention.ms"] = str(int(spec.retention.total_seconds() * 1000))
    return configs
