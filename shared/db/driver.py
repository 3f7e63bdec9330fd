"""Statements run on the session's own asyncpg connection, in the session's transaction
(the asyncpg adapter of :mod:`shared.db`, PostgreSQL only).

A Core statement executed through the session costs the client about 100 µs of CPU beyond
the driver's own work (the session's execution, the compiled cache's key, the execution
context and cursor, the result), measured against the same prepared statement run by
asyncpg alone: about as much as the round trip itself. The stream runtime's checkpoints
run a dozen such statements per step, so at the pipeline's small batches those costs were
a large part of every stage's CPU. :func:`fetch` and :func:`execute` compile a statement
once (its text, its parameters' order and their bind processors) and hand it to the
driver, which prepares it once per connection.

They run in the session's transaction, begun as SQLAlchemy begins it (the adapter's own
``BEGIN``), so the session's commit or rollback ends their work with its own, and a
driver error surfaces as the :class:`~sqlalchemy.exc.DBAPIError` (or
:class:`~sqlalchemy.exc.IntegrityError`) a statement through the session raises.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, cast

import asyncpg
from sqlalchemy import Dialect
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import SessionTransaction
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.types import TypeEngine

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True, slots=True)
class DriverStatement:
    """A statement as the driver takes it: its text, per positional parameter its name
    and bind processor, the values it holds itself (its literals, as ``attempts + 1``),
    and the types of the columns it returns (as the dialect reads them)."""

    sql: str
    parameters: tuple[tuple[str, Processor], ...]
    fixed: Mapping[str, Any]
    returns: tuple[TypeEngine[Any], ...]

    def arguments(self, given: Mapping[str, Any]) -> list[Any]:
        values = {**self.fixed, **given} if self.fixed else given
        return [
            value if process is None or value is None else process(value)
            for name, process in self.parameters
            for value in (values[name],)
        ]


@cache
def for_driver(statement: ClauseElement, dialect: Dialect) -> DriverStatement:
    """``statement`` compiled for ``dialect`` once (statements are built once, so this
    cache holds one entry per statement the process runs). The returned columns are read
    from the compiled statement's result map, as the session reads them: a statement's
    ``exported_columns`` can be stale after ``returning()`` on a statement already asked."""
    done = cast(SQLCompiler, statement.compile(dialect=dialect))
    binds = {name: done.binds[name] for name in done.positiontup or ()}
    parameters = tuple(
        (name, bind.type.dialect_impl(dialect).bind_processor(dialect))
        for name, bind in binds.items()
    )
    fixed = {name: bind.effective_value for name, bind in binds.items() if not bind.required}
    returned = tuple(entry.type.dialect_impl(dialect) for entry in done._result_columns)
    return DriverStatement(done.string, parameters, fixed, returned)


_PROCESSORS: dict[str, tuple[Processor, ...]] = {}
"""Per statement text, the result processor of each column it returns."""


async def _processors(
    driver: Any, ready: DriverStatement, dialect: Dialect
) -> tuple[Processor, ...]:
    """The result processors of ``ready``'s columns, as SQLAlchemy picks them: by the
    column's type and the type the server returns (learned once, from the statement
    prepared)."""
    known = _PROCESSORS.get(ready.sql)
    if known is None:
        prepared = await driver.prepare(ready.sql)
        oids = [attribute.type.oid for attribute in prepared.get_attributes()]
        known = tuple(
            stored.result_processor(dialect, oid)
            for stored, oid in zip(ready.returns, oids, strict=True)
        )
        _PROCESSORS[ready.sql] = known
    return known


async def fetch(
    session: AsyncSession, statement: ClauseElement, values: Mapping[str, Any]
) -> list[tuple[Any, ...]]:
    """The rows ``statement`` returns, run with ``values`` in the session's transaction,
    each value as the session would return it."""
    driver = await in_transaction(session)
    dialect = session.get_bind().dialect
    ready = for_driver(statement, dialect)
    with translated(ready.sql):
        processors = await _processors(driver, ready, dialect)
        records = await driver.fetch(ready.sql, *ready.arguments(values))
    if not any(processors):
        return [tuple(record) for record in records]
    return [
        tuple(
            value if process is None or value is None else process(value)
            for value, process in zip(record, processors, strict=True)
        )
        for record in records
    ]


async def execute(
    session: AsyncSession, statement: ClauseElement, values: Mapping[str, Any]
) -> int:
    """Run ``statement`` with ``values`` in the session's transaction; the rows it
    changed."""
    driver = await in_transaction(session)
    ready = for_driver(statement, session.get_bind().dialect)
    with translated(ready.sql):
        status: str = await driver.execute(ready.sql, *ready.arguments(values))
    count = status.rpartition(" ")[2]
    return int(count) if count.isdigit() else 0


async def in_transaction(session: AsyncSession) -> Any:
    """The session's asyncpg connection, inside the session's transaction: begun by the
    adapter, as the session's first statement would, so its commit and rollback end it.
    Kept for the rest of that transaction (finding it again costs more than a tenth of a
    statement)."""
    held = session.info.get(_HELD)
    current = session.sync_session.get_transaction()
    if held is not None and current is not None and held[0]() is current:
        return held[1]
    connection = await (await session.connection()).get_raw_connection()
    adapter: Any = connection.dbapi_connection
    if adapter._transaction is None:
        await adapter._start_transaction()
    transaction = weakref.ref(cast(SessionTransaction, session.sync_session.get_transaction()))
    session.info[_HELD] = (transaction, connection.driver_connection)
    return connection.driver_connection


_HELD = "shared.db.driver.held"
"""The key of ``(the session's transaction, its asyncpg connection)`` in ``session.info``.
The transaction is held by a weak reference: the transaction refers to the session, so a
strong one would make every session a cycle only the garbage collector frees."""


@contextlib.contextmanager
def translated(what: str) -> Iterator[None]:
    """The driver's errors as SQLAlchemy's: a violated constraint as
    :class:`IntegrityError`, any other refusal or a lost connection as
    :class:`DBAPIError`."""
    try:
        yield
    except asyncpg.IntegrityConstraintViolationError as exc:
        raise IntegrityError(what, None, exc) from exc
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
        raise DBAPIError(what, None, exc) from exc
