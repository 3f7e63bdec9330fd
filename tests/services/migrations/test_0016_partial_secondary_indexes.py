"""Migration 0016: a batch's rows are read by their key, whatever the planner knew when it
planned the lookup (through the primary key, or an index holding the whole key). A temporary copy of each table with its indexes is new, empty and
never analyzed, as on a new database; the lookup runs there until PostgreSQL caches a plan,
then once the copy holds 20,000 rows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from sqlalchemy import MetaData, Table, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase

from services.messaging.contacts.models import ContactRow
from services.node_engine.accounts.models import AccountStateRow
from services.scoring.accounts.models import ScoringAccountRow
from shared.db import create_engine, create_session_factory
from shared.db.statements import insert_rows, rows_by_keys

NOW = datetime(2026, 12, 4, tzinfo=UTC)
ROWS = 20_000


class _Scratch(DeclarativeBase):
    pass


def _copy(model: type[Any], name: str) -> type[DeclarativeBase]:
    """A model of a table called ``name`` with ``model``'s columns."""
    columns = (column._copy() for column in cast(Table, model.__table__).c)
    return type(name, (_Scratch,), {"__table__": Table(name, MetaData(), *columns)})


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


def _scored(i: int) -> dict[str, object]:
    return {
        "workspace_id": "w",
        "account_id": f"a{i}",
        "partition": 0,
        "revision": 1,
        "metrics": bytes(300),
        "facts": {},
        "health": 50.0,
        "band": "watch",
        "risk_level": "low",
        "risk": None,
        "tier": None,
        "peers": None,
        "explanation": {},
        "north_star": None,
        "contract_value": None,
        "acquisition_cost": None,
        "currency": None,
        "renewal_at": None,
        "evaluated_at": NOW,
        "updated_at": NOW,
    }


def _contact(i: int) -> dict[str, object]:
    return {
        "workspace_id": "w",
        "contact_id": f"c{i}",
        "account_id": f"a{i}",
        "name": None,
        "email": f"c{i}@example.com",
        "phone": None,
        "chat_app_ids": {},
        "roles": ",end_user,",
        "locale": None,
        "timezone": None,
        "consent": {},
        "bounced": [],
        "is_account_owner": False,
        "updated_at": NOW,
    }


CASES = {
    "engine account states": (AccountStateRow, ("workspace_id", "account_id", "path_id"), _state),
    "scoring accounts": (ScoringAccountRow, ("workspace_id", "account_id"), _scored),
    "messaging contacts": (ContactRow, ("workspace_id", "contact_id"), _contact),
}


@pytest.mark.postgres
@pytest.mark.parametrize("case", CASES)
async def test_a_lookup_planned_on_the_empty_table_reads_by_key_once_it_grew(
    postgres_url: str, case: str
) -> None:
    model, key, row = cast(
        tuple[type[Any], tuple[str, ...], Callable[[int], dict[str, object]]], CASES[case]
    )
    table = cast(Table, model.__table__).name
    copy = f"test_growing_{table}"
    engine = create_engine(postgres_url)
    try:
        async with create_session_factory(engine)() as session:
            await session.execute(
                text(f"CREATE TEMPORARY TABLE {copy} (LIKE {table} INCLUDING ALL)")
            )
            growing = _copy(model, copy)
            keys = [tuple(row(i)[name] for name in key) for i in range(3)]
            for _ in range(8):  # past the few runs PostgreSQL plans for their parameters
                await rows_by_keys(session, growing, key, keys, ("account_id",))
            await insert_rows(session, growing, [row(i) for i in range(ROWS)])
            before = await _rows_read(session, copy)
            found = await rows_by_keys(session, growing, key, keys, ("account_id",))
            assert sorted(account for (account,) in found) == ["a0", "a1", "a2"]
            after = await _rows_read(session, copy)
            assert (after[0] - before[0], after[1] - before[1]) == (0, len(keys))
            await session.rollback()
    finally:
        await engine.dispose()


async def _rows_read(session: AsyncSession, table: str) -> tuple[int, int]:
    """``table``'s rows read by sequential scans in this transaction so far, and the index
    entries its index scans returned (one per key for a lookup by key, whichever index
    holds the key)."""
    row = await session.execute(
        text(
            "SELECT pg_stat_get_xact_tuples_returned(CAST(:name AS regclass)), "
            "(SELECT coalesce(sum(pg_stat_get_xact_tuples_returned(indexrelid)), 0) "
            "FROM pg_index WHERE indrelid = CAST(:name AS regclass))"
        ),
        {"name": table},
    )
    sequential, by_index = row.one()
    return int(sequential), int(by_index)
