"""The admin-token check every admin API shares: closed without a token, a setting's token
for every workspace, tokens from ``milepost admin-token create`` for one or all, revocation."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.admin_api import admin_dependencies, insecure_token
from shared.clock import FrozenClock
from shared.errors import Refused
from shared.http_errors import answer_refused
from shared.tenancy.admin_tokens import create_token, revoke_token
from shared.tenancy.service import create_workspace

CLOCK = FrozenClock(datetime(2026, 12, 1, tzinfo=UTC))
BOOTSTRAP = "a-long-random-bootstrap-token-from-a-secret"


@dataclass(frozen=True, slots=True)
class Admin:
    sessions: async_sessionmaker[AsyncSession]
    workspace: str
    other: str

    async def get(
        self, workspace: str, token: str | None = None, *, bootstrap: str | None = None
    ) -> httpx.Response:
        """GET a route of ``workspace`` sending ``token``; ``bootstrap``: the setting's token."""
        app = FastAPI()
        app.add_exception_handler(Refused, answer_refused)
        router = APIRouter(
            prefix="/api/test/workspaces/{workspace}",
            dependencies=admin_dependencies(
                self.sessions,
                SecretStr(bootstrap) if bootstrap else None,
                variable="MILEPOST_TEST_ADMIN_TOKEN",
            ),
        )
        router.add_api_route("/ping", lambda workspace: {"workspace": workspace})
        app.include_router(router)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://admin", headers=headers
        ) as client:
            return await client.get(f"/api/test/workspaces/{workspace}/ping")

    async def token(self, workspace: str | None) -> tuple[str, str]:
        async with self.sessions() as session:
            issued = await create_token(session, workspace=workspace, label="t", clock=CLOCK)
            await session.commit()
        return issued.token_id, issued.token


@pytest.fixture
async def admin(sessions: async_sessionmaker[AsyncSession]) -> Admin:
    names = [f"ws-{uuid.uuid4().hex[:10]}" for _ in range(2)]
    async with sessions() as session:
        for name in names:
            await create_workspace(session, name, clock=CLOCK)
        await session.commit()
    return Admin(sessions, *names)


async def test_without_any_token_the_api_is_closed_and_says_how_to_open_it(admin: Admin) -> None:
    answer = await admin.get(admin.workspace)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == "Bearer"
    detail = answer.json()["detail"]
    assert detail["field"] == "Authorization"
    assert "milepost admin-token create --workspace NAME" in detail["message"]


async def test_wrong_and_malformed_tokens_are_401(admin: Admin) -> None:
    for token in ("wrong", "mpa_abcdefghijkl_nope", BOOTSTRAP[:-1]):
        answer = await admin.get(admin.workspace, token, bootstrap=BOOTSTRAP)
        assert answer.status_code == 401
        assert "unknown or revoked" in answer.json()["detail"]["message"]


async def test_the_settings_token_opens_every_workspace(admin: Admin) -> None:
    for workspace in (admin.workspace, admin.other):
        answer = await admin.get(workspace, BOOTSTRAP, bootstrap=BOOTSTRAP)
        assert answer.json() == {"workspace": workspace}


async def test_a_token_for_every_workspace(admin: Admin) -> None:
    _, token = await admin.token(None)
    for workspace in (admin.workspace, admin.other):
        assert (await admin.get(workspace, token)).status_code == 200


async def test_a_workspace_token_is_refused_on_other_workspaces(admin: Admin) -> None:
    _, token = await admin.token(admin.workspace)
    assert (await admin.get(admin.workspace, token)).status_code == 200
    for elsewhere in (admin.other, "no-such-workspace"):
        refused = await admin.get(elsewhere, token)
        assert refused.status_code == 403
        assert refused.json()["detail"]["message"] == (
            f"this admin token is for {admin.workspace!r} only"
        )


async def test_a_revoked_token_is_401_at_once(admin: Admin) -> None:
    token_id, token = await admin.token(admin.workspace)
    assert (await admin.get(admin.workspace, token)).status_code == 200
    async with admin.sessions() as session:
        await revoke_token(session, token_id, clock=CLOCK)
        await session.commit()
    assert (await admin.get(admin.workspace, token)).status_code == 401


@pytest.mark.parametrize(
    ("token", "insecure"),
    [("local-engine-token", True), ("short", True), (BOOTSTRAP, False)],
)
def test_a_weak_settings_token_is_logged_at_start(
    token: str, insecure: bool, caplog: pytest.LogCaptureFixture
) -> None:
    assert insecure_token(token) is insecure
    with caplog.at_level(logging.WARNING, logger="services.admin_api"):
        admin_dependencies(
            async_sessionmaker(), SecretStr(token), variable="MILEPOST_ENGINE_ADMIN_TOKEN"
        )
    logged = [r.getMessage() for r in caplog.records]
    assert any("MILEPOST_ENGINE_ADMIN_TOKEN is insecure" in m for m in logged) is insecure
