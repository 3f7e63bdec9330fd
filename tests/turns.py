"""Counting the event loop's turns, to see a long loop let other work run."""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType


class LoopTurns(contextlib.AbstractAsyncContextManager["LoopTurns"]):
    """Within ``async with``: :attr:`count` is how many times the event loop has run other
    work (a task that does nothing but yield)."""

    def __init__(self) -> None:
        self.count = 0
        self._task: asyncio.Task[None] | None = None

    async def _turn(self) -> None:
        while True:
            await asyncio.sleep(0)
            self.count += 1

    async def __aenter__(self) -> LoopTurns:
        self._task = asyncio.create_task(self._turn())
        await asyncio.sleep(0)  # started: from here on each yield of the loop counts
        self.count = 0
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
