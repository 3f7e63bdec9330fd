"""The bulk statements: one statement per call on PostgreSQL (arrays unnested), plain
statements on SQLite, the same rows either way."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.node_engine.accounts.models import AccountFactsRow
from shared.db.statements import bulk_insert_ignoring_duplicates, bulk_upsert, rows_by_keys

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
KEY = ("workspace_id", "account_id")
COLUMNS = ("workspace_id", "account_id", "facts")


def row(workspace: str, account: str, facts: dict[str, object]) -> dict[str, object]:
    return {"workspace_id": workspace, "account_id": account, "facts": facts, "updated_at": NOW}


async def test_an_upsert_replaces_and_an_insert_ignoring_duplicates_keeps(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    w = f"w{uuid.uuid4().hex[:8]}"
    async with sessions() as session:
        await bulk_upsert(
            session, AccountFactsRow, [row(w, "a", {"roles": ["admin"]}), row(w, "b", {})], key=KEY
        )
        await bulk_upsert(session, AccountFactsRow, [row(w, "a", {"plan": "pro"})], key=KEY)
        await bulk_insert_ignoring_duplicates(
            session, AccountFactsRow, [row(w, "b", {"lost": True}), row(w, "c", {"n": [1, 2]})]
        )
        await session.commit()
    async with sessions() as session:
        found = await rows_by_keys(
            session, AccountFactsRow, KEY, [(w, "a"), (w, "b"), (w, "c"), (w, "x")], COLUMNS
        )
    assert sorted((account, facts) for _, account, facts in found) == [
        ("a", {"plan": "pro"}),
        ("b", {}),
        ("c", {"n": [1, 2]}),
    ]


async def test_no_keys_read_nothing(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session:
        assert await rows_by_keys(session, AccountFactsRow, KEY, [], COLUMNS) == []
