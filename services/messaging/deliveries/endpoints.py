"""``/api/messaging/workspaces/{workspace}/deliveries``: what was sent, to whom, and every
attempt. Admin token. Errors answer ``{"detail": {"field", "message", "problems"}}``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from fastapi.params import Depends

from services.admin_api import Session, WorkspaceId
from services.messaging.deliveries import repository, schemas, service
from shared.errors import NotFound
from shared.http_errors import ErrorOut
from shared.runtime import Resources

MAX_PAGE = 200
ERRORS: dict[int | str, dict[str, object]] = {
    status.HTTP_401_UNAUTHORIZED: {"model": ErrorOut, "description": "No valid token"},
    status.HTTP_404_NOT_FOUND: {"model": ErrorOut, "description": "Unknown name"},
    status.HTTP_422_UNPROCESSABLE_CONTENT: {"model": ErrorOut, "description": "A bad cursor"},
}


def deliveries_router(resources: Resources, *, dependencies: list[Depends]) -> APIRouter:
    router = APIRouter(
        prefix="/api/messaging/workspaces/{workspace}/deliveries",
        tags=["messaging: deliveries"],
        dependencies=dependencies,
        responses=ERRORS,
    )

    @router.get("", summary="Deliveries, newest first, by account, contact and status")
    async def list_deliveries(
        workspace: str,
        account: Annotated[str | None, Query(max_length=256)] = None,
        contact: Annotated[str | None, Query(max_length=256)] = None,
        status_: Annotated[schemas.DeliveryStatus | None, Query(alias="status")] = None,
        cursor: Annotated[
            str | None, Query(max_length=300, description="next_cursor of the previous page")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
        *,
        session: Session,
        workspace_id: WorkspaceId,
    ) -> schemas.DeliveryPageOut:
        page = await service.list_deliveries(
            session,
            workspace_id,
            account_id=account,
            contact_id=contact,
            status=status_,
            cursor=cursor,
            limit=limit,
        )
        return schemas.DeliveryPageOut(
            items=[schemas.DeliveryOut.of(row) for row in page.items],
            next_cursor=page.next_cursor,
        )

    @router.get("/{delivery_id}", summary="One delivery with every attempt")
    async def get_delivery(
        workspace: str, delivery_id: str, session: Session, workspace_id: WorkspaceId
    ) -> schemas.DeliveryOut:
        row = await repository.get(session, workspace_id, delivery_id)
        if row is None:
            raise NotFound(f"no delivery {delivery_id!r}", field="delivery_id")
        history = await repository.attempts_of(session, delivery_id)
        return schemas.DeliveryOut.of(row, history)

    return router
