"""Cooperative slicing: long loops on the event loop give it back every few milliseconds,
so a batch of hundreds of records does not hold back requests, heartbeats and timers."""

from __future__ import annotations

import asyncio
import time

SLICE_S = 0.002
"""How long a sliced loop holds the event loop before it lets other work run."""


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
