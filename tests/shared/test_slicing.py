"""The cooperative slicer: it gives the event loop back only once it held it for a slice."""

from __future__ import annotations

import asyncio
import time

from shared.slicing import SLICE_S, Slicer


async def test_the_loop_runs_other_work_only_once_a_slice_is_used_up() -> None:
    ran: list[str] = []
    slices = Slicer()
    asyncio.get_running_loop().call_soon(ran.append, "other work")
    slices.held_since = time.perf_counter() + 3600  # held for no time at all yet
    await slices.pause()
    assert ran == []
    slices.held_since = time.perf_counter() - SLICE_S
    yielded_at = time.perf_counter()
    await slices.pause()
    assert ran == ["other work"]
    assert slices.held_since >= yielded_at  # the next slice starts after the yield
