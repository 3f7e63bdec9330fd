"""The cooperative slicer: it gives the event loop back only once it held it for a slice;
what a batch built is let go of the same way."""

from __future__ import annotations

import asyncio
import time

import pytest

from shared import slicing
from shared.slicing import FREED_AT_ONCE, SLICE_S, Slicer, let_go


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


async def test_let_go_empties_lists_and_dicts_giving_the_loop_back_between_slices(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ran: list[int] = []
    rows, states = list(range(100)), {n: str(n) for n in range(50)}
    kept = rows[:3]  # what else holds an entry keeps it
    monkeypatch.setattr(slicing, "SLICE_S", 0.0)  # every few entries use up a slice

    async def other_work() -> None:
        while rows or states:
            ran.append(len(rows) + len(states))
            await asyncio.sleep(0)

    other = asyncio.create_task(other_work())
    await asyncio.sleep(0)
    await let_go([rows, states])
    await other
    assert (rows, states, kept) == ([], {}, [0, 1, 2])
    assert len(ran) >= (100 + 50) // FREED_AT_ONCE  # the loop ran between the slices
    assert all(150 - left <= FREED_AT_ONCE * n for n, left in enumerate(ran, start=1))
