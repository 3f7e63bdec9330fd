"""Cooperative slicing: long loops on the event loop give it back every half millisecond,
so a batch of hundreds of records does not hold back requests, heartbeats, timers and the
statements of the checkpoint in flight."""

from __future__ import annotations

import asyncio
import time

SLICE_S = 0.0005
"""How long a sliced loop holds the event loop before it lets other work run. Short,
because a stage applies one batch while the previous batch's checkpoint runs its
statements: each statement's answer waits for the slice in progress to end before the
next statement is sent, so with 2 ms slices a checkpoint of eight statements took a
fifth longer than with these (docs/architecture.md, "Slices, and the due-timer
lookup beside the checkpoint in flight")."""


class Slicer:
    """Counts how long a loop has held the event loop since it last gave it back."""

    __slots__ = ("held_since",)

    def __init__(self) -> None:
        self.held_since = time.perf_counter()

    async def pause(self) -> None:
        """Let other work run when the loop has held the event loop for :data:`SLICE_S`;
        otherwise return at once (without yielding)."""
        if time.perf_counter() - self.held_since >= SLICE_S:
            await asyncio.sleep(0)
            self.held_since = time.perf_counter()
