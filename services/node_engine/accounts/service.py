"""Reading accounts for operators (state, timeline, funnel) and queuing manual moves."""

from __future__ import annotations

import statistics
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import BigInteger, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.node_engine.accounts.encoding import decode_state
from services.node_engine.accounts.models import (
    AccountStateRow,
    FunnelCountRow,
    TransitionRow,
    completed_on_path,
    on_path,
)
from services.node_engine.core.state import AccountState
from services.node_engine.errors import NodeEngineError
from services.node_engine.timers.repository import request_move
from shared.errors import NotFound

MAX_FUNNEL_SAMPLES = 10_000


class AccountNotOnPath(NodeEngineError, NotFound):
    """The account is not enrolled on that path (nothing to move)."""

    field = "path_id"


@dataclass(frozen=True, slots=True)
class FunnelStep:
    stage: str
    node: str | None
    accounts_now: int
    entered: int
    completed: int
    median_days_in_node: float | None


async def account_states(
    session: AsyncSession, workspace_id: str, account_id: str
) -> list[AccountState]:
    rows = await session.execute(
        select(AccountStateRow.state)
        .where(
            AccountStateRow.workspace_id == workspace_id, AccountStateRow.account_id == account_id
        )
        .order_by(AccountStateRow.path_id)
    )
    return [decode_state(data) for (data,) in rows]


async def timeline(
    session: AsyncSession,
    workspace_id: str,
    account_id: str,
    *,
    path_id: str | None,
    cursor: int | None,
    limit: int,
) -> tuple[list[TransitionRow], int | None]:
    """The account's history, oldest first, from after ``cursor``; and the next cursor."""
    query = select(TransitionRow).where(
        TransitionRow.workspace_id == workspace_id, TransitionRow.account_id == account_id
    )
    if path_id is not None:
        query = query.where(TransitionRow.path_id == path_id)
    if cursor is not None:
        query = query.where(TransitionRow.position > cursor)
    rows = list(
        (await session.execute(query.order_by(TransitionRow.position).limit(limit + 1))).scalars()
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, rows[-1].position if more and rows else None


async def funnel(
    session: AsyncSession, workspace_id: str, path_id: str
) -> tuple[int, list[FunnelStep]]:
    """Accounts per stage and node now, with entries, completions and median time in node."""
    now_rows = await session.execute(
        select(AccountStateRow.stage, AccountStateRow.node, func.count())
        .where(*on_path(workspace_id, path_id))
        .group_by(AccountStateRow.stage, AccountStateRow.node)
    )
    at: dict[tuple[str, str | None], int] = {(s, n): c for s, n, c in now_rows}
    counted = FunnelCountRow
    counts = await session.execute(
        select(counted.stage, counted.node, counted.kind, cast(func.sum(counted.count), BigInteger))
        .where(counted.workspace_id == workspace_id, counted.path_id == path_id)
        .group_by(counted.stage, counted.node, counted.kind)
    )
    entered: dict[tuple[str, str | None], int] = defaultdict(int)
    completed: dict[tuple[str, str | None], int] = defaultdict(int)
    order: dict[tuple[str, str | None], None] = {}
    for stage, node, kind, count in counts:
        key = (stage, node if node and kind != "stage_entered" else None)
        order.setdefault(key)
        (completed if kind == "node_completed" else entered)[key] += count
    durations = await session.execute(
        select(TransitionRow.stage, TransitionRow.node, TransitionRow.payload)
        .where(*completed_on_path(workspace_id, path_id))
        .order_by(TransitionRow.position.desc())
        .limit(MAX_FUNNEL_SAMPLES)
    )
    days: dict[tuple[str, str | None], list[float]] = defaultdict(list)
    for stage, node, payload in durations:
        value = (payload or {}).get("days_in_node")
        if isinstance(value, int | float):
            days[(stage, node)].append(float(value))
    for key in at:
        order.setdefault(key)
    steps = [
        FunnelStep(
            stage,
            node,
            at.get((stage, node), 0),
            entered.get((stage, node), 0),
            completed.get((stage, node), 0),
            statistics.median(days[(stage, node)]) if days.get((stage, node)) else None,
        )
        for stage, node in order
    ]
    return sum(at.values()), steps


async def queue_move(
    session: AsyncSession,
    *,
    workspace_id: str,
    account_id: str,
    path_id: str,
    target: str,
    actor: str,
    note: str | None,
    now: datetime,
) -> str:
    """Queue an audited manual move; the engine member owning the account applies it in
    order with the account's events. Raises :class:`AccountNotOnPath`."""
    move_id = uuid.uuid4().hex
    queued = await request_move(
        session,
        move_id=move_id,
        workspace_id=workspace_id,
        account_id=account_id,
        path_id=path_id,
        target=target,
        actor=actor,
        note=note,
        now=int(now.astimezone(UTC).timestamp()),
    )
    if not queued:
        raise AccountNotOnPath(f"account {account_id!r} is not on path {path_id!r}")
    return move_id
