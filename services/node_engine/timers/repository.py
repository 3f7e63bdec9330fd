"""Queries on durable timers. One index, (partition, due_at), serves every lookup, so a
million pending timers cost a range scan of the ones due, not a scan of all."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.node_engine.core.state import ManualMove, Timer, TimerKind
from services.node_engine.timers.models import TimerRow
from shared.db.statements import delete_by_ids, insert_ignoring_duplicates
from shared.slicing import Slicer

MOVE = "move"
"""The kind of a row that carries an operator's manual move: it is applied by the engine
member that owns the account, in order with the account's events."""


@dataclass(frozen=True, slots=True)
class DueTimer:
    """A timer that is due, with the account it belongs to; or a manual move."""

    workspace_id: str
    account_id: str
    partition: int
    timer: Timer
    move: ManualMove | None = None


async def schedule(session: AsyncSession, timers: Sequence[tuple[str, str, int, Timer]]) -> None:
    """Store ``(workspace, account, partition, timer)`` (one statement); a timer id already
    stored stays. The event loop runs while the rows are built
    (:class:`~shared.slicing.Slicer`)."""
    rows: list[dict[str, object]] = []
    slicer = Slicer()
    for workspace, account, partition, t in timers:
        await slicer.pause()
        rows.append(
            {
                "timer_id": t.id,
                "partition": partition,
                "due_at": t.due_at,
                "workspace_id": workspace,
                "account_id": account,
                "path_id": t.path_id,
                "path_version": t.path_version,
                "kind": t.kind.value,
                "node": t.node,
                "visit": t.visit,
                "level": t.level,
            }
        )
    await insert_ignoring_duplicates(session, TimerRow, rows)


async def due(
    session: AsyncSession,
    partitions: Collection[int],
    *,
    now: int,
    limit: int,
    fired: Collection[str] = (),
) -> list[DueTimer]:
    """Timers of ``partitions`` due at or before ``now``, the earliest first, less those
    among ``fired`` (fired by a transaction not committed yet, which deletes them)."""
    if not partitions:
        return []
    query = select(TimerRow).where(
        TimerRow.partition.in_(sorted(partitions)), TimerRow.due_at <= now
    )
    if fired:
        query = query.where(TimerRow.timer_id.not_in(sorted(fired)))
    rows = await session.execute(query.order_by(TimerRow.due_at, TimerRow.timer_id).limit(limit))
    return [_due(row) for row in rows.scalars()]


def _due(row: TimerRow) -> DueTimer:
    if row.kind == MOVE:
        detail = row.detail or {}
        timer = Timer(row.timer_id, row.path_id, row.due_at, TimerKind.REVIEW)
        move = ManualMove(
            row.timer_id, row.node or "", str(detail.get("actor")), detail.get("note"), row.due_at
        )
        return DueTimer(row.workspace_id, row.account_id, row.partition, timer, move)
    timer = Timer(
        row.timer_id,
        row.path_id,
        row.due_at,
        TimerKind(row.kind),
        row.node,
        row.visit,
        row.level,
        row.path_version,
    )
    return DueTimer(row.workspace_id, row.account_id, row.partition, timer)


async def request_move(
    session: AsyncSession,
    *,
    move_id: str,
    workspace_id: str,
    account_id: str,
    path_id: str,
    target: str,
    actor: str,
    note: str | None,
    now: int,
) -> bool:
    """Queue a manual move for the engine; ``False`` when the account is not on the path
    (it has no pending review timer, so no owner to apply it)."""
    partition = await session.scalar(
        select(TimerRow.partition)
        .where(
            TimerRow.workspace_id == workspace_id,
            TimerRow.account_id == account_id,
            TimerRow.path_id == path_id,
        )
        .limit(1)
    )
    if partition is None:
        return False
    session.add(
        TimerRow(
            timer_id=move_id,
            partition=partition,
            due_at=now,
            workspace_id=workspace_id,
            account_id=account_id,
            path_id=path_id,
            kind=MOVE,
            node=target,
            visit=0,
            level=0,
            path_version=0,
            detail={"actor": actor, "note": note},
        )
    )
    await session.flush()
    return True


async def remove(session: AsyncSession, timer_ids: Sequence[str]) -> int:
    """Delete fired timers (one statement); returns how many were still there."""
    return await delete_by_ids(session, TimerRow, "timer_id", timer_ids)


async def overdue(session: AsyncSession, partitions: Collection[int], *, now: int) -> int:
    """How many timers of ``partitions`` are due and not fired yet (the timer backlog); an
    index range scan of the due ones only."""
    if not partitions:
        return 0
    query = select(func.count()).where(
        TimerRow.partition.in_(sorted(partitions)), TimerRow.due_at <= now
    )
    return int(await session.scalar(query) or 0)
