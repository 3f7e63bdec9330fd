"""Pending timers on SQLite and PostgreSQL: what a due-timer lookup returns."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.node_engine.core.state import Timer, TimerKind
from services.node_engine.timers import repository as timers
from shared import slicing
from tests.turns import LoopTurns


async def test_a_lookup_returns_the_due_timers_earliest_first_less_those_fired(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    tag = uuid.uuid4()
    workspace, partition = f"ws{tag.hex[:10]}", 1_000 + tag.int % 1_000_000  # its own
    pending = [
        Timer(f"{workspace}-{n}", "onboarding", due_at, TimerKind.DUE, "welcome")
        for n, due_at in enumerate((300, 100, 200, 900))
    ]
    async with sessions() as session:
        await timers.schedule(session, [(workspace, "acme", partition, t) for t in pending])
        await session.commit()
    async with sessions() as session:
        every = await timers.due(session, {partition}, now=500, limit=10)
        unfired = await timers.due(
            session, {partition}, now=500, limit=10, fired={pending[1].id, "elsewhere"}
        )
    assert [d.timer.due_at for d in every] == [100, 200, 300]
    assert [d.timer.due_at for d in unfired] == [200, 300]
    assert {d.account_id for d in every} == {"acme"}


async def test_the_rows_of_timers_are_built_in_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(slicing, "SLICE_S", 0.0)  # every timer ends a slice
    pending = [
        ("ws", "acme", 0, Timer(f"t{n}", "onboarding", n, TimerKind.DUE, "welcome"))
        for n in range(90)
    ]
    given: list[tuple[int, int]] = []
    async with LoopTurns() as turns:

        async def insert(_session: object, _model: object, rows: list[Any]) -> None:
            given.append((turns.count, len(rows)))

        monkeypatch.setattr(timers, "insert_ignoring_duplicates", insert)
        no_session: Any = None  # the statement is stood in for
        await timers.schedule(no_session, pending)

    assert given == [(len(pending), len(pending))]
