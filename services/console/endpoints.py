"""The console's pages (``/`` and ``/console/...``) and its session
(``/api/console/session``): sign in with an admin token, see who is signed in, sign out.

The session cookie holds the admin token itself (HttpOnly, SameSite=Strict, Path=/), so
each service checks it like a bearer token (:func:`services.admin_api.admin_dependencies`);
the readable CSRF cookie carries the token every change must echo in ``X-CSRF-Token``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request, Response, status
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.admin_api import ERROR_RESPONSES, token_grant, token_hashes
from services.console.schemas import SessionOut, SignIn
from shared.errors import Forbidden, Unauthorized
from shared.web.console_session import (
    CSRF_COOKIE,
    CSRF_HEADER,
    SESSION_COOKIE,
    SESSION_SECONDS,
    csrf_problem,
    csrf_token,
)

STATIC = Path(__file__).with_name("static")
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def mount_console(
    app: FastAPI,
    sessions: async_sessionmaker[AsyncSession],
    bootstrap: Sequence[SecretStr | None] = (),
) -> None:
    """Serve the console on ``app``: its page at ``/``, assets under ``/console/`` and the
    session API. ``bootstrap``: the admin tokens of settings, which open every workspace."""
    app.include_router(session_router(sessions, bootstrap))
    app.mount("/console", StaticFiles(directory=STATIC), name="console")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers=PAGE_HEADERS)


def session_router(
    sessions: async_sessionmaker[AsyncSession], bootstrap: Sequence[SecretStr | None] = ()
) -> APIRouter:
    hashes = token_hashes(bootstrap)
    router = APIRouter(prefix="/api/console/session", tags=["console"], responses=ERROR_RESPONSES)

    @router.post("", summary="Sign in with an admin token (sets the session cookies)")
    async def sign_in(body: SignIn, request: Request, response: Response) -> SessionOut:
        token = body.token.get_secret_value()
        grant = await token_grant(sessions, token, bootstrap=hashes)
        if grant is None:
            raise Unauthorized("the admin token is unknown or revoked", field="token")
        secure = request.url.scheme == "https"
        for name, value, http_only in (
            (SESSION_COOKIE, token, True),
            (CSRF_COOKIE, csrf_token(token), False),
        ):
            response.set_cookie(
                name,
                value,
                max_age=SESSION_SECONDS,
                path="/",
                secure=secure,
                httponly=http_only,
                samesite="strict",
            )
        return SessionOut(workspace=grant.workspace, csrf_token=csrf_token(token))

    @router.get("", summary="Who is signed in (401 when no one)")
    async def current(request: Request) -> SessionOut:
        token = request.cookies.get(SESSION_COOKIE, "")
        grant = await token_grant(sessions, token, bootstrap=hashes) if token else None
        if grant is None:
            raise Unauthorized("not signed in", field=SESSION_COOKIE)
        return SessionOut(workspace=grant.workspace, csrf_token=csrf_token(token))

    @router.delete(
        "", status_code=status.HTTP_204_NO_CONTENT, summary="Sign out (clears the cookies)"
    )
    async def sign_out(request: Request, response: Response) -> None:
        token = request.cookies.get(SESSION_COOKIE)
        if token:
            problem = csrf_problem(request.method, token, request.headers.get(CSRF_HEADER))
            if problem is not None:
                raise Forbidden(problem, field=CSRF_HEADER)
        for name in (SESSION_COOKIE, CSRF_COOKIE):
            response.delete_cookie(name, path="/", samesite="strict")

    return router
