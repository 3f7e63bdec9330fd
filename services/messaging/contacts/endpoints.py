"""``/api/messaging/workspaces/{workspace}/contacts`` (admin token) and
``/api/messaging/unsubscribe`` (the signed link is its own authority).

Errors answer ``{"detail": {"field", "message", "problems"}}``: 401 without the admin
token (when one is set), 404 for an unknown workspace or contact, 400 for an unsubscribe
link that is malformed, forged or expired.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from fastapi.params import Depends

from services.admin_api import ERROR_RESPONSES, Session, WorkspaceId
from services.messaging.contacts import schemas, service
from services.messaging.errors import ContactNotFound
from services.messaging.playbooks.files import Channel
from services.messaging.policies.consent import MAX_TOKEN_CHARS, verify_unsubscribe
from shared.contracts.triggers import Audience
from shared.http_errors import ErrorOut
from shared.runtime import Resources

TokenQuery = Annotated[
    str, Query(min_length=1, max_length=MAX_TOKEN_CHARS, description="From the unsubscribe link")
]
ERRORS = ERROR_RESPONSES
"""The admin API's answers, under the name other messaging routers import from here."""


def contacts_router(resources: Resources, *, dependencies: list[Depends]) -> APIRouter:
    clock = resources.clock
    router = APIRouter(
        prefix="/api/messaging/workspaces/{workspace}/contacts",
        tags=["messaging: contacts"],
        dependencies=dependencies,
        responses=ERROR_RESPONSES,
    )

    @router.get("", summary="The workspace's contacts, a page at a time, by account and role")
    async def list_contacts(
        workspace: str,
        account: Annotated[str | None, Query(max_length=256, description="An account id")] = None,
        role: Annotated[Audience | None, Query(description="Holders of this role")] = None,
        cursor: Annotated[
            str | None, Query(max_length=256, description="next_cursor of the previous page")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=service.MAX_PAGE)] = 50,
        *,
        session: Session,
        workspace_id: WorkspaceId,
    ) -> schemas.ContactPage:
        items, next_cursor = await service.list_contacts(
            session,
            workspace_id,
            account_id=account,
            role=role.value if role else None,
            cursor=cursor,
            limit=limit,
        )
        return schemas.ContactPage(
            items=[schemas.ContactOut.of(c) for c in items], next_cursor=next_cursor
        )

    @router.get("/{contact_id}", summary="One contact: roles, addresses, locale, consent")
    async def get_contact(
        workspace: str, contact_id: str, session: Session, workspace_id: WorkspaceId
    ) -> schemas.ContactOut:
        contact = await service.get_contact(session, workspace_id, contact_id)
        return schemas.ContactOut.of(contact)

    @router.post(
        "/{contact_id}/bounces/{channel}",
        summary="Record that the contact's address on a channel bounced",
        description="Playbooks then use the step's next channel for this contact (email "
        "bounced -> chat app) until the address changes.",
    )
    async def record_bounce(
        workspace: str,
        contact_id: str,
        channel: Channel,
        session: Session,
        workspace_id: WorkspaceId,
    ) -> schemas.ContactOut:
        contact = await service.mark_bounced(
            session, workspace_id, contact_id, channel, now=clock.now()
        )
        return schemas.ContactOut.of(contact)

    return router


def unsubscribe_router(resources: Resources, secret: bytes) -> APIRouter:
    """The endpoint unsubscribe links point at; GET (a click) and POST (one-click
    ``List-Unsubscribe-Post``) both record the opt-out."""
    sessions, clock = resources.sessions, resources.clock
    router = APIRouter(prefix="/api/messaging", tags=["messaging: unsubscribe"])
    responses: dict[int | str, dict[str, object]] = {
        status.HTTP_400_BAD_REQUEST: {"model": ErrorOut, "description": "A bad or expired link"}
    }

    async def unsubscribe(token: str) -> schemas.UnsubscribedOut:
        now = clock.now()
        request = verify_unsubscribe(secret, token, now=now)
        async with sessions() as session:
            try:
                await service.set_consent(
                    session,
                    request.workspace_id,
                    request.contact_id,
                    request.category,
                    allowed=False,
                    now=now,
                )
            except ContactNotFound as exc:  # the link's contact: the token is at fault
                raise ContactNotFound(str(exc), field="token") from exc
            await session.commit()
        return schemas.UnsubscribedOut(
            contact_id=request.contact_id,
            category=request.category,
            message=f"You will no longer receive {request.category} messages.",
        )

    @router.get("/unsubscribe", summary="Opt out of a category (the link)", responses=responses)
    async def unsubscribe_by_link(token: TokenQuery) -> schemas.UnsubscribedOut:
        return await unsubscribe(token)

    @router.post("/unsubscribe", summary="Opt out of a category (one-click)", responses=responses)
    async def unsubscribe_one_click(token: TokenQuery) -> schemas.UnsubscribedOut:
        return await unsubscribe(token)

    return router
