"""Signing in to the console: the session cookies, every admin API accepting them (with
the CSRF header on changes), one workspace's session seeing nothing of another's, and
signing out."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.admin_api import admin_dependencies
from services.console.endpoints import mount_console
from shared.clock import FrozenClock
from shared.errors import Refused
from shared.http_errors import answer_refused
from shared.tenancy.admin_tokens import create_token, revoke_token
from shared.tenancy.service import create_workspace
from shared.web.console_session import CSRF_COOKIE, CSRF_HEADER, SESSION_COOKIE, csrf_token

CLOCK = FrozenClock(datetime(2026, 12, 1, tzinfo=UTC))
BOOTSTRAP = "a-long-random-bootstrap-token-from-a-secret"


@dataclass(frozen=True, slots=True)
class Console:
    client: httpx.AsyncClient
    sessions: async_sessionmaker[AsyncSession]
    workspace: str
    other: str

    async def token(self, workspace: str | None) -> tuple[str, str]:
        async with self.sessions() as session:
            issued = await create_token(session, workspace=workspace, label="t", clock=CLOCK)
            await session.commit()
        return issued.token_id, issued.token

    async def sign_in(self, token: str) -> httpx.Response:
        return await self.client.post("/api/console/session", json={"token": token})


def app_of(sessions: async_sessionmaker[AsyncSession]) -> FastAPI:
    """The console beside an admin API with a read and a change."""
    app = FastAPI()
    app.add_exception_handler(Refused, answer_refused)
    router = APIRouter(
        prefix="/api/test/workspaces/{workspace}",
        dependencies=admin_dependencies(
            sessions, SecretStr(BOOTSTRAP), variable="MILEPOST_TEST_ADMIN_TOKEN"
        ),
    )
    router.add_api_route("/ping", lambda workspace: {"workspace": workspace})
    router.add_api_route("/ping", lambda workspace: {"changed": workspace}, methods=["POST"])
    app.include_router(router)
    mount_console(app, sessions, [SecretStr(BOOTSTRAP), None])
    return app


@pytest.fixture
async def console(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[Console]:
    names = [f"ws-{uuid.uuid4().hex[:10]}" for _ in range(2)]
    async with sessions() as session:
        for name in names:
            await create_workspace(session, name, clock=CLOCK)
        await session.commit()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app_of(sessions)), base_url="http://console"
    ) as client:
        yield Console(client, sessions, *names)


async def test_signing_in_sets_an_http_only_strict_session_and_a_readable_csrf_cookie(
    console: Console,
) -> None:
    _, token = await console.token(console.workspace)
    answer = await console.sign_in(token)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"workspace": console.workspace, "csrf_token": csrf_token(token)}
    cookies = {c.split("=", 1)[0]: c.lower() for c in answer.headers.get_list("set-cookie")}
    session, csrf = cookies[SESSION_COOKIE], cookies[CSRF_COOKIE]
    for cookie in (session, csrf):
        assert "samesite=strict" in cookie
        assert "path=/" in cookie
        assert "max-age=" in cookie
    assert "httponly" in session
    assert "httponly" not in csrf
    assert "secure" not in session  # plain http here; https gets Secure


async def test_a_session_reads_its_workspace_and_changes_only_with_the_csrf_header(
    console: Console,
) -> None:
    _, token = await console.token(console.workspace)
    await console.sign_in(token)
    path = f"/api/test/workspaces/{console.workspace}/ping"
    assert (await console.client.get(path)).json() == {"workspace": console.workspace}
    refused = await console.client.post(path)
    assert refused.status_code == 403
    assert refused.json()["detail"]["field"] == CSRF_HEADER
    forged = await console.client.post(path, headers={CSRF_HEADER: csrf_token("guess")})
    assert forged.status_code == 403
    allowed = await console.client.post(path, headers={CSRF_HEADER: csrf_token(token)})
    assert allowed.json() == {"changed": console.workspace}


async def test_a_session_of_one_workspace_sees_nothing_of_another(console: Console) -> None:
    _, token = await console.token(console.workspace)
    await console.sign_in(token)
    answer = await console.client.get(f"/api/test/workspaces/{console.other}/ping")
    assert answer.status_code == 403
    assert console.workspace in answer.json()["detail"]["message"]


async def test_unknown_and_revoked_tokens_cannot_sign_in_nor_keep_a_session(
    console: Console,
) -> None:
    refused = await console.sign_in("mpa_abcdefghijkl_nope")
    assert refused.status_code == 401
    assert refused.json()["detail"]["field"] == "token"
    assert not refused.headers.get_list("set-cookie")
    token_id, token = await console.token(None)
    assert (await console.sign_in(token)).json()["workspace"] is None
    async with console.sessions() as session:
        await revoke_token(session, token_id, clock=CLOCK)
        await session.commit()
    answer = await console.client.get(f"/api/test/workspaces/{console.workspace}/ping")
    assert answer.status_code == 401
    assert (await console.client.get("/api/console/session")).status_code == 401


async def test_the_setting_token_signs_in_for_every_workspace(console: Console) -> None:
    assert (await console.sign_in(BOOTSTRAP)).json()["workspace"] is None
    for workspace in (console.workspace, console.other):
        ping = await console.client.get(f"/api/test/workspaces/{workspace}/ping")
        assert ping.status_code == 200


async def test_who_is_signed_in_and_signing_out(console: Console) -> None:
    assert (await console.client.get("/api/console/session")).status_code == 401
    _, token = await console.token(console.workspace)
    await console.sign_in(token)
    current = await console.client.get("/api/console/session")
    assert current.json() == {"workspace": console.workspace, "csrf_token": csrf_token(token)}
    assert (await console.client.delete("/api/console/session")).status_code == 403
    out = await console.client.delete(
        "/api/console/session", headers={CSRF_HEADER: csrf_token(token)}
    )
    assert out.status_code == 204
    assert all("max-age=0" in c.lower() for c in out.headers.get_list("set-cookie"))
    assert (
        await console.client.get(f"/api/test/workspaces/{console.workspace}/ping")
    ).status_code == 401


async def test_a_bearer_token_needs_no_csrf_header(console: Console) -> None:
    _, token = await console.token(console.workspace)
    answer = await console.client.post(
        f"/api/test/workspaces/{console.workspace}/ping",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 200


async def test_the_page_is_served_with_a_strict_content_security_policy(console: Console) -> None:
    page = await console.client.get("/")
    assert page.status_code == 200
    assert '<script type="module" src="/console/js/app.js">' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    script = await console.client.get("/console/js/app.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
