"""INSERT statements with ON CONFLICT, for the two databases Milepost runs on.

PostgreSQL and SQLite spell upserts the same way in SQLAlchemy but through their own
dialect modules; these helpers pick the module from the session's bind. The statements
are Core statements on the model's table (no ORM bulk-persistence layer in between), so
the rows of one call go out as one batched statement; every row names the same columns.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, select
from sqlalchemy.dialects import postgresql
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
    """Insert ``rows`` whose ``key`` column is not there yet, in one statement (``INSERT ...
    ON CONFLICT DO NOTHING RETURNING key``); returns the keys inserted. A concurrent insert
    of the same key waits for the other transaction, then finds it (not returned) or not
    (inserted).

    On PostgreSQL the rows go as one array per column through ``unnest``: one statement
    text whatever their number, prepared once per connection; on SQLite, one parameter set
    per row."""
    if not rows:
        return set()
    table = cast(Table, model.__table__)
    columns = tuple(rows[0])
    if session.get_bind().dialect.name == "postgresql":
        returned = await session.execute(
            _unnest_insert(table, columns, key),
            {f"in_{name}": [row[name] for row in rows] for name in columns},
        )
    else:
        statement = sqlite_insert(table).on_conflict_do_nothing().returning(table.c[key])
        returned = await session.execute(statement, list(rows))
    return set(returned.scalars())


@functools.cache
def _unnest_insert(table: Table, columns: tuple[str, ...], key: str) -> Any:
    """``INSERT INTO table (columns) SELECT * FROM unnest(:in_column, ...) ON CONFLICT DO
    NOTHING RETURNING key``, each parameter an array of its column's type."""
    arrays = [
        bindparam(f"in_{name}", type_=postgresql.ARRAY(table.c[name].type)) for name in columns
    ]
    source = func.unnest(*arrays).table_valued(*columns).render_derived()
    return (
        postgresql_insert(table)
        .from_select(list(columns), select(*(source.c[name] for name in columns)))
        .on_conflict_do_nothing()
        .returning(table.c[key])
    )


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
