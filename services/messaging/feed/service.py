"""The in-app feed a product polls for one of its users."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.messaging.feed import repository
from services.messaging.feed.models import FeedItemRow


@dataclass(frozen=True, slots=True)
class FeedPage:
    items: list[FeedItemRow]
    next_cursor: int | None
    unread: int


async def read_feed(
    session: AsyncSession,
    workspace_id: str,
    user_id: str,
    *,
    cursor: int | None,
    unread_only: bool,
    limit: int,
) -> FeedPage:
    """A page of the user's items, newest first; the cursor is the last item's ``seq``."""
    rows = await repository.page(
        session, workspace_id, user_id, before=cursor, unread_only=unread_only, limit=limit + 1
    )
    next_cursor = rows[limit - 1].seq if len(rows) > limit else None
    unread = await repository.unread_count(session, workspace_id, user_id)
    return FeedPage(rows[:limit], next_cursor, unread)


async def mark_read(
    session: AsyncSession,
    workspace_id: str,
    user_id: str,
    *,
    seqs: list[int] | None,
    up_to: int | None,
    now: datetime,
) -> int:
    return await repository.mark_read(
        session, workspace_id, user_id, seqs=seqs, up_to=up_to, at=now
    )
