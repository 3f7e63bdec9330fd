"""Queries on scoring accounts and their history. Repositories flush, never
commit."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.accounts.models import (
    ScoreHistoryRow,
    ScoringAccountRow,
)
from shared.contracts.scores import ScoreRecord
from shared.db.statements import (
    bulk_upsert,
    insert_ignoring_duplicates,
    rows_by_keys,
)
from shared.errors import PartitionMoved

AccountKey = tuple[str, str]
"""(workspace id, account id)."""
_KEY = ("workspace_id", "account_id")
"""The columns of an :data:`AccountKey`."""


class AccountMoved(PartitionMoved):
    """Another group member wrote an account since it was loaded (the batch is retried)."""


@dataclass(frozen=True, slots=True)
class StoredAccount:
    """An account's stored state: the encoded metric store and the rest as stored."""

    revision: int
    partition: int
    metrics: bytes
    facts: dict[str, Any]
    health: float | None
    band: str | None
    risk: dict[str, Any] | None
    tier: str | None
    peers: dict[str, Any] | None


async def load_accounts(
    session: AsyncSession, keys: Iterable[AccountKey]
) -> dict[AccountKey, StoredAccount]:
    """The stored accounts among ``keys``; absent keys are not in the result. One query."""
    rows = await rows_by_keys(session, ScoringAccountRow, _KEY, keys, _STORED)
    return {(workspace, account): StoredAccount(*rest) for workspace, account, *rest in rows}


_STORED = (
    "workspace_id",
    "account_id",
    "revision",
    "partition",
    "metrics",
    "facts",
    "health",
    "band",
    "risk",
    "tier",
    "peers",
)


async def peer_standings(session: AsyncSession) -> list[tuple[str, dict[str, Any]]]:
    """(workspace id, stored peers) of every account contributing to peer distributions."""
    row = ScoringAccountRow
    query = select(row.workspace_id, row.peers)
    return [(workspace, peers) for workspace, peers in await session.execute(query) if peers]


async def contract_facts(
    session: AsyncSession, workspace_id: str
) -> list[tuple[str, dict[str, Any]]]:
    """(account id, stored facts) of the workspace's accounts with a contract value."""
    row = ScoringAccountRow
    query = select(row.account_id, row.facts).where(
        row.workspace_id == workspace_id, row.contract_value.is_not(None)
    )
    return [(account, facts) for account, facts in await session.execute(query)]


async def due_for_sweep(
    session: AsyncSession, partitions: Collection[int], *, before: datetime, limit: int
) -> list[AccountKey]:
    """Accounts of ``partitions`` last scored before ``before``, the oldest first."""
    if not partitions:
        return []
    row = ScoringAccountRow
    query = (
        select(row.workspace_id, row.account_id)
        .where(row.partition.in_(sorted(partitions)), row.evaluated_at < before)
        .order_by(row.evaluated_at)
        .limit(limit)
    )
    return [(workspace, account) for workspace, account in await session.execute(query)]


async def save_accounts(
    session: AsyncSession,
    rows: Sequence[dict[str, Any]],
    expected: Mapping[AccountKey, int | None],
) -> None:
    """Store account rows (every column), fenced: each account's stored revision must still
    be ``expected`` (``None``: not stored); otherwise :class:`AccountMoved`. The rows are
    locked until the transaction ends (on PostgreSQL; SQLite has one writer)."""
    found = await rows_by_keys(
        session, ScoringAccountRow, _KEY, expected, (*_KEY, "revision"), lock=True
    )
    stored: dict[AccountKey, int] = {
        (workspace, account): revision for workspace, account, revision in found
    }
    for key, wanted_revision in expected.items():
        if stored.get(key) != wanted_revision:
            raise AccountMoved(f"account {key[1]!r} was written by another member")
    await bulk_upsert(session, ScoringAccountRow, rows, key=_KEY)


async def append_history(session: AsyncSession, events: Sequence[ScoreRecord]) -> None:
    """Add score events to their accounts' history (an id already there is left alone)."""
    await insert_ignoring_duplicates(
        session,
        ScoreHistoryRow,
        [
            {
                "score_event_id": e.score_event_id,
                "workspace_id": e.workspace_id,
                "account_id": e.account_id,
                "kind": e.kind.value,
                "health": e.health,
                "risk_level": None if e.risk_level is None else e.risk_level.value,
                "tier": e.tier,
                "signals": list(e.signals),
                "explanation": e.explanation,
                "occurred_at": e.occurred_at,
            }
            for e in events
        ],
    )


async def account(
    session: AsyncSession, workspace_id: str, account_id: str
) -> ScoringAccountRow | None:
    return await session.get(ScoringAccountRow, (workspace_id, account_id))


async def page_of_history(
    session: AsyncSession, workspace_id: str, account_id: str, *, before: int | None, limit: int
) -> Sequence[ScoreHistoryRow]:
    """Up to ``limit`` score events of the account, newest first, below position ``before``."""
    row = ScoreHistoryRow
    query = select(row).where(row.workspace_id == workspace_id, row.account_id == account_id)
    if before is not None:
        query = query.where(row.position < before)
    return (await session.scalars(query.order_by(row.position.desc()).limit(limit))).all()


async def distribution(
    session: AsyncSession, workspace_id: str
) -> list[tuple[str | None, str | None, str | None, int, float | None, float | None]]:
    """Per (tier, risk level, band): accounts, mean health and the North Star's total."""
    row = ScoringAccountRow
    query = (
        select(
            row.tier,
            row.risk_level,
            row.band,
            func.count(),
            func.avg(row.health),
            func.sum(row.north_star),
        )
        .where(row.workspace_id == workspace_id)
        .group_by(row.tier, row.risk_level, row.band)
    )
    return [
        (tier, risk, band, int(count), avg, total)
        for tier, risk, band, count, avg, total in await session.execute(query)
    ]


async def page_of_accounts(
    session: AsyncSession,
    workspace_id: str,
    *,
    risk_level: str | None,
    after: str | None,
    limit: int,
) -> Sequence[ScoringAccountRow]:
    """Up to ``limit`` accounts by id after ``after``, optionally at one risk level."""
    row = ScoringAccountRow
    query = select(row).where(row.workspace_id == workspace_id)
    if risk_level is not None:
        query = query.where(row.risk_level == risk_level)
    if after is not None:
        query = query.where(row.account_id > after)
    return (await session.scalars(query.order_by(row.account_id).limit(limit))).all()
