"""The owners of some accounts, for the console's lists: the owner's contact id and name,
accounts without an owner left out, one workspace's owners only."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.admin_api import admin_dependencies
from services.messaging.contacts.models import AccountOwnerRow, ContactRow
from services.messaging.contacts.owners import MAX_ACCOUNTS, owners_router
from shared.clock import FrozenClock
from shared.errors import Refused
from shared.http_errors import answer_refused
from shared.tenancy.service import create_workspace

NOW = datetime(2026, 12, 1, tzinfo=UTC)
TOKEN = "admin-secret-of-the-owner-tests"


def _contact(workspace_id: str, contact_id: str, name: str | None) -> ContactRow:
    return ContactRow(
        workspace_id=workspace_id,
        contact_id=contact_id,
        account_id=None,
        name=name,
        email=None,
        phone=None,
        chat_app_ids={},
        roles=",account_owner,",
        locale=None,
        timezone=None,
        consent={},
        bounced=[],
        updated_at=NOW,
    )


async def test_owners_of_some_accounts(sessions: async_sessionmaker[AsyncSession]) -> None:
    clock = FrozenClock(NOW)
    name = f"owners-{uuid.uuid4().hex[:10]}"
    async with sessions() as session:
        ours = await create_workspace(session, name, clock=clock)
        theirs = await create_workspace(session, f"{name}-other", clock=clock)
        session.add_all(
            [
                _contact(ours.workspace_id, "csm-li", "Li Na"),
                AccountOwnerRow(
                    workspace_id=ours.workspace_id,
                    account_id="acme",
                    contact_id="csm-li",
                    updated_at=NOW,
                ),
                AccountOwnerRow(
                    workspace_id=ours.workspace_id,
                    account_id="globex",
                    contact_id="csm-gone",
                    updated_at=NOW,
                ),
                AccountOwnerRow(
                    workspace_id=theirs.workspace_id,
                    account_id="initech",
                    contact_id="x",
                    updated_at=NOW,
                ),
            ]
        )
        await session.commit()
    app = FastAPI()
    app.state.sessions = sessions
    app.add_exception_handler(Refused, answer_refused)
    dependencies = admin_dependencies(sessions, SecretStr(TOKEN), variable="TEST_TOKEN")
    app.include_router(owners_router(dependencies=dependencies))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://milepost",
        headers={"Authorization": f"Bearer {TOKEN}"},
    ) as client:
        url = f"/api/messaging/workspaces/{name}/owners"
        found = await client.get(url, params={"account": ["globex", "acme", "initech", "nobody"]})
        assert found.json() == [
            {"account_id": "acme", "contact_id": "csm-li", "name": "Li Na"},
            {"account_id": "globex", "contact_id": "csm-gone", "name": None},
        ]
        assert (await client.get(url)).status_code == 422
        too_many = [f"a{i}" for i in range(MAX_ACCOUNTS + 1)]
        assert (await client.get(url, params={"account": too_many})).status_code == 422
        anonymous = await client.get(url, params={"account": "acme"}, headers={"Authorization": ""})
        assert anonymous.status_code == 401
