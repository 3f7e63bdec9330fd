"""Appending with COPY: the same rows as an insert, in the session's transaction, and a
refusal raised as a statement's would be."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.node_engine.accounts.models import AccountFactsRow, TransitionRow
from shared import slicing
from shared.db import create_engine, create_session_factory
from shared.db.copying import copy_rows

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)


def transition(workspace: str, transition_id: str, payload: dict[str, object]) -> dict[str, object]:
    return {
        "transition_id": transition_id,
        "workspace_id": workspace,
        "account_id": "acme",
        "path_id": "p",
        "path_version": 1,
        "kind": "node_entered",
        "stage": "onboarding",
        "node": None,
        "reason": "entered",
        "cause_id": "e1",
        "target_roles": ["admin"],
        "payload": payload,
        "occurred_at": NOW,
    }


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
            [transition(w, "t1", {"score": 0.5, "tags": ["a"]}), transition(w, "t2", {})],
        )
        await copy_rows(session, TransitionRow, [])
        await session.commit()
    assert await _history(sessions, w) == [
        ("t1", None, ["admin"], {"score": 0.5, "tags": ["a"]}, NOW),
        ("t2", None, ["admin"], {}, NOW),
    ]


async def test_a_copy_as_the_first_statement_is_rolled_back_with_the_transaction(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    w = f"w{uuid.uuid4().hex[:8]}"
    async with sessions() as session:
        await copy_rows(session, TransitionRow, [transition(w, "t1", {})])
        await session.rollback()
    assert await _history(sessions, w) == []


async def test_a_key_already_there_fails_the_copy(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    w = f"w{uuid.uuid4().hex[:8]}"
    facts = {"workspace_id": w, "account_id": "a", "facts": {}, "updated_at": NOW}
    async with sessions() as session:
        await copy_rows(session, AccountFactsRow, [facts])
        await session.commit()
    async with sessions() as session:
        with pytest.raises(IntegrityError):
            await copy_rows(session, AccountFactsRow, [facts])


@pytest.mark.postgres
async def test_a_value_postgresql_refuses_fails_as_a_database_error(postgres_url: str) -> None:
    engine = create_engine(postgres_url)
    try:
        async with create_session_factory(engine)() as session:
            with pytest.raises(DBAPIError) as caught:
                await copy_rows(session, TransitionRow, [transition("w" * 33, "t1", {})])
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

    class Row(dict[str, object]):
        """Notes how often the event loop had run when the copy read its first column."""

        def __getitem__(self, name: str) -> object:
            if name == "transition_id":
                read_at.append(ticks)
            return super().__getitem__(name)

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
                session, TransitionRow, [Row(transition(w, f"t{i}", {})) for i in range(3)]
            )
            ticker.cancel()
            await session.rollback()
    finally:
        await engine.dispose()
    assert read_at[0] < read_at[1] < read_at[2]
