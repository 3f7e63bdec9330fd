"""What every service's admin API shares: the admin-token check, the workspace lookup, the
definition file request body and the OpenAPI answers of errors.

Every admin error answers ``{"detail": {"field", "message", "problems"}}`` (see
:mod:`shared.http_errors`): the field at fault, a sentence, and for a file every problem
with its line, column and field.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from typing import Annotated, Any

from fastapi import Depends, Request, params, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.definitions import MAX_DEFINITION_BYTES
from shared.errors import Forbidden, NotFound, Unauthorized
from shared.http_errors import ErrorOut
from shared.tenancy.admin_tokens import EVERY_WORKSPACE, Grant, grant_of
from shared.tenancy.service import find_workspace, hash_key, hash_matches
from shared.web.console_session import CSRF_HEADER, SESSION_COOKIE, csrf_problem

logger = logging.getLogger(__name__)


class SourceIn(BaseModel):
    """A definition file sent in a request body."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(
        min_length=1, max_length=MAX_DEFINITION_BYTES, description="The YAML file's text."
    )
    source_name: str = Field(
        default="api", min_length=1, max_length=500, description="Names the file in problems."
    )


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status.HTTP_401_UNAUTHORIZED: {"model": ErrorOut, "description": "No valid admin token"},
    status.HTTP_403_FORBIDDEN: {"model": ErrorOut, "description": "A token of another workspace"},
    status.HTTP_404_NOT_FOUND: {"model": ErrorOut, "description": "Unknown name"},
}
"""The OpenAPI answers every admin route may give."""

FILE_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES,
    status.HTTP_422_UNPROCESSABLE_CONTENT: {
        "model": ErrorOut,
        "description": "An invalid file (each problem with its line and field) or parameter",
    },
}
"""The OpenAPI answers of a route that takes a definition file."""

SAME_CONTENT_RESPONSE: dict[int | str, dict[str, Any]] = {
    status.HTTP_409_CONFLICT: {
        "model": ErrorOut,
        "description": "The same content as the current version",
    },
}
"""The OpenAPI answer of a route that publishes a definition file refused as unchanged."""


MIN_BOOTSTRAP_TOKEN_LENGTH = 24
"""A setting-provided token shorter than this is logged as insecure at start."""

_FORMER_DEFAULTS = frozenset({"local-engine-token", "local-scoring-token", "local-messaging-token"})
_HOW_TO_CREATE = (
    "create one with `milepost admin-token create --workspace NAME` (or `--all-workspaces`)"
)


def admin_dependencies(
    sessions: async_sessionmaker[AsyncSession], bootstrap: SecretStr | None, *, variable: str
) -> list[params.Depends]:
    """Admin-token authentication of every route under ``/workspaces/{workspace}``: 401
    without a valid token (there is no open mode), 403 when the token is for another
    workspace. A token is one made by ``milepost admin-token create`` or the setting
    ``variable`` (``bootstrap``, every workspace); both are compared as hashes in constant
    time. It comes as a bearer token or in the console's session cookie (then a change
    needs the CSRF header: :mod:`shared.web.console_session`)."""
    expected = token_hashes([bootstrap])
    if bootstrap is not None and insecure_token(bootstrap.get_secret_value()):
        logger.warning(
            "%s is insecure (a known default or shorter than %d characters): replace it "
            "with a random one, e.g. `openssl rand -hex 32`",
            variable,
            MIN_BOOTSTRAP_TOKEN_LENGTH,
        )
    bearer = HTTPBearer(
        auto_error=False,
        scheme_name="adminToken",
        description=f"An admin token from `milepost admin-token create`, or {variable}.",
    )

    # A default rather than an Annotated hint: the hint is a string here (postponed
    # annotations) and could not name the local ``bearer``.
    async def require_token(
        request: Request,
        credentials: HTTPAuthorizationCredentials | None = Depends(bearer),  # noqa: B008
    ) -> None:
        token = credentials.credentials if credentials is not None else _console_session(request)
        if token is None:
            raise _unauthorized(f"send `Authorization: Bearer <admin token>`; {_HOW_TO_CREATE}")
        grant = await token_grant(sessions, token, bootstrap=expected)
        if grant is None:
            raise _unauthorized(f"the admin token is unknown or revoked; {_HOW_TO_CREATE}")
        request.state.grant = grant
        if not grant.covers(request.path_params.get("workspace", "")):
            raise Forbidden(f"this admin token is for {grant.workspace!r} only")

    return [Depends(require_token)]


def token_hashes(tokens: Sequence[SecretStr | None]) -> list[str]:
    """The hashes of the settings' admin tokens that are set, for :func:`token_grant`."""
    return [hash_key(token.get_secret_value()) for token in tokens if token is not None]


async def token_grant(
    sessions: async_sessionmaker[AsyncSession], token: str, *, bootstrap: Sequence[str] = ()
) -> Grant | None:
    """What the admin ``token`` opens: every workspace when it hashes to one of the
    ``bootstrap`` hashes (a setting's token), else what the stored token grants; None for
    an unknown or revoked token."""
    if any(hash_matches(expected, token) for expected in bootstrap):
        return EVERY_WORKSPACE
    async with sessions() as session:
        return await grant_of(session, token)


def _console_session(request: Request) -> str | None:
    """The admin token of the console's session cookie, once the request passes the CSRF
    check (403 otherwise); None without the cookie."""
    session = request.cookies.get(SESSION_COOKIE)
    if not session:
        return None
    problem = csrf_problem(request.method, session, request.headers.get(CSRF_HEADER))
    if problem is not None:
        raise Forbidden(problem, field=CSRF_HEADER)
    return session


def insecure_token(token: str) -> bool:
    """Whether a setting-provided admin token is a known default or too short to be random."""
    return token in _FORMER_DEFAULTS or len(token) < MIN_BOOTSTRAP_TOKEN_LENGTH


def _unauthorized(message: str) -> Unauthorized:
    return Unauthorized(message, headers={"WWW-Authenticate": "Bearer"})


async def request_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's database session, committed when the endpoint returns (before the
    answer is sent) and rolled back when it raises: endpoints and services never commit."""
    sessions: async_sessionmaker[AsyncSession] = request.app.state.sessions
    async with sessions() as session:
        yield session
        await session.commit()


Session = Annotated[AsyncSession, Depends(request_session, scope="function")]
"""An endpoint's database session (see :func:`request_session`)."""


async def workspace_id_of(session: Session, workspace: str) -> str:
    """The id of the workspace named by the path's ``workspace``; 404 naming the field
    otherwise."""
    found = await find_workspace(session, workspace)
    if found is None:
        raise NotFound(f"no workspace {workspace!r}", field="workspace")
    return found.id


WorkspaceId = Annotated[str, Depends(workspace_id_of)]
"""The id of the workspace the route's ``{workspace}`` names."""


def grant_of_request(request: Request) -> Grant:
    """What the admin token that opened the request grants, with who holds it (see
    :func:`admin_dependencies`, which runs first)."""
    grant: Grant = request.state.grant
    return grant


RequestGrant = Annotated[Grant, Depends(grant_of_request)]
"""The grant of the request's admin token (bearer or console session)."""


def publisher_of(grant: RequestGrant) -> str:
    """Who sent the request: the name of the admin token that opened it."""
    return grant.name


PublishedBy = Annotated[str, Depends(publisher_of)]
"""Who publishes a definition version: the admin token's label, or ``operator``."""
