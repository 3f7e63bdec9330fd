"""The delivery-side API on a FastAPI app over httpx's ASGI transport, with a workspace."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.admin_api import admin_dependencies
from services.messaging.deliveries.mounting import delivery_routers
from services.messaging.settings import MessagingSettings
from shared.bus.memory import InMemoryBus
from shared.clock import FrozenClock
from shared.errors import Refused
from shared.http_errors import answer_refused
from shared.runtime import Resources
from shared.tenancy.service import create_workspace

ADMIN_TOKEN = "admin-secret-of-the-messaging-tests"


@dataclass(frozen=True, slots=True)
class Api:
    client: httpx.AsyncClient
    workspace: str
    workspace_id: str
    write_key: str
    settings: MessagingSettings

    @property
    def admin(self) -> dict[str, str]:
        return {"authorization": f"Bearer {ADMIN_TOKEN}"}


@asynccontextmanager
async def delivery_api(
    sessions: async_sessionmaker[AsyncSession],
    clock: FrozenClock,
    *,
    workspace: str = "acme-co",
    **settings: object,
) -> AsyncIterator[Api]:
    configured = MessagingSettings(admin_token=SecretStr(ADMIN_TOKEN), **settings)  # type: ignore[arg-type]
    async with sessions() as session:
        issued = await create_workspace(session, workspace, clock=clock)
        await session.commit()
    resources = Resources(InMemoryBus(), sessions.kw["bind"], sessions, clock, CollectorRegistry())
    app = FastAPI()
    app.add_exception_handler(Refused, answer_refused)
    app.state.sessions = sessions
    dependencies = admin_dependencies(
        sessions, configured.admin_token, variable="MILEPOST_MESSAGING_ADMIN_TOKEN"
    )
    for router in delivery_routers(configured, resources, dependencies=dependencies):
        app.include_router(router)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://milepost") as client:
        yield Api(client, workspace, issued.workspace_id, issued.write_key, configured)
