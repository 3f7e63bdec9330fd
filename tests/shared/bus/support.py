"""Events made to order and topics read back, for the consumer tests on either bus."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from shared.bus import Bus, ConsumedRecord, OutgoingRecord
from shared.contracts import EventEnvelope, EventType, Topic
from shared.contracts.events import event_id_for


def event_record(
    workspace: str,
    message: str,
    at: datetime,
    *,
    type: EventType = EventType.TRACK,
    event: str | None = None,
    account: str | None = "acme",
    user: str | None = "u1",
    **fields: Any,
) -> OutgoingRecord:
    """A ``milepost.events`` record of ``workspace``, received and happened ``at``, with
    the event id ingest gives ``message``."""
    envelope = EventEnvelope(
        event_id=event_id_for(workspace, message),
        workspace_id=workspace,
        message_id=message,
        type=type,
        event=event,
        account_id=account,
        user_id=user,
        timestamp=at,
        received_at=at,
        source="segment",
        **fields,
    )
    return OutgoingRecord(Topic.EVENTS, envelope.key.encode(), envelope.model_dump_json().encode())


async def read_to_end(bus: Bus, topic: str, model: type[Any]) -> list[tuple[int, int, Any]]:
    """Every record on ``topic`` up to its current end as (partition, offset, value parsed
    with ``model``), in the order polled (each partition's in offset order)."""
    return [
        (r.partition, r.offset, model.model_validate_json(r.value))
        for r in await records_to_end(bus, topic)
    ]


async def records_to_end(bus: Bus, topic: str) -> list[ConsumedRecord]:
    """Every record on ``topic`` up to its current end, in the order polled (each
    partition's in offset order)."""
    consumer = await bus.subscribe([topic], group_id=f"reader-{uuid.uuid4().hex}")
    found: list[ConsumedRecord] = []
    try:
        for _ in range(100):
            ends = await bus.end_offsets(sorted(consumer.assignment(), key=str))
            if consumer.assignment() and all(end == 0 for end in ends.values()):
                break
            found += await consumer.poll(max_records=5000, timeout_ms=200)
            seen: dict[int, int] = {}
            for r in found:
                seen[r.partition] = max(seen.get(r.partition, -1), r.offset)
            if consumer.assignment() and all(
                seen.get(tp.partition, -1) >= end - 1 for tp, end in ends.items()
            ):
                break
    finally:
        await consumer.close()
    return found
