"""Deliveries handed from their planning to the dispatcher of the same process.

A consumer that plans deliveries (the subscriptions' fan-out) may store those due at once
already leased to this process (``leased_until`` one lease ahead, the attempt counted) and,
once its transaction commits, hand them here; the dispatcher sends them without claiming
them. They need no claim statement, no claim transaction and no wake-up round: the claim
was a third of a delivery's writes.

The lease keeps the guarantee the claim gives. A process that dies between the commit and
the send leaves them leased, and any dispatcher claims them when the lease ends, as after
a claim. A handed delivery still waiting when half its lease is gone is left to that claim
(:meth:`Handoff.take`), so two dispatchers never hold it at once; and a handoff holding a
full backlog accepts no more (:meth:`Handoff.accepts`), so a slow dispatcher leaves new
deliveries to the claim instead of holding them in memory.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.messaging.deliveries.message import Message


@dataclass(frozen=True, slots=True)
class Handed:
    """A delivery leased at its planning, with the end of that lease."""

    message: Message
    leased_until: datetime


class Handoff:
    """Committed, leased deliveries waiting for this process's dispatcher."""

    def __init__(self, *, lease: timedelta, backlog: int, wake: asyncio.Event) -> None:
        self.lease = lease
        self.backlog = backlog
        self.wake = wake
        self.waiting: deque[Handed] = deque()

    def accepts(self) -> bool:
        """Whether a planner may lease new deliveries to this process."""
        return len(self.waiting) < self.backlog

    def hand(self, handed: list[Handed]) -> None:
        """Deliveries whose leases are committed; wakes the dispatcher."""
        if handed:
            self.waiting.extend(handed)
            self.wake.set()

    def take(self, limit: int, *, now: datetime) -> list[Message]:
        """Up to ``limit`` handed deliveries in the order they came, dropping those with
        less than half their lease left (a dispatcher claims them when it ends)."""
        taken: list[Message] = []
        margin = self.lease / 2
        while self.waiting and len(taken) < limit:
            handed = self.waiting.popleft()
            if handed.leased_until - now > margin:
                taken.append(handed.message)
        return taken
