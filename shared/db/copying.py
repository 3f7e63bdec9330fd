"""Appending rows with PostgreSQL's binary ``COPY``, through the session's asyncpg
connection (:mod:`shared.db.driver`).

``COPY`` has no statement to parse or plan and no arrays to build: the driver encodes
each row straight into the copy stream, which costs both sides a fraction of an
``INSERT ... SELECT FROM unnest(...)``. The rows reach the driver one by one, and the event
loop runs every slice between them (the driver encodes them as they come), so a
batch's thousands of rows hold it no longer than a statement's parts would. ``COPY`` has no
``ON CONFLICT``, so it suits tables whose rows cannot repeat. It runs in the session's
transaction; SQLite inserts the rows as one executemany
(:func:`~shared.db.statements.insert_rows`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from sqlalchemy import JSON, Dialect, Table, TypeDecorator
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase

from shared.db.arrays import json_text
from shared.db.driver import in_transaction, translated
from shared.db.statements import insert_rows, on_postgresql, table_of
from shared.slicing import Slicer


async def copy_rows(
    session: AsyncSession,
    model: type[DeclarativeBase],
    names: tuple[str, ...],
    rows: Sequence[tuple[Any, ...]],
) -> None:
    """Insert ``rows``, each the values of the columns ``names`` in that order, in the
    session's transaction (tuples: a row costs no dictionary to build and none to read).

    A key the table already holds fails the transaction with :class:`IntegrityError`,
    and any other refusal with :class:`DBAPIError`, as a statement's would."""
    if not rows:
        return
    if not on_postgresql(session):
        await insert_rows(session, model, [dict(zip(names, row, strict=True)) for row in rows])
        return
    table = table_of(model)
    records = _records(table, names, rows, session.get_bind().dialect)
    connection = await in_transaction(session)
    with translated(f"COPY {table.name}"):
        await connection.copy_records_to_table(table.name, records=records, columns=names)


async def _records(
    table: Table, names: tuple[str, ...], rows: Sequence[tuple[Any, ...]], dialect: Dialect
) -> AsyncIterator[tuple[Any, ...]]:
    """The rows as the driver encodes them (JSON as its text, and a decorated type's value
    as it binds), letting the event loop run every :data:`~shared.slicing.SLICE_S`."""
    converted = [
        (place, convert)
        for place, convert in enumerate(_converter(table, name, dialect) for name in names)
        if convert is not None
    ]
    slicer = Slicer()
    for row in rows:
        if converted:
            values = list(row)
            for place, convert in converted:
                values[place] = convert(values[place])
            row = tuple(values)
        yield row
        await slicer.pause()


def _converter(table: Table, name: str, dialect: Dialect) -> Any:
    stored = table.c[name].type
    if isinstance(stored, JSON):
        return lambda value: json_text(stored, value)
    if isinstance(stored, TypeDecorator):
        return lambda value: stored.process_bind_param(value, dialect)
    return None
