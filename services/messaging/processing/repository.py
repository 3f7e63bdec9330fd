"""Queries on the plan ledger. Repositories flush, never commit."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from services.messaging.deliveries.message import Message, MessageKey
from services.messaging.playbooks.files import PRIORITIES, Priority
from services.messaging.policies.budgets import Planned, priority_of
from services.messaging.policies.cooldowns import StepPlanned
from services.messaging.processing.models import PlanRow
from services.messaging.processing.planning import COUNTED
from shared.db.statements import insert_ignoring_duplicates

CHUNK = 200
PlanKey = MessageKey
COOLING = ("queued", "deferred", "task")
"""Plans that start a step's cooldown."""


async def planned_keys(session: AsyncSession, keys: Collection[PlanKey]) -> set[PlanKey]:
    """Which of ``keys`` are in the ledger already."""
    wanted = list(dict.fromkeys(keys))
    found: set[PlanKey] = set()
    columns = tuple_(PlanRow.trigger_id, PlanRow.contact_id, PlanRow.step_id)
    for start in range(0, len(wanted), CHUNK):
        rows = await session.execute(
            select(PlanRow.trigger_id, PlanRow.contact_id, PlanRow.step_id).where(
                columns.in_(wanted[start : start + CHUNK])
            )
        )
        found.update((t, c, s) for t, c, s in rows)
    return found


async def planned_in_window(
    session: AsyncSession,
    *,
    contacts: Collection[tuple[str, str]],
    accounts: Collection[tuple[str, str]],
    since: datetime,
) -> list[Planned]:
    """Queued and deferred messages planned to go out after ``since`` to any of
    ``contacts`` or to any contact of ``accounts`` (each a (workspace id, id) pair)."""
    found: dict[PlanKey, Planned] = {}
    counted = PlanRow.status.in_(COUNTED) & (PlanRow.not_before > since)
    for pairs, columns in (
        (list(contacts), tuple_(PlanRow.workspace_id, PlanRow.contact_id)),
        (list(accounts), tuple_(PlanRow.workspace_id, PlanRow.account_id)),
    ):
        for start in range(0, len(pairs), CHUNK):
            rows = await session.scalars(
                select(PlanRow).where(counted, columns.in_(pairs[start : start + CHUNK]))
            )
            for row in rows:
                found[(row.trigger_id, row.contact_id, row.step_id)] = Planned(
                    row.workspace_id,
                    row.account_id,
                    row.contact_id,
                    row.role,
                    row.not_before,
                    _priority(row.priority),
                )
    return list(found.values())


async def planned_steps(
    session: AsyncSession,
    *,
    steps: Collection[tuple[str, str, str]],
    since: datetime,
) -> list[StepPlanned]:
    """Plans made after ``since`` that start a cooldown, of the (workspace id, account id,
    ``playbook/step``) in ``steps``."""
    wanted = list(dict.fromkeys(steps))
    found: list[StepPlanned] = []
    columns = tuple_(PlanRow.workspace_id, PlanRow.account_id, PlanRow.step_id)
    for start in range(0, len(wanted), CHUNK):
        rows = await session.execute(
            select(
                PlanRow.workspace_id,
                PlanRow.account_id,
                PlanRow.step_id,
                PlanRow.trigger_id,
                PlanRow.planned_at,
            ).where(
                columns.in_(wanted[start : start + CHUNK]),
                PlanRow.status.in_(COOLING),
                PlanRow.planned_at > since,
            )
        )
        found.extend(StepPlanned(*row) for row in rows)
    return found


def _priority(value: str) -> Priority:
    """A stored priority (one the planner wrote; anything else counts as normal)."""
    return next((p for p in PRIORITIES if p == value), "normal")


_LEDGER = tuple(column.name for column in cast(Table, PlanRow.__table__).c)


def ledger_row(message: Message) -> dict[str, Any]:
    """The ledger's row of a planned message (its priority by name)."""
    row = {name: getattr(message, name) for name in _LEDGER}
    row["priority"] = priority_of(message.priority)
    return row


async def record(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Add plans to the ledger (one already there is kept as it is)."""
    await insert_ignoring_duplicates(session, PlanRow, rows)
    await session.flush()


async def page(
    session: AsyncSession,
    workspace_id: str,
    *,
    account_id: str | None,
    trigger_id: str | None,
    limit: int,
) -> list[PlanRow]:
    """The latest plans of the workspace, newest first."""
    query = select(PlanRow).where(PlanRow.workspace_id == workspace_id)
    if account_id is not None:
        query = query.where(PlanRow.account_id == account_id)
    if trigger_id is not None:
        query = query.where(PlanRow.trigger_id == trigger_id)
    rows = await session.scalars(
        query.order_by(PlanRow.planned_at.desc(), PlanRow.step_id).limit(limit)
    )
    return list(rows)
