"""``/api/messaging/workspaces/{workspace}/tasks``: tasks for account owners; list them,
close them (``done``, ``cancelled``) or add a note. Admin token. Errors answer
``{"detail": {"field", "message", "problems"}}``: 404 unknown task, 409 a closed task,
422 a bad cursor or body."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, status
from fastapi.params import Depends

from services.admin_api import Session, WorkspaceId
from services.messaging.deliveries.endpoints import ERRORS, MAX_PAGE
from services.messaging.tasks import schemas, service
from shared.clock import Clock
from shared.http_errors import ErrorOut
from shared.runtime import Resources


def tasks_router(
    resources: Resources, *, dependencies: list[Depends], crm_url: str | None
) -> APIRouter:
    """Lists and reads tasks; closes them or adds notes, pushing each change to ``crm_url``."""
    router = APIRouter(
        prefix="/api/messaging/workspaces/{workspace}/tasks",
        tags=["messaging: tasks"],
        dependencies=dependencies,
        responses=ERRORS,
    )
    _read_routes(router)
    _update_routes(router, resources.clock, crm_url)
    return router


def _read_routes(router: APIRouter) -> None:
    @router.get("", summary="Tasks, newest first, by account, owner and status")
    async def list_tasks(
        workspace: str,
        account: Annotated[str | None, Query(max_length=256)] = None,
        owner: Annotated[str | None, Query(max_length=256, description="A contact id")] = None,
        status_: Annotated[
            Literal["open", "done", "escalated", "cancelled"] | None, Query(alias="status")
        ] = None,
        cursor: Annotated[str | None, Query(max_length=300)] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
        *,
        session: Session,
        workspace_id: WorkspaceId,
    ) -> schemas.TaskPageOut:
        page = await service.list_tasks(
            session,
            workspace_id,
            account_id=account,
            owner_contact_id=owner,
            status=status_,
            cursor=cursor,
            limit=limit,
        )
        return schemas.TaskPageOut(
            items=[schemas.TaskOut.of(t) for t in page.items], next_cursor=page.next_cursor
        )

    @router.get("/{task_id}", summary="One task")
    async def get_task(
        workspace: str, task_id: str, session: Session, workspace_id: WorkspaceId
    ) -> schemas.TaskOut:
        return schemas.TaskOut.of(await service.get_task(session, workspace_id, task_id))


def _update_routes(router: APIRouter, clock: Clock, crm_url: str | None) -> None:
    @router.patch(
        "/{task_id}",
        summary="Close a task or add a note (pushed to the CRM as task.updated)",
        responses={status.HTTP_409_CONFLICT: {"model": ErrorOut, "description": "Closed"}},
    )
    async def update_task(
        workspace: str,
        task_id: str,
        change: schemas.TaskUpdate,
        session: Session,
        workspace_id: WorkspaceId,
    ) -> schemas.TaskOut:
        task = await service.update_task(
            session,
            workspace_id,
            task_id,
            status=change.status,
            note=change.note,
            now=clock.now(),
            crm_url=crm_url,
        )
        return schemas.TaskOut.of(task)
