"""Statements on the session's asyncpg connection: in the session's transaction, values
bound and returned as the session would, refusals raised as the session's."""

from __future__ import annotations

import gc
import uuid
import weakref
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Integer, bindparam, literal, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.node_engine.accounts.models import AccountFactsRow
from shared.db import create_engine, create_session_factory, driver
from shared.db.arrays import array_text
from shared.db.statements import _unnest_plain, _unnest_select, table_of

pytestmark = pytest.mark.postgres

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
FACTS = table_of(AccountFactsRow)
INSERT = _unnest_plain(FACTS, ("workspace_id", "account_id", "facts", "updated_at"))
SELECT = _unnest_select(
    FACTS, ("workspace_id", "account_id"), ("account_id", "facts", "updated_at"), False
)


@pytest.fixture
async def postgres_sessions(postgres_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(postgres_url)
    yield create_session_factory(engine)
    await engine.dispose()


def arrays(
    workspace: str, *accounts: str, facts: dict[str, object] | None = None
) -> dict[str, object]:
    return {
        "given_workspace_id": array_text([workspace] * len(accounts)),
        "given_account_id": array_text(list(accounts)),
        "given_facts": [f'{{"crm.plan": "{account}"}}' for account in accounts]
        if facts is None
        else [str(facts)] * len(accounts),
        "given_updated_at": array_text([NOW] * len(accounts)),
    }


async def stored(
    sessions: async_sessionmaker[AsyncSession], workspace: str
) -> list[tuple[object, ...]]:
    async with sessions() as session:
        rows = await session.execute(
            select(AccountFactsRow.account_id, AccountFactsRow.facts, AccountFactsRow.updated_at)
            .where(AccountFactsRow.workspace_id == workspace)
            .order_by(AccountFactsRow.account_id)
        )
        return [tuple(row) for row in rows]


async def stored_accounts(sessions: async_sessionmaker[AsyncSession], workspace: str) -> list[str]:
    return [str(account) for account, *_ in await stored(sessions, workspace)]


async def test_a_first_statement_is_rolled_back_or_committed_with_the_session(
    postgres_sessions: async_sessionmaker[AsyncSession],
) -> None:
    w = f"w{uuid.uuid4().hex[:8]}"
    async with postgres_sessions() as session:
        assert await driver.execute(session, INSERT, arrays(w, "a", "b")) == 2
        await session.rollback()
    assert await stored_accounts(postgres_sessions, w) == []
    async with postgres_sessions() as session:
        await driver.execute(session, INSERT, arrays(w, "a"))
        await session.execute(select(AccountFactsRow).limit(1))
        await driver.execute(session, INSERT, arrays(w, "b"))
        await session.commit()
    assert await stored_accounts(postgres_sessions, w) == ["a", "b"]


async def test_each_transaction_of_one_session_holds_its_own_statements(
    postgres_sessions: async_sessionmaker[AsyncSession],
) -> None:
    w = f"w{uuid.uuid4().hex[:8]}"
    async with postgres_sessions() as session:
        await driver.execute(session, INSERT, arrays(w, "a"))
        await session.commit()
        await driver.execute(session, INSERT, arrays(w, "b"))
        await session.rollback()
        await driver.execute(session, INSERT, arrays(w, "c"))
        await session.commit()
    assert await stored_accounts(postgres_sessions, w) == ["a", "c"]


async def test_a_session_that_ran_statements_is_freed_without_the_collector(
    postgres_sessions: async_sessionmaker[AsyncSession],
) -> None:
    w = f"w{uuid.uuid4().hex[:8]}"
    gc.disable()
    try:
        session = postgres_sessions()
        await driver.execute(session, INSERT, arrays(w, "a"))
        await session.commit()
        await driver.fetch(session, SELECT, arrays(w, "a"))
        await session.close()
        freed = weakref.ref(session.sync_session)
        del session
        assert freed() is None
    finally:
        gc.enable()


async def test_rows_come_back_as_the_session_returns_them(
    postgres_sessions: async_sessionmaker[AsyncSession],
) -> None:
    w = f"w{uuid.uuid4().hex[:8]}"
    async with postgres_sessions() as session:
        await driver.execute(session, INSERT, arrays(w, "a", "b"))
        await session.commit()
    async with postgres_sessions() as session:
        found = await driver.fetch(session, SELECT, arrays(w, "a", "b", "c"))
    assert sorted(found) == await stored(postgres_sessions, w)
    assert sorted(found) == [
        ("a", {"crm.plan": "a"}, NOW),
        ("b", {"crm.plan": "b"}, NOW),
    ]


async def test_a_statement_s_own_literals_are_bound_with_the_values_given(
    postgres_sessions: async_sessionmaker[AsyncSession],
) -> None:
    shifted = select(literal(2) + bindparam("given", type_=Integer), literal("held"))
    async with postgres_sessions() as session:
        assert await driver.fetch(session, shifted, {"given": 40}) == [(42, "held")]


async def test_a_key_already_there_is_an_integrity_error_and_a_refusal_a_database_error(
    postgres_sessions: async_sessionmaker[AsyncSession],
) -> None:
    w = f"w{uuid.uuid4().hex[:8]}"
    async with postgres_sessions() as session:
        await driver.execute(session, INSERT, arrays(w, "a"))
        await session.commit()
    async with postgres_sessions() as session:
        with pytest.raises(IntegrityError):
            await driver.execute(session, INSERT, arrays(w, "a"))
    async with postgres_sessions() as session:
        with pytest.raises(DBAPIError) as caught:
            await driver.execute(session, INSERT, arrays("w" * 33, "a"))
    assert not isinstance(caught.value, IntegrityError)
    async with postgres_sessions() as session:
        with pytest.raises(DBAPIError):
            await driver.execute(session, INSERT, arrays(w, "b", facts={"not": "json"}))


def test_a_statement_is_compiled_once_per_dialect(postgres_url: str) -> None:
    dialect = create_engine(postgres_url).dialect
    first = driver.for_driver(INSERT, dialect)
    assert driver.for_driver(INSERT, dialect) is first
    assert [name for name, _ in first.parameters] == [
        "given_workspace_id",
        "given_account_id",
        "given_facts",
        "given_updated_at",
    ]
