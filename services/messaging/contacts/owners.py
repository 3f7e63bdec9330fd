"""``/api/messaging/workspaces/{workspace}/owners``: who owns each of some accounts (their
account manager or CSM), for the console's lists. Admin token."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.params import Depends
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.admin_api import ERROR_RESPONSES, Session, WorkspaceId
from services.messaging.contacts.models import AccountOwnerRow, ContactRow

MAX_ACCOUNTS = 200


class OwnerOut(BaseModel):
    account_id: str
    contact_id: str
    name: str | None


async def owners_of(
    session: AsyncSession, workspace_id: str, accounts: list[str]
) -> list[tuple[str, str, str | None]]:
    """(account, owner contact id, owner's name) for those of ``accounts`` with an owner."""
    owner, contact = AccountOwnerRow, ContactRow
    rows = await session.execute(
        select(owner.account_id, owner.contact_id, contact.name)
        .outerjoin(
            contact,
            (contact.workspace_id == owner.workspace_id) & (contact.contact_id == owner.contact_id),
        )
        .where(owner.workspace_id == workspace_id, owner.account_id.in_(accounts))
        .order_by(owner.account_id)
    )
    return [(account, contact_id, name) for account, contact_id, name in rows]


def owners_router(*, dependencies: list[Depends]) -> APIRouter:
    router = APIRouter(
        prefix="/api/messaging/workspaces/{workspace}/owners",
        tags=["messaging: contacts"],
        dependencies=dependencies,
        responses=ERROR_RESPONSES,
    )

    @router.get("", summary="The owners of some accounts (those without one are left out)")
    async def list_owners(
        workspace: str,
        account: Annotated[
            list[str], Query(min_length=1, max_length=MAX_ACCOUNTS, description="Account ids")
        ],
        *,
        session: Session,
        workspace_id: WorkspaceId,
    ) -> list[OwnerOut]:
        found = await owners_of(session, workspace_id, account)
        return [OwnerOut(account_id=a, contact_id=c, name=n) for a, c, n in found]

    return router
