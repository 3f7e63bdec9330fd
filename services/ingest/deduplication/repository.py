"""The published-message ledger: claims of a request's ids, each in a transaction of its
own that the caller commits or closes, and the removal of expired ids."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from datetime import datetime
from functools import partial
from typing import Protocol

from sqlalchemy import String, bindparam, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.sql.dml import Insert

from services.ingest.deduplication.models import PublishedMessage
from shared.db.driver import PooledTransaction
from shared.db.engine import create_session_factory
from shared.db.statements import table_of
from shared.db.types import UtcDateTime

_TABLE = table_of(PublishedMessage)


def _postgresql_claim() -> Insert:
    """``INSERT ... SELECT ... FROM unnest(:message_ids) ON CONFLICT DO NOTHING RETURNING``:
    one statement text whatever the number of ids, compiled once and prepared once per
    connection (:mod:`shared.db.driver`), with the ids sent as one array parameter."""
    ids = (
        func.unnest(bindparam("message_ids", type_=postgresql.ARRAY(String())))
        .table_valued("message_id")
        .render_derived()
    )
    rows = select(
        bindparam("workspace_id", type_=String()),
        ids.c.message_id,
        bindparam("published_at", type_=UtcDateTime()),
    )
    return (
        postgresql.insert(_TABLE)
        .from_select(["workspace_id", "message_id", "published_at"], rows)
        .on_conflict_do_nothing()
        .returning(_TABLE.c.message_id)
    )


_POSTGRESQL_CLAIM = _postgresql_claim()
_SQLITE_CLAIM = sqlite.insert(_TABLE).on_conflict_do_nothing().returning(_TABLE.c.message_id)
"""Executed with one parameter set per id (``insertmanyvalues``); SQLite >= 3.35."""


class _Transaction(Protocol):
    """What a claim runs in: a :class:`PooledTransaction` or a session."""

    async def commit(self) -> None: ...

    async def close(self) -> None: ...


_Insert = Callable[[str, list[str], datetime], Awaitable[set[str]]]
"""Inserts a workspace's ids (sorted) published at a time; returns those that were new."""


class LedgerClaim:
    """One request's claim on the ledger, in a transaction of its own: the ids it finds new
    stay locked until :meth:`commit` records them, or :meth:`close` without a commit gives
    them back. Errors are SQLAlchemy's."""

    def __init__(self, transaction: _Transaction, insert: _Insert) -> None:
        self._transaction = transaction
        self._insert = insert

    async def claim(
        self, workspace_id: str, message_ids: Collection[str], at: datetime
    ) -> set[str]:
        """Insert the ids that are not in the ledger yet and return them (one statement:
        ``INSERT ... ON CONFLICT DO NOTHING RETURNING message_id``). A concurrent claim of
        an id waits, then finds it committed (not returned) or given back (returned to
        it). Ids are inserted in sorted order, so two requests sharing several ids lock
        them in the same order and cannot deadlock."""
        if not message_ids:
            return set()
        return await self._insert(workspace_id, sorted(message_ids), at)

    async def commit(self) -> None:
        await self._transaction.commit()

    async def close(self) -> None:
        await self._transaction.close()


async def _insert_on_postgresql(
    transaction: PooledTransaction, workspace_id: str, message_ids: list[str], at: datetime
) -> set[str]:
    """On a pooled connection's driver, without a session: a request's claim is three
    round trips, and a session's own work cost as much again."""
    claimed = await transaction.fetch(
        _POSTGRESQL_CLAIM,
        {"workspace_id": workspace_id, "message_ids": message_ids, "published_at": at},
    )
    return {message_id for (message_id,) in claimed}


async def _insert_on_sqlite(
    session: AsyncSession, workspace_id: str, message_ids: list[str], at: datetime
) -> set[str]:
    """In a session (the embedded database, one writer at a time)."""
    result = await session.execute(
        _SQLITE_CLAIM,
        [{"workspace_id": workspace_id, "message_id": m, "published_at": at} for m in message_ids],
    )
    return set(result.scalars().all())


class PublishedMessageLedger:
    """The ledger in ``engine``'s database: a claim per request, and its maintenance."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._sessions = create_session_factory(engine)
        self._on_postgresql = engine.dialect.name == "postgresql"

    def open_claim(self) -> LedgerClaim:
        """A claim in a transaction of its own; nothing is taken from the pool until it
        claims."""
        if self._on_postgresql:
            transaction = PooledTransaction(self._engine)
            return LedgerClaim(transaction, partial(_insert_on_postgresql, transaction))
        session = self._sessions()
        return LedgerClaim(session, partial(_insert_on_sqlite, session))

    async def forget_before(self, cutoff: datetime) -> int:
        """Drop ids published before ``cutoff`` (a maintenance entry point: it commits);
        returns how many."""
        async with self._sessions() as session:
            result = await session.execute(
                delete(PublishedMessage).where(PublishedMessage.published_at < cutoff)
            )
            await session.commit()
        return int(getattr(result, "rowcount", 0) or 0)
