"""``/api/messaging/workspaces/{workspace}/plans``: what the trigger worker decided, per
trigger, contact and step (queued, deferred, suppressed, failed or task, with reasons)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.params import Depends
from pydantic import BaseModel, Field

from services.admin_api import Session, WorkspaceId
from services.messaging.contacts.endpoints import ERRORS
from services.messaging.processing import repository
from shared.runtime import Resources

MAX_PLANS = 500


class PlanOut(BaseModel):
    trigger_id: str
    contact_id: str = Field(description="The contact; for a task, its owner ('' if none).")
    step_id: str = Field(description="playbook/step")
    account_id: str
    role: str
    channel: str | None
    priority: str
    category: str
    status: str = Field(description="queued, deferred, suppressed, failed or task")
    reason: str | None
    planned_at: datetime
    not_before: datetime = Field(description="When it may be sent; for a task, its due date.")


def plans_router(resources: Resources, *, dependencies: list[Depends]) -> APIRouter:
    router = APIRouter(
        prefix="/api/messaging/workspaces/{workspace}/plans",
        tags=["messaging: plans"],
        dependencies=dependencies,
        responses=ERRORS,
    )

    @router.get("", summary="The latest plans, newest first, by account or trigger")
    async def list_plans(
        workspace: str,
        account: Annotated[str | None, Query(max_length=256)] = None,
        trigger: Annotated[str | None, Query(max_length=128)] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PLANS)] = 100,
        *,
        session: Session,
        workspace_id: WorkspaceId,
    ) -> list[PlanOut]:
        rows = await repository.page(
            session, workspace_id, account_id=account, trigger_id=trigger, limit=limit
        )
        return [PlanOut.model_validate(row, from_attributes=True) for row in rows]

    return router
