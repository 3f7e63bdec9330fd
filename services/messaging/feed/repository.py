"""Every query on feed items. Flushes; never commits."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.messaging.feed.models import FeedItemRow
from shared.db.statements import insert_ignoring_duplicates


async def add_item(
    session: AsyncSession,
    *,
    delivery_id: str,
    workspace_id: str,
    user_id: str,
    subject: str,
    body: str,
    category: str,
    created_at: datetime,
) -> None:
    """Add the delivery's item; a delivery already in the feed is left as it is."""
    await insert_ignoring_duplicates(
        session,
        FeedItemRow,
        [
            {
                "delivery_id": delivery_id,
                "workspace_id": workspace_id,
                "user_id": user_id,
                "subject": subject,
                "body": body,
                "category": category,
                "created_at": created_at,
                "read_at": None,
            }
        ],
    )


async def page(
    session: AsyncSession,
    workspace_id: str,
    user_id: str,
    *,
    before: int | None,
    unread_only: bool,
    limit: int,
) -> list[FeedItemRow]:
    """Newest first, from before ``before`` (a ``seq``)."""
    query = select(FeedItemRow).where(
        FeedItemRow.workspace_id == workspace_id, FeedItemRow.user_id == user_id
    )
    if before is not None:
        query = query.where(FeedItemRow.seq < before)
    if unread_only:
        query = query.where(FeedItemRow.read_at.is_(None))
    return list(await session.scalars(query.order_by(FeedItemRow.seq.desc()).limit(limit)))


async def unread_count(session: AsyncSession, workspace_id: str, user_id: str) -> int:
    count = await session.scalar(
        select(func.count()).where(
            FeedItemRow.workspace_id == workspace_id,
            FeedItemRow.user_id == user_id,
            FeedItemRow.read_at.is_(None),
        )
    )
    return int(count or 0)


async def mark_read(
    session: AsyncSession,
    workspace_id: str,
    user_id: str,
    *,
    seqs: list[int] | None,
    up_to: int | None,
    at: datetime,
) -> int:
    """Mark the user's items read: those in ``seqs``, or every one up to ``up_to``
    (inclusive); returns how many changed."""
    statement = update(FeedItemRow).where(
        FeedItemRow.workspace_id == workspace_id,
        FeedItemRow.user_id == user_id,
        FeedItemRow.read_at.is_(None),
    )
    if seqs is not None:
        statement = statement.where(FeedItemRow.seq.in_(seqs))
    if up_to is not None:
        statement = statement.where(FeedItemRow.seq <= up_to)
    result = await session.execute(
        statement.values(read_at=at).execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
