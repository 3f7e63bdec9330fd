"""The lag gauge: end offset minus applied position per owned partition, at most once per
interval."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge

from shared.bus import OutgoingRecord, TopicPartition
from shared.bus.lag import LagGauge
from shared.bus.memory import InMemoryBus
from shared.contracts.topics import TopicSpec
from shared.contracts.triggers import TriggerEnvelope


async def test_lag_is_what_each_owned_partition_has_beyond_the_applied_position() -> None:
    bus = InMemoryBus()
    await bus.start()
    await bus.ensure_topics(
        [TopicSpec("t", "test", "key", TriggerEnvelope, partitions=2)], replication_factor=1
    )
    await bus.publish([OutgoingRecord("t", f"k{n}".encode(), b"{}") for n in range(20)])
    ends = await bus.end_offsets([TopicPartition("t", 0), TopicPartition("t", 1)])
    registry = CollectorRegistry()
    gauge = Gauge("lag", "lag", ["group", "topic", "partition"], registry=registry)
    lag = LagGauge(bus, gauge, group_labels=("g",), interval_seconds=3600)

    owned = [TopicPartition("t", 0), TopicPartition("t", 1)]
    assert await lag.report(owned, {TopicPartition("t", 0): 3})
    assert registry.get_sample_value("lag", {"group": "g", "topic": "t", "partition": "0"}) == (
        ends[TopicPartition("t", 0)] - 3
    )
    assert (
        registry.get_sample_value("lag", {"group": "g", "topic": "t", "partition": "1"})
        == (ends[TopicPartition("t", 1)])
    )
    assert not await lag.report(owned, {}), "a second report inside the interval waits"
    await bus.close()


async def test_nothing_owned_reports_nothing() -> None:
    bus = InMemoryBus()
    registry = CollectorRegistry()
    lag = LagGauge(bus, Gauge("lag", "lag", ["topic", "partition"], registry=registry))
    assert not await lag.report([], {})
