"""The one answer every HTTP API gives a refused request (see :mod:`shared.errors`).

A :class:`~shared.errors.Refused` becomes its ``status_code`` and
``{"detail": {"field", "message", "problems"}}``: the field at fault, a sentence, and for an
invalid definition file every problem with its line, column and field.
:func:`~shared.observability.http.create_http_app` registers :func:`answer_refused` on every
app, so endpoints and services raise and never translate errors themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from shared.definitions import DefinitionError, DefinitionProblem
from shared.errors import Refused


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


def error_detail(field: str, message: str, problems: Sequence[ProblemOut] = ()) -> dict[str, Any]:
    """The ``detail`` of an API error: the field, a message, the problems."""
    return ErrorDetail(field=field, message=message, problems=list(problems)).model_dump()


def refusal_detail(error: Refused) -> dict[str, Any]:
    """The ``detail`` answering ``error``; an invalid file's names the first problem in its
    message and lists them all."""
    if isinstance(error, DefinitionError):
        problems = [ProblemOut.from_problem(p) for p in error.problems]
        return error_detail(error.field, error.summary, problems)
    return error_detail(error.field, str(error))


async def answer_refused(_request: Request, error: Exception) -> JSONResponse:
    """The exception handler for :class:`~shared.errors.Refused` and its subclasses."""
    assert isinstance(error, Refused)
    return JSONResponse(
        {"detail": refusal_detail(error)},
        status_code=error.status_code,
        headers=dict(error.headers) if error.headers else None,
    )
