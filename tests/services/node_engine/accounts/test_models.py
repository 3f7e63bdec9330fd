"""The account-state table's indexes: a batch's states are read by their key whatever the
planner knew when it planned the lookup."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

import pytest
from sqlalchemy import MetaData, Table, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase

from services.node_engine.accounts.models import AccountStateRow
from shared.db import create_engine, create_session_factory
from shared.db.statements import insert_rows, rows_by_keys

COPY = "test_models_growing_states"
KEY = ("workspace_id", "account_id", "path_id")
NOW = datetime(2026, 12, 4, tzinfo=UTC)


class _Scratch(DeclarativeBase):
    pass


class GrowingStates(_Scratch):
    """A temporary copy of the table with its indexes: new, empty, never analyzed."""

    __table__ = Table(
        COPY, MetaData(), *(column._copy() for column in cast(Table, AccountStateRow.__table__).c)
    )


@pytest.mark.postgres
async def test_a_lookup_planned_on_the_empty_table_reads_by_key_once_it_grew(
    postgres_url: str,
) -> None:
    engine = create_engine(postgres_url)
    try:
        async with create_session_factory(engine)() as session:
            await session.execute(
                text(f"CREATE TEMPORARY TABLE {COPY} (LIKE engine_account_states INCLUDING ALL)")
            )
            keys = [("w", f"a{i}", "p") for i in range(3)]
            for _ in range(8):  # past the few runs PostgreSQL plans for their parameters
                await rows_by_keys(session, GrowingStates, KEY, keys, ("account_id",))
            await insert_rows(session, GrowingStates, [_state(i) for i in range(20_000)])
            found = await rows_by_keys(session, GrowingStates, KEY, keys, ("account_id",))
            assert sorted(account for (account,) in found) == ["a0", "a1", "a2"]
            assert set(await _scans_by_index(session)) == {f"{COPY}_pkey"}
            await session.rollback()
    finally:
        await engine.dispose()


def _state(i: int) -> dict[str, object]:
    return {
        "workspace_id": "w",
        "account_id": f"a{i}",
        "path_id": "p",
        "path_version": 1,
        "stage": "onboarding",
        "node": "first_order",
        "tier": None,
        "last_error": None,
        "state": bytes(400),
        "updated_at": NOW,
    }


async def _scans_by_index(session: AsyncSession) -> dict[str, int]:
    """The copy's indexes scanned in this transaction, with how many scans each."""
    rows = await session.execute(
        text(
            "SELECT index.relname, pg_stat_get_xact_numscans(index.oid) FROM pg_index "
            "JOIN pg_class AS index ON index.oid = pg_index.indexrelid "
            "WHERE pg_index.indrelid = CAST(:name AS regclass) "
            "AND pg_stat_get_xact_numscans(index.oid) > 0"
        ),
        {"name": COPY},
    )
    return {name: int(scans) for name, scans in rows}
