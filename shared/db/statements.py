"""Bulk statements (inserts with ON CONFLICT, updates, lookups by key, deletes) for the two
databases Milepost runs on.

PostgreSQL and SQLite spell upserts the same way in SQLAlchemy but through their own
dialect modules; these helpers pick the module from the session's bind. The statements
are Core statements on the model's table (no ORM bulk-persistence layer in between), so
the rows of one call go out as one batched statement; every row names the same columns.

On PostgreSQL the inserts (:func:`insert_rows`, :func:`insert_ignoring_duplicates`,
:func:`insert_new`, :func:`bulk_upsert`, :func:`bulk_add`), :func:`bulk_update`,
:func:`rows_by_keys` and :func:`delete_by_ids` pass one array per column (most as its
text, :mod:`shared.db.arrays`) and ``unnest`` them (or compare with ``= any(array)``): one
statement text whatever the number of rows, compiled once and run by the session's own
asyncpg connection (:mod:`shared.db.driver`), which prepares it once per connection. A
write of many rows runs it once per part of at most :data:`VALUES_PER_STATEMENT` values,
in the caller's transaction. SQLite runs the plain statements through the session, one
parameter set per row (executemany).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import cache
from typing import Any, cast

from sqlalchemy import (
    JSON,
    Table,
    and_,
    bindparam,
    column,
    delete,
    func,
    select,
    tuple_,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase

from shared.db import driver
from shared.db.arrays import carried_as_text, columns, element_type, encoded, parameter


async def insert_rows(
    session: AsyncSession, model: type[DeclarativeBase], rows: Sequence[dict[str, Any]]
) -> None:
    """Insert ``rows``; a key already there raises ``IntegrityError``."""
    if not rows:
        return
    table = table_of(model)
    if on_postgresql(session):
        statement = _unnest_plain(table, tuple(rows[0]))
        for part in _parts(table, rows):
            await driver.execute(session, statement, part)
    else:
        await session.execute(table.insert(), list(rows))


async def insert_ignoring_duplicates(
    session: AsyncSession, model: type[DeclarativeBase], rows: Sequence[dict[str, Any]]
) -> None:
    """Insert ``rows``; rows whose key already exists (or repeats one of ``rows``) are left
    as they are."""
    if not rows:
        return
    table = table_of(model)
    if on_postgresql(session):
        statement = _unnest_insert(table, tuple(rows[0]), None)
        for part in _parts(table, rows):
            await driver.execute(session, statement, part)
    else:
        await session.execute(sqlite_insert(table).on_conflict_do_nothing(), list(rows))


async def insert_new(
    session: AsyncSession,
    model: type[DeclarativeBase],
    rows: Sequence[dict[str, Any]],
    key: str | tuple[str, ...],
) -> set[Any]:
    """Insert ``rows`` whose key is not there yet, in one statement (``INSERT ... ON
    CONFLICT DO NOTHING RETURNING key``); returns the keys inserted: the ``key`` column's
    values, or tuples of the ``key`` columns' values. A concurrent insert of the same key
    waits for the other transaction, then finds it (not returned) or not (inserted).

    On PostgreSQL the rows go as one array per column through ``unnest``: one statement
    text whatever their number, prepared once per connection, run once per part of at most
    :data:`VALUES_PER_STATEMENT` values; on SQLite, one parameter set per row."""
    if not rows:
        return set()
    table = table_of(model)
    names = (key,) if isinstance(key, str) else key
    inserted: list[tuple[Any, ...]] = []
    if on_postgresql(session):
        statement = _unnest_returning(table, tuple(rows[0]), names)
        for part in _parts(table, rows):
            inserted.extend(await driver.fetch(session, statement, part))
    else:
        statement = (
            sqlite_insert(table)
            .on_conflict_do_nothing()
            .returning(*(table.c[name] for name in names))
        )
        inserted.extend(await session.execute(statement, list(rows)))
    if isinstance(key, str):
        return {value for (value,) in inserted}
    return {tuple(row) for row in inserted}


async def upsert(
    session: AsyncSession,
    model: type[DeclarativeBase],
    rows: Sequence[dict[str, Any]],
    *,
    key: Sequence[str],
) -> None:
    """Insert ``rows``, replacing every non-key column of rows whose ``key`` exists (one
    statement per table, columns and key, built once: its ``excluded`` alias is a cycle of
    objects only the collector frees)."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    statement = _upserting(dialect, table_of(model), tuple(rows[0]), tuple(key))
    await session.execute(statement, list(rows))


CHUNK = 500
"""Keys per ``IN`` list on SQLite."""


async def bulk_upsert(
    session: AsyncSession,
    model: type[DeclarativeBase],
    rows: Sequence[dict[str, Any]],
    *,
    key: Sequence[str],
) -> None:
    """:func:`upsert`, as one prepared statement on PostgreSQL (no two rows may share a key)."""
    if not rows:
        return
    if not on_postgresql(session):
        await upsert(session, model, rows, key=key)
        return
    table = table_of(model)
    statement = _unnest_insert(table, tuple(rows[0]), tuple(key))
    for part in _parts(table, rows):
        await driver.execute(session, statement, part)


async def bulk_add(
    session: AsyncSession,
    model: type[DeclarativeBase],
    rows: Sequence[dict[str, Any]],
    *,
    key: Sequence[str],
    amount: str,
) -> None:
    """Insert ``rows``; a row whose ``key`` exists has its ``amount`` column increased by
    the row's instead (no two rows may share a key). One prepared statement on PostgreSQL."""
    if not rows:
        return
    table = table_of(model)
    if on_postgresql(session):
        statement = _unnest_adding(table, tuple(rows[0]), tuple(key), amount)
        for part in _parts(table, rows):
            await driver.execute(session, statement, part)
        return
    insert = sqlite_insert(table)
    adding = insert.on_conflict_do_update(
        index_elements=list(key), set_={amount: table.c[amount] + insert.excluded[amount]}
    )
    await session.execute(adding, list(rows))


async def bulk_update(
    session: AsyncSession,
    model: type[DeclarativeBase],
    rows: Sequence[dict[str, Any]],
    *,
    key: str,
    keep: Sequence[str] = (),
) -> None:
    """Set each row's other columns on the stored row whose ``key`` column holds the row's
    (no two rows may share a key); a ``None`` in a ``keep`` column keeps the value stored.
    One prepared ``UPDATE ... FROM unnest(...)`` on PostgreSQL, executemany on SQLite."""
    if not rows:
        return
    table = table_of(model)
    names = tuple(rows[0])
    if on_postgresql(session):
        statement = _unnest_update(table, names, key, tuple(keep))
        for part in _parts(table, rows):
            await driver.execute(session, statement, part)
        return
    each = [{f"given_{name}": row[name] for name in names} for row in rows]
    await session.execute(_update_each(table, names, key, tuple(keep)), each)


async def rows_by_keys(
    session: AsyncSession,
    model: type[DeclarativeBase],
    key: Sequence[str],
    keys: Iterable[tuple[Any, ...]],
    columns: Sequence[str],
    *,
    lock: bool = False,
) -> list[Any]:
    """The ``columns`` of the rows whose ``key`` columns are among ``keys``: one query
    joining the arrays of keys on PostgreSQL, ``IN`` lists of :data:`CHUNK` on SQLite. With
    ``lock`` the rows found stay locked until the transaction ends (``FOR UPDATE`` on
    PostgreSQL; SQLite has one writer)."""
    wanted = list(dict.fromkeys(keys))
    if not wanted:
        return []
    table = table_of(model)
    if on_postgresql(session):
        arrays = {
            f"given_{name}": encoded(table.c[name].type, [k[i] for k in wanted])
            for i, name in enumerate(key)
        }
        return await driver.fetch(
            session, _unnest_select(table, tuple(key), tuple(columns), lock), arrays
        )
    found: list[Any] = []
    query = _among_select(table, tuple(key), tuple(columns))
    for start in range(0, len(wanted), CHUNK):
        found.extend(await session.execute(query, {KEYS: wanted[start : start + CHUNK]}))
    return found


async def delete_by_ids(
    session: AsyncSession, model: type[DeclarativeBase], column: str, ids: Sequence[Any]
) -> int:
    """Delete the rows whose ``column`` is among ``ids``; how many. One array parameter on
    PostgreSQL (``= any(...)``), an ``IN`` list on SQLite."""
    if not ids:
        return 0
    table = table_of(model)
    if on_postgresql(session):
        values = {"ids": encoded(table.c[column].type, list(ids))}
        return await driver.execute(session, _delete_any(table, column), values)
    result = await session.execute(delete(table).where(table.c[column].in_(ids)))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


VALUES_PER_STATEMENT = 2_000
"""At most this many values (rows x columns) asyncpg encodes one by one go in one write
statement on PostgreSQL: encoding them holds the event loop (about a microsecond per
value), so a batch's thousand rows go as a few statements of a millisecond or two each.
Values carried as text (:mod:`shared.db.arrays`) are not counted."""


def _parts(table: Table, rows: Sequence[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """The parameters of ``rows`` in consecutive parts of at most
    :data:`VALUES_PER_STATEMENT` values encoded one by one."""
    singly = sum(not carried_as_text(table.c[name].type) for name in rows[0])
    size = max(1, VALUES_PER_STATEMENT // max(1, singly))
    for start in range(0, len(rows), size):
        yield columns(table, rows[start : start + size])


KEYS = "keys"
"""The parameter :func:`among_keys` takes its keys from at execution."""


def among_keys(*columns: Any) -> Any:
    """``(columns) IN :keys``, the key tuples given at execution (``{KEYS: [...]}``): a
    statement built once holds no tuples per call, whose expressions are cycles of objects
    only the garbage collector frees."""
    return tuple_(*columns).in_(bindparam(KEYS, expanding=True))


def on_postgresql(session: AsyncSession) -> bool:
    """Whether the session's bind is PostgreSQL (else SQLite, the embedded database)."""
    return session.get_bind().dialect.name == "postgresql"


def table_of(model: type[DeclarativeBase]) -> Table:
    """The mapped model's :class:`Table` (Core statements and the driver take the table)."""
    return cast(Table, model.__table__)


def _is_json(table: Table, name: str) -> bool:
    return isinstance(table.c[name].type, JSON)


def _as_stored(table: Table, given: Any, name: str) -> Any:
    if _is_json(table, name):
        return sql_cast(given.c[name], table.c[name].type)
    return given.c[name]


def _unnested(table: Table, names: tuple[str, ...]) -> Any:
    """The rows of one array per column (parameters ``given_<column>``: a parameter named
    like a column would be taken for the insert's own value of it)."""
    return (
        func.unnest(*(parameter(f"given_{name}", table.c[name].type) for name in names))
        .table_valued(*(column(name, element_type(table.c[name].type)) for name in names))
        .render_derived("given")
    )


@cache
def _upserting(dialect: str, table: Table, names: tuple[str, ...], key: tuple[str, ...]) -> Any:
    insert = (postgresql_insert if dialect == "postgresql" else sqlite_insert)(table)
    return insert.on_conflict_do_update(
        index_elements=list(key),
        set_={name: insert.excluded[name] for name in names if name not in key},
    )


@cache
def _unnest_insert(table: Table, names: tuple[str, ...], key: tuple[str, ...] | None) -> Any:
    """``INSERT ... SELECT * FROM unnest(<one array per column>) ON CONFLICT``: updating
    the non-key columns for a ``key``, doing nothing without one."""
    statement = _unnest_plain(table, names)
    if key is None:
        return statement.on_conflict_do_nothing()
    return statement.on_conflict_do_update(
        index_elements=list(key),
        set_={name: statement.excluded[name] for name in names if name not in key},
    )


@cache
def _unnest_adding(table: Table, names: tuple[str, ...], key: tuple[str, ...], amount: str) -> Any:
    """:func:`_unnest_plain`, adding ``amount`` to the stored one for a ``key`` there."""
    statement = _unnest_plain(table, names)
    return statement.on_conflict_do_update(
        index_elements=list(key), set_={amount: table.c[amount] + statement.excluded[amount]}
    )


@cache
def _unnest_plain(table: Table, names: tuple[str, ...]) -> Any:
    """``INSERT ... SELECT * FROM unnest(<one array per column>)``."""
    given = _unnested(table, names)
    return postgresql_insert(table).from_select(
        list(names), select(*(_as_stored(table, given, name) for name in names))
    )


@cache
def _unnest_returning(table: Table, names: tuple[str, ...], key: tuple[str, ...]) -> Any:
    """:func:`_unnest_insert` without a key, returning the ``key`` columns of the rows
    inserted."""
    return _unnest_insert(table, names, None).returning(*(table.c[name] for name in key))


@cache
def _unnest_update(table: Table, names: tuple[str, ...], key: str, keep: tuple[str, ...]) -> Any:
    """``UPDATE ... FROM unnest(<one array per column>)`` matching on ``key``."""
    given = _unnested(table, names)
    setting = _setting(table, names, key, keep, lambda name: _as_stored(table, given, name))
    return setting.where(table.c[key] == given.c[key])


@cache
def _update_each(table: Table, names: tuple[str, ...], key: str, keep: tuple[str, ...]) -> Any:
    """An ``UPDATE`` of one row matching on ``key``, its values ``given_<column>``."""

    def given(name: str) -> Any:
        return bindparam(f"given_{name}", type_=table.c[name].type)

    return _setting(table, names, key, keep, given).where(table.c[key] == given(key))


def _setting(
    table: Table,
    names: tuple[str, ...],
    key: str,
    keep: tuple[str, ...],
    given: Callable[[str], Any],
) -> Any:
    """``UPDATE table SET <column> = <given>`` but the ``key``; a ``keep`` column keeps its
    stored value for ``NULL``."""
    return update(table).values(
        {
            name: func.coalesce(given(name), table.c[name]) if name in keep else given(name)
            for name in names
            if name != key
        }
    )


@cache
def _delete_any(table: Table, column: str) -> Any:
    return delete(table).where(table.c[column] == func.any(parameter("ids", table.c[column].type)))


@cache
def _among_select(table: Table, key: tuple[str, ...], columns: tuple[str, ...]) -> Any:
    return select(*(table.c[name] for name in columns)).where(
        among_keys(*(table.c[name] for name in key))
    )


@cache
def _unnest_select(table: Table, key: tuple[str, ...], columns: tuple[str, ...], lock: bool) -> Any:
    given = _unnested(table, key)
    query = select(*(table.c[name] for name in columns)).join_from(
        table, given, and_(*(table.c[name] == given.c[name] for name in key))
    )
    return query.with_for_update(of=table) if lock else query
