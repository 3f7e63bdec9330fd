"""``/api/engine/workspaces/{workspace}/paths/{path_id}/...``: who is where on a path for
the console: the accounts at a stage, node or tier (paged by account id), and how many
are overdue in each node now.

An account is overdue in its node when a ``node_overdue`` transition was recorded there
after its latest ``node_entered`` there; both are read with the account index of the
transitions.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.params import Depends
from sqlalchemy import ColumnElement, and_, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from services.admin_api import ERROR_RESPONSES, Session, WorkspaceId
from services.node_engine.accounts import schemas
from services.node_engine.accounts.encoding import decode_state
from services.node_engine.accounts.models import AccountStateRow, TransitionRow, on_path
from services.node_engine.core.state import TransitionKind

MAX_PAGE = 200
Filter = Annotated[str | None, Query(min_length=1, max_length=64)]


def overdue_now() -> ColumnElement[bool]:
    """Whether the account state's current node is overdue (see the module)."""
    state, overdue, entry = AccountStateRow, aliased(TransitionRow), aliased(TransitionRow)
    entered_since = exists().where(
        entry.workspace_id == overdue.workspace_id,
        entry.account_id == overdue.account_id,
        entry.path_id == overdue.path_id,
        entry.kind == TransitionKind.NODE_ENTERED.value,
        entry.node == overdue.node,
        entry.position > overdue.position,
    )
    return exists().where(
        overdue.workspace_id == state.workspace_id,
        overdue.account_id == state.account_id,
        overdue.path_id == state.path_id,
        overdue.kind == TransitionKind.NODE_OVERDUE.value,
        overdue.node == state.node,
        ~entered_since,
    )


async def overdue_counts(
    session: AsyncSession, workspace_id: str, path_id: str
) -> list[tuple[str, str, int]]:
    """(stage, node, accounts overdue there now) for every node with any."""
    rows = await session.execute(
        select(AccountStateRow.stage, AccountStateRow.node, func.count())
        .where(
            *on_path(workspace_id, path_id),
            AccountStateRow.node.is_not(None),
            overdue_now(),
        )
        .group_by(AccountStateRow.stage, AccountStateRow.node)
    )
    return [(stage, node or "", count) for stage, node, count in rows]


async def accounts_at(
    session: AsyncSession,
    workspace_id: str,
    path_id: str,
    *,
    where: dict[str, str | None],
    only_overdue: bool,
    cursor: str | None,
    limit: int,
) -> tuple[list[Any], str | None]:
    """The path's accounts matching ``where`` (stage, node, tier: None matches any), by
    account id after ``cursor``, each with its overdue flag; and the next cursor."""
    flag = overdue_now()
    conditions = [
        *on_path(workspace_id, path_id),
        *(getattr(AccountStateRow, name) == value for name, value in where.items() if value),
    ]
    if only_overdue:
        conditions.append(flag)
    if cursor is not None:
        conditions.append(AccountStateRow.account_id > cursor)
    rows = list(
        await session.execute(
            select(AccountStateRow.account_id, AccountStateRow.state, flag.label("overdue"))
            .where(and_(*conditions))
            .order_by(AccountStateRow.account_id)
            .limit(limit + 1)
        )
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, rows[-1].account_id if more else None


def insights_router(*, dependencies: Sequence[Depends] = ()) -> APIRouter:
    router = APIRouter(
        prefix="/api/engine/workspaces/{workspace}/paths/{path_id}",
        tags=["engine: accounts"],
        dependencies=list(dependencies),
        responses=ERROR_RESPONSES,
    )

    @router.get("/accounts", summary="The path's accounts at a stage, node or tier, by id")
    async def list_accounts(
        workspace: str,
        path_id: str,
        stage: Filter = None,
        node: Filter = None,
        tier: Annotated[str | None, Query(min_length=1, max_length=32)] = None,
        overdue: Annotated[bool, Query(description="Only the overdue ones")] = False,
        cursor: Annotated[str | None, Query(max_length=256)] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
        *,
        session: Session,
        workspace_id: WorkspaceId,
    ) -> schemas.NodeAccountPage:
        rows, next_cursor = await accounts_at(
            session,
            workspace_id,
            path_id,
            where={"stage": stage, "node": node, "tier": tier},
            only_overdue=overdue,
            cursor=cursor,
            limit=limit,
        )
        return schemas.NodeAccountPage(
            items=[_account_out(row.state, row.overdue) for row in rows], next_cursor=next_cursor
        )

    @router.get("/overdue", summary="How many accounts are overdue in each node now")
    async def get_overdue(
        workspace: str, path_id: str, session: Session, workspace_id: WorkspaceId
    ) -> schemas.OverdueCountsOut:
        found = await overdue_counts(session, workspace_id, path_id)
        return schemas.OverdueCountsOut(
            workspace=workspace,
            path_id=path_id,
            nodes=[schemas.OverdueOut(stage=s, node=n, accounts=c) for s, n, c in found],
        )

    return router


def _account_out(data: bytes, overdue: bool) -> schemas.NodeAccountOut:
    state = decode_state(data)
    return schemas.NodeAccountOut(
        account_id=state.account_id,
        path_version=state.path_version,
        stage=state.stage,
        node=state.node,
        tier=state.tier,
        stage_entered_at=_time(state.stage_entered_at),
        node_entered_at=None if state.node_entered_at is None else _time(state.node_entered_at),
        overdue=bool(overdue),
    )


def _time(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
