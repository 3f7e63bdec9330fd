"""What every service's admin API shares: the error body, the admin-token check, the workspace
lookup and the answer to an invalid definition file (growth path, metrics, playbook).

Every admin error answers ``{"detail": {"field", "message", "problems"}}``: the field at
fault, a sentence, and for a file every problem with its line, column and field.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import Depends, HTTPException, Request, params, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.ingest.workspaces.admin_tokens import EVERY_WORKSPACE, Grant, grant_of
from services.ingest.workspaces.service import find_workspace, hash_key, hash_matches
from shared.definitions import MAX_DEFINITION_BYTES, DefinitionError, DefinitionProblem
from shared.web.console_session import CSRF_HEADER, SESSION_COOKIE, csrf_problem

logger = logging.getLogger(__name__)


class ProblemOut(BaseModel):
    field: str = Field(description="The field at fault, e.g. `stages[1].nodes[0].due`.")
    message: str
    file: str | None = Field(default=None, description="The source name, for file problems.")
    line: int | None = Field(default=None, description="1-based line in the source.")
    column: int | None = Field(default=None, description="1-based column in the source.")

    @classmethod
    def from_problem(cls, problem: DefinitionProblem) -> ProblemOut:
        return cls(
            field=problem.field,
            message=problem.message,
            file=problem.file,
            line=problem.line,
            column=problem.column,
        )


class ErrorDetail(BaseModel):
    field: str = Field(description="The field at fault (the first problem's, for files).")
    message: str
    problems: list[ProblemOut] = Field(
        default_factory=list, description="Every problem of an invalid file, by line."
    )


class ErrorOut(BaseModel):
    detail: ErrorDetail


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


def error_detail(field: str, message: str, problems: Sequence[ProblemOut] = ()) -> dict[str, Any]:
    """The ``detail`` of an admin API error: the field, a message, the problems."""
    return ErrorDetail(field=field, message=message, problems=list(problems)).model_dump()


def invalid_definition(error: DefinitionError, what: str) -> HTTPException:
    """The 422 answer to an invalid definition file: every problem, and the first one in
    the message (``what`` names the file's kind: "the growth path", "the playbook")."""
    problems = [ProblemOut.from_problem(p) for p in error.problems]
    count = len(problems)
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        error_detail(
            problems[0].field or "source",
            f"{what} has {count} problem{'s' if count != 1 else ''}, "
            f"the first: {error.problems[0]}",
            problems,
        ),
    )


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
        if not grant.covers(request.path_params.get("workspace", "")):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                error_detail("Authorization", f"this admin token is for {grant.workspace!r} only"),
            )

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
        raise HTTPException(status.HTTP_403_FORBIDDEN, error_detail(CSRF_HEADER, problem))
    return session


def insecure_token(token: str) -> bool:
    """Whether a setting-provided admin token is a known default or too short to be random."""
    return token in _FORMER_DEFAULTS or len(token) < MIN_BOOTSTRAP_TOKEN_LENGTH


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        error_detail("Authorization", message),
        headers={"WWW-Authenticate": "Bearer"},
    )


async def workspace_id_of(session: AsyncSession, name: str) -> str:
    """The id of the workspace named ``name``; 404 JSON naming the field otherwise."""
    found = await find_workspace(session, name)
    if found is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, error_detail("workspace", f"no workspace {name!r}")
        )
    return found.id
