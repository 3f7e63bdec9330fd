"""Queries on the published-message ledger. The caller commits or rolls back."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import String, bindparam, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import Insert

from services.ingest.deduplication.models import PublishedMessage
from shared.db import driver
from shared.db.statements import on_postgresql, table_of
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


class PublishedMessageRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def claim(
        self, workspace_id: str, message_ids: Collection[str], at: datetime
    ) -> set[str]:
        """Insert the ids that are not in the ledger yet and return them (one statement:
        ``INSERT ... ON CONFLICT DO NOTHING RETURNING message_id``).

        The new rows stay locked until the caller's transaction ends: a concurrent claim
        of the same id waits, then finds it committed (not returned) or rolled back
        (returned to it). Ids are inserted in sorted order so that two requests sharing
        several ids lock them in the same order and cannot deadlock.
        """
        if not message_ids:
            return set()
        ordered = sorted(message_ids)
        if on_postgresql(self._session):
            claimed = await driver.fetch(
                self._session,
                _POSTGRESQL_CLAIM,
                {"workspace_id": workspace_id, "message_ids": ordered, "published_at": at},
            )
            return {message_id for (message_id,) in claimed}
        result = await self._session.execute(
            _SQLITE_CLAIM,
            [{"workspace_id": workspace_id, "message_id": m, "published_at": at} for m in ordered],
        )
        return set(result.scalars().all())

    async def forget_before(self, cutoff: datetime) -> int:
        """Drop ids older than the deduplication window; returns how many."""
        result = await self._session.execute(
            delete(PublishedMessage).where(PublishedMessage.published_at < cutoff)
        )
        return int(getattr(result, "rowcount", 0) or 0)
