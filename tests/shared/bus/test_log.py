"""The log bus's wake-ups (:mod:`shared.bus.log`, here over the in-memory log)."""

from __future__ import annotations

import asyncio

from shared.bus import OutgoingRecord
from shared.bus.memory import InMemoryBus

TOPIC = "t.events"
STUCK_S = 10
"""Longer than any of these steps takes by far: a poll not done by then is stuck."""


async def test_waiting_polls_cancelled_twice_as_a_publish_wakes_them_end_cancelled() -> None:
    """A stop cancels the workers, and a second stop signal cancels them again while the
    first cancellation is still being delivered, just as a publish wakes their polls: each
    poll ends cancelled or with its records, never failing (a failed worker is restarted,
    and the stop waits for it)."""
    bus = InMemoryBus()
    await bus.start()
    consumers = [await bus.subscribe([TOPIC], group_id=f"g{i}") for i in range(2)]
    polls = [asyncio.create_task(c.poll(timeout_ms=3_600_000)) for c in consumers]
    for _ in range(5):
        await asyncio.sleep(0)
    publishing = asyncio.create_task(bus.publish([OutgoingRecord(TOPIC, b"k", b"v")]))
    for poll in polls:
        poll.cancel()
    await asyncio.sleep(0)
    for poll in polls:
        poll.cancel()
    _, pending = await asyncio.wait(polls, timeout=STUCK_S)
    await publishing
    await bus.close()
    assert not pending, "a poll neither ended nor stayed cancelled"
    for poll in polls:
        assert poll.cancelled() or isinstance(poll.result(), list), poll
