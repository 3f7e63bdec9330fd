"""Queries on memberships. Flushes, never commits."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from shared.attribution.models import MembershipRow
from shared.db.statements import bulk_upsert, rows_by_keys
from shared.identity import Membership

UserKey = tuple[str, str]
"""(workspace id, user id)."""

_KEY = ("workspace_id", "user_id")


async def load_memberships(
    session: AsyncSession, keys: Iterable[UserKey]
) -> dict[UserKey, Membership]:
    """The known memberships of these users (an unknown user is left out), read in one
    query on PostgreSQL as rows, not as mapped objects."""
    rows = await rows_by_keys(
        session, MembershipRow, _KEY, keys, ("workspace_id", "user_id", "account_id", "roles")
    )
    return {
        (workspace_id, user_id): Membership(account_id, frozenset(roles))
        for workspace_id, user_id, account_id, roles in rows
    }


async def save_memberships(
    session: AsyncSession, memberships: Mapping[UserKey, Membership], *, now: datetime
) -> None:
    """Store these memberships, replacing what was known of their users."""
    await bulk_upsert(
        session,
        MembershipRow,
        [
            {
                "workspace_id": workspace,
                "user_id": user,
                "account_id": m.account_id,
                "roles": sorted(m.roles),
                "updated_at": now,
            }
            for (workspace, user), m in memberships.items()
        ],
        key=_KEY,
    )
