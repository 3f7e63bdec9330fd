"""Queries on memberships. Flushes, never commits."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.attribution.models import MembershipRow
from shared.db.statements import KEYS, among_keys, bulk_upsert
from shared.identity import Membership

UserKey = tuple[str, str]
"""(workspace id, user id)."""
CHUNK = 500


_BY_USER = select(MembershipRow).where(
    among_keys(MembershipRow.workspace_id, MembershipRow.user_id)
)


async def load_memberships(
    session: AsyncSession, keys: Iterable[UserKey]
) -> dict[UserKey, Membership]:
    """The known memberships of these users (an unknown user is left out)."""
    found: dict[UserKey, Membership] = {}
    wanted = list(dict.fromkeys(keys))
    for start in range(0, len(wanted), CHUNK):
        rows = await session.scalars(_BY_USER, {KEYS: wanted[start : start + CHUNK]})
        for row in rows:
            found[(row.workspace_id, row.user_id)] = Membership(
                row.account_id, frozenset(row.roles)
            )
    return found


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
        key=("workspace_id", "user_id"),
    )
