"""``/api/engine/workspaces/{workspace}/accounts/...`` and the path funnel."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, status
from fastapi.params import Depends

from services.admin_api import RequestGrant, Session, WorkspaceId
from services.node_engine.accounts import schemas
from services.node_engine.accounts.service import (
    account_states,
    funnel,
    queue_move,
    timeline,
)
from shared.clock import Clock
from shared.db.ranges import Int64
from shared.errors import NotFound


def accounts_router(clock: Clock, *, dependencies: Sequence[Depends] = ()) -> APIRouter:
    """An account's place on every path, its timeline, a path's funnel, and audited moves."""
    router = APIRouter(
        prefix="/api/engine/workspaces/{workspace}",
        tags=["engine: accounts"],
        dependencies=list(dependencies),
    )
    _account_route(router)
    _timeline_route(router)
    _funnel_route(router)
    _move_route(router, clock)
    return router


def _account_route(router: APIRouter) -> None:
    @router.get("/accounts/{account_id}", summary="One account's place on every path")
    async def get_account(
        workspace: str, account_id: str, session: Session, workspace_id: WorkspaceId
    ) -> schemas.AccountOut:
        states = await account_states(session, workspace_id, account_id)
        if not states:
            raise NotFound(f"account {account_id!r} is on no path", field="account_id")
        return schemas.AccountOut(
            workspace=workspace,
            account_id=account_id,
            paths=[
                schemas.AccountPathOut(
                    path_id=s.path_id,
                    path_version=s.path_version,
                    stage=s.stage,
                    node=s.node,
                    tier=s.tier,
                    enrolled_at=_time(s.enrolled_at),
                    stage_entered_at=_time(s.stage_entered_at),
                    nodes=[
                        schemas.NodeStatusOut(
                            node=node,
                            status=r.status.value,
                            visits=r.visits,
                            entered_at=_time(r.entered_at),
                            completed_at=_time(r.completed_at) if r.completed_at else None,
                        )
                        for node, r in s.nodes.items()
                    ],
                    facts=dict(s.facts),
                    last_error=s.last_error,
                )
                for s in states
            ],
        )


def _timeline_route(router: APIRouter) -> None:
    @router.get("/accounts/{account_id}/timeline", summary="One account's history, oldest first")
    async def get_timeline(
        workspace: str,
        account_id: str,
        path_id: str | None = None,
        cursor: Annotated[
            Int64 | None, Query(ge=0, description="next_cursor of the previous page")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        *,
        session: Session,
        workspace_id: WorkspaceId,
    ) -> schemas.TimelinePage:
        rows, next_cursor = await timeline(
            session,
            workspace_id,
            account_id,
            path_id=path_id,
            cursor=cursor,
            limit=limit,
        )
        return schemas.TimelinePage(
            items=[schemas.TransitionOut.model_validate(_columns(row)) for row in rows],
            next_cursor=next_cursor,
        )


def _funnel_route(router: APIRouter) -> None:
    @router.get(
        "/paths/{path_id}/funnel", summary="Accounts per stage and node, conversion, median time"
    )
    async def get_funnel(
        workspace: str, path_id: str, session: Session, workspace_id: WorkspaceId
    ) -> schemas.FunnelOut:
        total, steps = await funnel(session, workspace_id, path_id)
        return schemas.FunnelOut(
            workspace=workspace,
            path_id=path_id,
            accounts=total,
            steps=[
                schemas.FunnelNodeOut(
                    stage=s.stage,
                    node=s.node,
                    accounts_now=s.accounts_now,
                    entered=s.entered,
                    completed=s.completed,
                    conversion=round(s.completed / s.entered, 4) if s.entered and s.node else None,
                    median_days_in_node=s.median_days_in_node,
                )
                for s in steps
            ],
        )


def _move_route(router: APIRouter, clock: Clock) -> None:
    @router.post(
        "/accounts/{account_id}/moves",
        status_code=status.HTTP_202_ACCEPTED,
        summary="Move an account to a stage or node (audited in its timeline)",
    )
    async def post_move(
        workspace: str,
        account_id: str,
        body: schemas.MoveIn,
        session: Session,
        workspace_id: WorkspaceId,
        grant: RequestGrant,
    ) -> schemas.MoveOut:
        move_id = await queue_move(
            session,
            workspace_id=workspace_id,
            account_id=account_id,
            path_id=body.path_id,
            target=body.target,
            actor=grant.actor(body.actor),
            note=body.note,
            now=clock.now(),
        )
        return schemas.MoveOut(move_id=move_id, status="queued")


def _time(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _columns(row: Any) -> dict[str, Any]:
    return {column: getattr(row, column) for column in schemas.TransitionOut.model_fields}
