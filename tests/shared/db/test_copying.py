"""Appending with COPY: the same rows as an insert, in the session's transaction, and a
refusal raised as a statement's would be."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.node_engine.accounts.models import AccountFactsRow, TransitionRow
from services.node_engine.accounts.repository import HISTORY_COLUMNS
from shared import slicing
from shared.db import create_engine, create_session_factory
from shared.db.copying import copy_rows

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
PARIS = datetime(2026, 3, 2, 10, 30, tzinfo=timezone(timedelta(hours=1)))
FACTS = ("workspace_id", "account_id", "facts", "updated_at")


def transition(
    workspace: str, transition_id: str, payload: dict[str, object], at: datetime = NOW
) -> tuple[object, ...]:
    return (
        transition_id,
        workspace,
        "acme",
        "p",
        1,
        "node_entered",
        "onboarding",
        None,
        "entered",
        "e1",
        ("admin",),
        payload,
        at,
    )


async def _history(sessions: async_sessionmaker[AsyncSession], workspace: str) -> list[object]:
    async with sessions() as session:
        rows = await session.execute(
            select(
                TransitionRow.transition_id,
                TransitionRow.node,
                TransitionRow.target_roles,
                TransitionRow.payload,
                TransitionRow.occurred_at,
            )
            .where(TransitionRow.workspace_id == workspace)
            .order_by(TransitionRow.position)
        )
        return [tuple(row) for row in rows]


async def test_copied_rows_read_back_as_given_in_order(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    w = f"w{uuid.uuid4().hex[:8]}"
    async with sessions() as session:
        await session.execute(select(AccountFactsRow).limit(1))
        await copy_rows(
            session,
            TransitionRow,
            HISTORY_COLUMNS,
            [transition(w, "t1", {"score": 0.5, "tags": ["a"]}), transition(w, "t2", {}, PARIS)],
        )
        await copy_rows(session, TransitionRow, HISTORY_COLUMNS, [])
        await session.commit()
    assert await _history(sessions, w) == [
        ("t1", None, ["admin"], {"score": 0.5, "tags": ["a"]}, NOW),
        ("t2", None, ["admin"], {}, PARIS),
    ]


async def test_a_copy_as_the_first_statement_is_rolled_back_with_the_transaction(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    w = f"w{uuid.uuid4().hex[:8]}"
    async with sessions() as session:
        await copy_rows(session, TransitionRow, HISTORY_COLUMNS, [transition(w, "t1", {})])
        await session.rollback()
    assert await _history(sessions, w) == []


async def test_a_key_already_there_fails_the_copy(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    w = f"w{uuid.uuid4().hex[:8]}"
    facts: tuple[object, ...] = (w, "a", {}, NOW)
    async with sessions() as session:
        await copy_rows(session, AccountFactsRow, FACTS, [facts])
        await session.commit()
    async with sessions() as session:
        with pytest.raises(IntegrityError):
            await copy_rows(session, AccountFactsRow, FACTS, [facts])


@pytest.mark.postgres
async def test_a_value_postgresql_refuses_fails_as_a_database_error(postgres_url: str) -> None:
    engine = create_engine(postgres_url)
    try:
        async with create_session_factory(engine)() as session:
            with pytest.raises(DBAPIError) as caught:
                await copy_rows(
                    session, TransitionRow, HISTORY_COLUMNS, [transition("w" * 33, "t1", {})]
                )
        assert not isinstance(caught.value, IntegrityError)
    finally:
        await engine.dispose()


@pytest.mark.postgres
async def test_a_long_copy_lets_the_event_loop_run_between_rows(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(slicing, "SLICE_S", 0.0)
    ticks = 0
    read_at: list[int] = []

    class Rows(list[tuple[object, ...]]):
        """Notes how often the event loop had run when the copy read each row."""

        def __iter__(self) -> Iterator[tuple[object, ...]]:
            for row in super().__iter__():
                read_at.append(ticks)
                yield row

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    w = f"w{uuid.uuid4().hex[:8]}"
    engine = create_engine(postgres_url)
    try:
        async with create_session_factory(engine)() as session:
            await session.execute(select(1))
            ticker = asyncio.create_task(tick())
            await copy_rows(
                session,
                TransitionRow,
                HISTORY_COLUMNS,
                Rows(transition(w, f"t{i}", {}) for i in range(3)),
            )
            ticker.cancel()
            await session.rollback()
    finally:
        await engine.dispose()
    assert read_at[0] < read_at[1] < read_at[2]


@pytest.mark.postgres
async def test_a_timestamp_without_a_time_zone_is_refused(postgres_url: str) -> None:
    engine = create_engine(postgres_url)
    try:
        async with create_session_factory(engine)() as session:
            naive = transition("w", "t1", {}, datetime(2026, 3, 2, 9))
            with pytest.raises(ValueError, match="timezone-aware"):
                await copy_rows(session, TransitionRow, HISTORY_COLUMNS, [naive])
    finally:
        await engine.dispose()
