"""Appending with COPY: the same rows as an insert, in the session's transaction, and a
refusal raised as a statement's would be."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.node_engine.accounts.models import AccountFactsRow, TransitionRow
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
