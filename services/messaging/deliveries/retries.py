"""What happens after an attempt: done, retried later, or dead-lettered. Pure.

Retries follow the schedule with full jitter: before retry *n* the wait is drawn
uniformly between 0 and the schedule's *n*-th bound (exponential bounds spread the
retries of many deliveries instead of synchronising them), and is never shorter than a
``Retry-After`` the provider asked for. A permanent failure, or a retryable one after the
last retry, fails the delivery and dead-letters it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from services.messaging.channels.base import SendResult

Draw = Callable[[float], float]
"""A wait between 0 and its argument (``lambda bound: random.uniform(0, bound)``)."""


@dataclass(frozen=True, slots=True)
class Decision:
    status: Literal["sent", "retrying", "failed"]
    due_at: datetime | None
    """When the delivery is tried again (``retrying`` only)."""
    dead_letter: bool


def decide(
    result: SendResult,
    *,
    attempt: int,
    schedule: Sequence[float],
    now: datetime,
    draw: Draw,
) -> Decision:
    """The fate of a delivery after its ``attempt``-th send (1-based)."""
    if result.outcome == "sent":
        return Decision("sent", None, dead_letter=False)
    if result.outcome == "permanent" or attempt > len(schedule):
        return Decision("failed", None, dead_letter=True)
    wait = draw(schedule[attempt - 1])
    if result.retry_after_seconds is not None:
        wait = max(wait, result.retry_after_seconds)
    return Decision("retrying", now + timedelta(seconds=wait), dead_letter=False)
