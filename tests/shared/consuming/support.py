"""Driving a stream's handler in tests as :meth:`Stream.run` drives it."""

from __future__ import annotations

from typing import Any

from shared.bus import Consumer
from shared.consuming.stream import Handler


async def step_until_applied(
    handler: Handler[Any, Any], consumer: Consumer, *, rounds: int, then: int, what: str
) -> None:
    """Step until every owned input partition is applied up to its end, then ``then`` steps
    more, as :meth:`Stream.run` steps: on PostgreSQL each checkpoint overlaps the next
    batch. The last checkpoint is finished before returning; ``what`` names the handler in
    the failure when ``rounds`` steps do not catch up."""
    stream = handler.stream
    async with stream.sessions() as session:
        overlap = session.get_bind().dialect.name == "postgresql"
    for _ in range(rounds):
        await stream.step(consumer, overlap=overlap)
        owned = consumer.assignment()
        if not owned:
            continue
        ends = await stream.bus.end_offsets(sorted(owned, key=str))
        if all(stream.member.applied.get(tp, 0) >= end for tp, end in ends.items() if end):
            for _ in range(then):
                await stream.step(consumer, overlap=overlap)
            await stream.settle()
            return
    raise AssertionError(f"{what} did not catch up")
