"""INSERT statements with ON CONFLICT, for the two databases Milepost runs on.

PostgreSQL and SQLite spell upserts the same way in SQLAlchemy but through their own
dialect modules; these helpers pick the module from the session's bind. The statements
are Core statements on the model's table (no ORM bulk-persistence layer in between), so
the rows of one call go out as one batched statement; every row names the same columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase


def _insert(session: AsyncSession, model: type[DeclarativeBase]) -> Any:
    dialect = session.get_bind().dialect.name
    return (postgresql_insert if dialect == "postgresql" else sqlite_insert)(
        cast(Table, model.__table__)
    )


async def insert_ignoring_duplicates(
    session: AsyncSession, model: type[DeclarativeBase], rows: Sequence[dict[str, Any]]
) -> None:
    """Insert ``rows`` (executemany); rows whose key already exists are left as they are."""
    if rows:
        statement = _insert(session, model).on_conflict_do_nothing()
        await session.execute(statement, list(rows))


async def insert_new(
    session: AsyncSession, model: type[DeclarativeBase], rows: Sequence[dict[str, Any]], key: str
) -> set[Any]:
    """Insert ``rows`` whose ``key`` column is not there yet, in one batched statement
    (``INSERT ... ON CONFLICT DO NOTHING RETURNING key``); returns the keys inserted. A
    concurrent insert of the same key waits for the other transaction, then finds it
    (not returned) or not (inserted)."""
    if not rows:
        return set()
    statement = _insert(session, model).on_conflict_do_nothing()
    returned = await session.execute(
        statement.returning(cast(Table, model.__table__).c[key]), list(rows)
    )
    return set(returned.scalars())


async def upsert(
    session: AsyncSession,
    model: type[DeclarativeBase],
    rows: Sequence[dict[str, Any]],
    *,
    key: Sequence[str],
) -> None:
    """Insert ``rows``, replacing every non-key column of rows whose ``key`` exists."""
    if not rows:
        return
    statement = _insert(session, model)
    columns = [column for column in rows[0] if column not in key]
    statement = statement.on_conflict_do_update(
        index_elements=list(key), set_={column: statement.excluded[column] for column in columns}
    )
    await session.execute(statement, list(rows))
