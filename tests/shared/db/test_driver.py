"""Statements on the session's asyncpg connection: in the session's transaction, values
bound and returned as the session would, refusals raised as the session's; and
transactions on a pooled connection without a session."""

from __future__ import annotations

import asyncio
import gc
import uuid
import weakref
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Integer, bindparam, func, literal, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

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


@pytest.fixture
async def postgres_engine(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(postgres_url, pool_size=2)
    yield engine
    await engine.dispose()


BACKEND = select(func.pg_backend_pid())


async def test_a_pooled_transaction_commits_or_rolls_back_and_gives_its_connection_back(
    postgres_engine: AsyncEngine,
) -> None:
    w = f"w{uuid.uuid4().hex[:8]}"
    sessions = create_session_factory(postgres_engine)
    kept = driver.PooledTransaction(postgres_engine)
    [(pid,)] = await kept.fetch(BACKEND, {})
    await kept.fetch(INSERT.returning(FACTS.c.account_id), arrays(w, "a"))
    await kept.commit()
    await kept.close()
    dropped = driver.PooledTransaction(postgres_engine)
    assert await dropped.fetch(BACKEND, {}) == [(pid,)]
    await dropped.fetch(INSERT.returning(FACTS.c.account_id), arrays(w, "b"))
    await dropped.close()
    assert postgres_engine.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    assert await stored_accounts(sessions, w) == ["a"]


async def test_a_refused_statement_is_rolled_back_and_its_connection_kept(
    postgres_engine: AsyncEngine,
) -> None:
    w = f"w{uuid.uuid4().hex[:8]}"
    first = driver.PooledTransaction(postgres_engine)
    [(pid,)] = await first.fetch(BACKEND, {})
    await first.fetch(INSERT.returning(FACTS.c.account_id), arrays(w, "a"))
    await first.commit()
    with pytest.raises(IntegrityError):
        await first.fetch(INSERT.returning(FACTS.c.account_id), arrays(w, "a"))
    await first.close()
    again = driver.PooledTransaction(postgres_engine)
    assert await again.fetch(BACKEND, {}) == [(pid,)]
    await again.close()


async def backends(engine: AsyncEngine, count: int) -> list[int]:
    """The backends of ``count`` pooled transactions held at once, then closed."""
    held = [driver.PooledTransaction(engine) for _ in range(count)]
    pids = [(await transaction.fetch(BACKEND, {}))[0][0] for transaction in held]
    for transaction in held:
        await transaction.close()
    return pids


async def test_a_lost_connection_is_discarded_with_the_connections_opened_before_it(
    postgres_engine: AsyncEngine,
) -> None:
    before = await backends(postgres_engine, 2)
    lost = driver.PooledTransaction(postgres_engine)
    [(pid,)] = await lost.fetch(BACKEND, {})
    async with postgres_engine.connect() as other:
        await other.execute(select(func.pg_terminate_backend(pid)))
    with pytest.raises(DBAPIError):
        await lost.fetch(BACKEND, {})
    await lost.close()
    assert not set(await backends(postgres_engine, 2)) & set(before)


async def test_an_interrupted_statement_discards_its_connection_alone(
    postgres_engine: AsyncEngine,
) -> None:
    interrupted = driver.PooledTransaction(postgres_engine)
    kept = driver.PooledTransaction(postgres_engine)
    [(gone,)] = await interrupted.fetch(BACKEND, {})
    [(other,)] = await kept.fetch(BACKEND, {})
    await kept.close()
    sleeping = asyncio.ensure_future(interrupted.fetch(select(func.pg_sleep(30)), {}))
    await asyncio.sleep(0.2)
    sleeping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sleeping
    await interrupted.close()
    after = await backends(postgres_engine, 2)
    assert other in after
    assert gone not in after


async def test_a_close_cancelled_during_its_rollback_still_releases_the_connection(
    postgres_engine: AsyncEngine,
) -> None:
    pool = postgres_engine.sync_engine.pool
    unfinished = driver.PooledTransaction(postgres_engine)
    [(pid,)] = await unfinished.fetch(BACKEND, {})
    closing = asyncio.ensure_future(unfinished.close())
    await asyncio.sleep(0)  # the close has sent its ROLLBACK and waits for the answer
    closing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closing
    assert pool.checkedout() == 0  # type: ignore[attr-defined]
    assert pid not in await backends(postgres_engine, 2)
