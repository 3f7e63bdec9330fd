"""Cooperative slicing: long loops on the event loop give it back every half millisecond,
so a batch of hundreds of records does not hold back requests, heartbeats, timers and the
statements of the checkpoint in flight."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

FREED_AT_ONCE = 16
"""Entries :func:`let_go` frees between two looks at the clock."""

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


async def let_go(containers: Iterable[list[Any] | dict[Any, Any]]) -> None:
    """Empty ``containers``, :data:`FREED_AT_ONCE` entries at a time, giving the event loop
    back every :data:`SLICE_S`. A batch's objects freed at once, when the last reference to
    it goes, hold the loop for as long as it took to build them in slices (7 to 13 ms per
    engine batch of a thousand records on a slow machine). What else holds an entry keeps
    it."""
    slices = Slicer()
    for container in containers:
        while container:
            if isinstance(container, list):
                del container[-FREED_AT_ONCE:]
            else:
                for _ in range(min(FREED_AT_ONCE, len(container))):
                    container.popitem()
            await slices.pause()
