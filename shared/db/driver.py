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
Where a transaction needs no session at all, :class:`PooledTransaction` runs it on a
pooled connection alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, cast

import asyncpg
from asyncpg.transaction import Transaction as AsyncpgTransaction
from sqlalchemy import Dialect
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import SessionTransaction
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.types import TypeEngine
from sqlalchemy.util import greenlet_spawn

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
        return await _fetched(driver, ready, values, dialect)


async def _fetched(
    driver: Any, ready: DriverStatement, values: Mapping[str, Any], dialect: Dialect
) -> list[tuple[Any, ...]]:
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


class PooledTransaction:
    """A transaction on a connection of ``engine``'s pool, run by the driver alone: for a
    request's few statements, where a session's own work (its transaction's and the
    connection's bookkeeping, the switches into and out of its greenlet) cost about 0.45 ms
    of CPU per transaction here, as much as the three round trips themselves.

    The first statement takes a connection and begins; :meth:`commit` commits;
    :meth:`close` rolls back what was not committed and gives the connection back, or
    discards it when it failed. A connection found lost (a server restart, a dropped
    network) discards every connection the pool opened before it too, as a session's
    statement does. Errors are raised as the session's (:func:`translated`). PostgreSQL
    only."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._pooled: PoolProxiedConnection | None = None
        self._transaction: AsyncpgTransaction | None = None
        self._broken = False
        self._lost = False

    async def fetch(
        self, statement: ClauseElement, values: Mapping[str, Any]
    ) -> list[tuple[Any, ...]]:
        """The rows ``statement`` returns, run with ``values`` in this transaction."""
        driver = await self._begun()
        dialect = self._engine.dialect
        ready = for_driver(statement, dialect)
        with self._watched(ready.sql):
            return await _fetched(driver, ready, values, dialect)

    async def commit(self) -> None:
        transaction, self._transaction = self._transaction, None
        if transaction is not None:
            with self._watched("COMMIT"):
                await transaction.commit()

    async def close(self) -> None:
        pooled, self._pooled = self._pooled, None
        transaction, self._transaction = self._transaction, None
        if pooled is None:
            return
        try:
            if transaction is not None and not self._broken:
                with contextlib.suppress(DBAPIError), self._watched("ROLLBACK"):
                    await transaction.rollback()
        finally:
            await greenlet_spawn(self._release, pooled)

    def _release(self, pooled: PoolProxiedConnection) -> None:
        if self._lost or cast(asyncpg.Connection, pooled.driver_connection).is_closed():
            self._engine.sync_engine.pool._invalidate(pooled)
        elif self._broken:
            pooled.invalidate()
        else:
            pooled.close()

    async def _begun(self) -> Any:
        if self._pooled is None:
            self._pooled = await self._engine.raw_connection()
        driver: Any = self._pooled.driver_connection
        if self._transaction is None:
            transaction = driver.transaction()
            with self._watched("BEGIN"):
                await transaction.start()
            self._transaction = transaction
        return driver

    @contextlib.contextmanager
    def _watched(self, what: str) -> Iterator[None]:
        """:func:`translated`, noting a failure that is not a statement's refusal (a lost
        connection, a rollback that failed, a statement cancelled midway): the connection
        is then discarded, not given back."""
        try:
            with translated(what):
                yield
        except DBAPIError as exc:
            refused = isinstance(exc.orig, asyncpg.PostgresError) and what != "ROLLBACK"
            self._broken = self._broken or not refused
            self._lost = self._lost or isinstance(exc.orig, _LOST)
            raise
        except asyncio.CancelledError:
            self._broken = True
            raise


_LOST = (OSError, asyncpg.PostgresConnectionError, asyncpg.InternalClientError)
"""The driver's errors that say the connection is gone (or its protocol out of step)."""


@contextlib.contextmanager
def translated(what: str) -> Iterator[None]:
    """The driver's errors as SQLAlchemy's: a violated constraint as
    :class:`IntegrityError`, any other refusal, a lost connection or a protocol left out of
    step by one as :class:`DBAPIError`."""
    try:
        yield
    except asyncpg.IntegrityConstraintViolationError as exc:
        raise IntegrityError(what, None, exc) from exc
    except (
        asyncpg.PostgresError,
        asyncpg.InterfaceError,
        asyncpg.InternalClientError,
        OSError,
    ) as exc:
        raise DBAPIError(what, None, exc) from exc
