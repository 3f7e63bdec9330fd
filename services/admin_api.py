"""What every service's admin API shares: the error body, the bearer token, the workspace
lookup and the answer to an invalid definition file (growth path, metrics, playbook).

Every admin error answers ``{"detail": {"field", "message", "problems"}}``: the field at
fault, a sentence, and for a file every problem with its line, column and field.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from typing import Any

from fastapi import Depends, HTTPException, params, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from sqlalchemy.ext.asyncio import AsyncSession

from services.ingest.workspaces.service import find_workspace
from shared.definitions import MAX_DEFINITION_BYTES, DefinitionError, DefinitionProblem


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
    status.HTTP_401_UNAUTHORIZED: {"model": ErrorOut, "description": "No valid token"},
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


def admin_dependencies(token: SecretStr | None, *, variable: str) -> list[params.Depends]:
    """Bearer-token authentication when ``token`` (the setting ``variable``) is set; none
    (an open API, for the embedded mode) when it is not. Compared in constant time."""
    if token is None:
        return []
    expected = token.get_secret_value().encode()
    bearer = HTTPBearer(auto_error=False, scheme_name=variable, description=variable)

    # A default rather than an Annotated hint: the hint is a string here (postponed
    # annotations) and could not name the local ``bearer``.
    async def require_token(
        credentials: HTTPAuthorizationCredentials | None = Depends(bearer),  # noqa: B008
    ) -> None:
        given = credentials.credentials.encode() if credentials else b""
        if not hmac.compare_digest(given, expected):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                error_detail("Authorization", "send `Authorization: Bearer <admin token>`"),
                headers={"WWW-Authenticate": "Bearer"},
            )

    return [Depends(require_token)]


async def workspace_id_of(session: AsyncSession, name: str) -> str:
    """The id of the workspace named ``name``; 404 JSON naming the field otherwise."""
    found = await find_workspace(session, name)
    if found is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, error_detail("workspace", f"no workspace {name!r}")
        )
    return found.id
