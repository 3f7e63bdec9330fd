"""Queries on account states, their history and memberships. Repositories flush, never commit."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from services.node_engine.accounts.models import (
    AccountFactsRow,
    AccountStateRow,
    MembershipRow,
    TransitionRow,
)
from services.node_engine.core.state import AccountState, Transition
from shared.db.statements import (
    bulk_upsert,
    insert_ignoring_duplicates,
    rows_by_keys,
)
from shared.identity import Membership

StateKey = tuple[str, str, str]
"""(workspace id, account id, path id)."""
UserKey = tuple[str, str]
"""(workspace id, user id)."""
AccountKey = tuple[str, str]
"""(workspace id, account id)."""
CHUNK = 500


async def load_states(session: AsyncSession, keys: Iterable[StateKey]) -> dict[StateKey, bytes]:
    """The stored states among ``keys``, encoded (:func:`decode_state` reads them); absent
    keys are not in the result. One query for the whole batch."""
    rows = await rows_by_keys(
        session,
        AccountStateRow,
        ("workspace_id", "account_id", "path_id"),
        keys,
        ("workspace_id", "account_id", "path_id", "state"),
    )
    return {(workspace, account, path): data for workspace, account, path, data in rows}


async def save_states(
    session: AsyncSession, states: Sequence[tuple[AccountState, bytes]], *, now: datetime
) -> None:
    """Store states with their encoding (:func:`encode_state`)."""
    await bulk_upsert(
        session,
        AccountStateRow,
        [
            {
                "workspace_id": s.workspace_id,
                "account_id": s.account_id,
                "path_id": s.path_id,
                "path_version": s.path_version,
                "stage": s.stage,
                "node": s.node,
                "tier": s.tier,
                "last_error": s.last_error,
                "state": data,
                "updated_at": now,
            }
            for s, data in states
        ],
        key=("workspace_id", "account_id", "path_id"),
    )


async def append_transitions(
    session: AsyncSession, entries: Sequence[tuple[AccountState, Transition]]
) -> None:
    """Append to the history; a transition already recorded (same id) is not repeated."""
    await insert_ignoring_duplicates(
        session,
        TransitionRow,
        [
            {
                "transition_id": t.id,
                "workspace_id": s.workspace_id,
                "account_id": s.account_id,
                "path_id": s.path_id,
                "path_version": s.path_version,
                "kind": t.kind.value,
                "stage": t.stage,
                "node": t.node,
                "reason": t.reason,
                "cause_id": t.cause_id,
                "target_roles": list(t.target_roles),
                "payload": dict(t.payload),
                "occurred_at": datetime.fromtimestamp(t.occurred_at, UTC),
            }
            for s, t in entries
        ],
    )


async def load_memberships(
    session: AsyncSession, keys: Iterable[UserKey]
) -> dict[UserKey, Membership]:
    found: dict[UserKey, Membership] = {}
    wanted = list(dict.fromkeys(keys))
    columns = tuple_(MembershipRow.workspace_id, MembershipRow.user_id)
    for start in range(0, len(wanted), CHUNK):
        rows = await session.execute(
            select(MembershipRow).where(columns.in_(wanted[start : start + CHUNK]))
        )
        for row in rows.scalars():
            found[(row.workspace_id, row.user_id)] = Membership(
                row.account_id, frozenset(row.roles)
            )
    return found


async def save_memberships(
    session: AsyncSession, memberships: dict[UserKey, Membership], *, now: datetime
) -> None:
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


async def load_facts(
    session: AsyncSession, keys: Iterable[AccountKey]
) -> dict[AccountKey, dict[str, Any]]:
    """The stored facts of the accounts among ``keys`` (absent: none stored); one query."""
    rows = await rows_by_keys(
        session,
        AccountFactsRow,
        ("workspace_id", "account_id"),
        keys,
        ("workspace_id", "account_id", "facts"),
    )
    return {(workspace, account): facts for workspace, account, facts in rows}


async def save_facts(
    session: AsyncSession, facts: dict[AccountKey, dict[str, Any]], *, now: datetime
) -> None:
    await bulk_upsert(
        session,
        AccountFactsRow,
        [
            {"workspace_id": w, "account_id": a, "facts": values, "updated_at": now}
            for (w, a), values in facts.items()
        ],
        key=("workspace_id", "account_id"),
    )
