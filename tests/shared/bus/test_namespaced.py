"""A topic prefix is added on the way to the broker and removed from what comes back."""

from __future__ import annotations

import msgspec

from shared.bus import ConsumedRecord, OutgoingRecord, TopicPartition
from shared.bus.memory import InMemoryBus
from shared.bus.namespaced import NamespacedBus
from shared.contracts import TOPICS, Topic


async def test_services_see_plain_names_while_the_broker_holds_prefixed_topics() -> None:
    inner = InMemoryBus()
    bus = NamespacedBus(inner, "staging.")
    await bus.start()
    await bus.ensure_topics(TOPICS, replication_factor=1)
    await bus.publish([OutgoingRecord(Topic.EVENTS, b"ws/a/acme", b"one", (("h", b"1"),))])

    raw = await inner.subscribe(["staging.milepost.events"], group_id="raw")
    (stored,) = await raw.poll(timeout_ms=10)
    assert (stored.key, stored.value, stored.headers) == (b"ws/a/acme", b"one", (("h", b"1"),))
    assert await inner.end_offsets([TopicPartition("milepost.events", 0)]) == {
        TopicPartition("milepost.events", 0): 0
    }

    consumer = await bus.subscribe([Topic.EVENTS], group_id="engine")
    (record,) = await consumer.poll(timeout_ms=10)
    assert record == stored.on(Topic.EVENTS)
    assert {tp.topic for tp in consumer.assignment()} == {Topic.EVENTS}
    await consumer.commit({record.topic_partition: record.offset + 1})
    ends = await bus.end_offsets([record.topic_partition])
    assert ends == {record.topic_partition: 1}
    await consumer.close()

    again = await bus.subscribe([Topic.EVENTS], group_id="engine")
    assert await again.poll(timeout_ms=10) == []
    await again.close()
    await bus.close()


def test_a_record_moved_to_another_topic_keeps_every_other_field() -> None:
    outgoing = OutgoingRecord("a", b"key", b"value", (("h", b"1"),))
    consumed = ConsumedRecord("a", 2, 40, b"key", b"value", (("h", b"1"),), 1_700)
    assert outgoing.on("b") == msgspec.structs.replace(outgoing, topic="b")
    assert consumed.on("b") == msgspec.structs.replace(consumed, topic="b")
