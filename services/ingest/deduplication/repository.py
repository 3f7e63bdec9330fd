"""Queries on the published-message ledger. Flushes; the caller commits."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.ingest.deduplication.models import PublishedMessage


class PublishedMessageRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def already_published(self, workspace_id: str, message_ids: Collection[str]) -> set[str]:
        if not message_ids:
            return set()
        query = select(PublishedMessage.message_id).where(
            PublishedMessage.workspace_id == workspace_id,
            PublishedMessage.message_id.in_(message_ids),
        )
        return set((await self._session.scalars(query)).all())

    async def record(self, workspace_id: str, message_ids: Collection[str], at: datetime) -> None:
        """Insert the ids; ids recorded concurrently by another replica are left alone."""
        if not message_ids:
            return
        rows = [
            {"workspace_id": workspace_id, "message_id": m, "published_at": at} for m in message_ids
        ]
        dialect = self._session.get_bind().dialect.name
        insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
        await self._session.execute(insert(PublishedMessage).values(rows).on_conflict_do_nothing())
        await self._session.flush()

    async def forget_before(self, cutoff: datetime) -> int:
        """Drop ids older than the deduplication window; returns how many."""
        result = await self._session.execute(
            delete(PublishedMessage).where(PublishedMessage.published_at < cutoff)
        )
        return int(getattr(result, "rowcount", 0) or 0)
