"""Ingest's errors: every rejection names the field, the rule and, where one applies, the limit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import ValidationError

from shared.errors import MilepostError


class IngestError(MilepostError):
    """Root of the errors raised by the ingest service."""


@dataclass(frozen=True, slots=True)
class Problem:
    field: str
    code: str
    message: str
    limit: int | None = None


class RequestRejected(IngestError):
    """The whole request is refused with ``status`` (4xx) and the problems found."""

    def __init__(self, status: int, problems: Sequence[Problem]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))
        self.status = status
        self.problems = tuple(problems)


class ItemRejected(IngestError):
    """One event is refused; the rest of its batch goes on."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))
        self.problems = tuple(problems)


def rejected(field: str, code: str, message: str, limit: int | None = None) -> ItemRejected:
    return ItemRejected([Problem(field, code, message, limit)])


def problems_from_validation(error: ValidationError, *, prefix: str = "") -> list[Problem]:
    """Translate pydantic's errors into problems named by the wire field path."""
    problems = []
    for detail in error.errors(include_url=False):
        path = "".join(
            f"[{part}]" if isinstance(part, int) else f".{part}" for part in detail["loc"]
        )
        field = f"{prefix}{path}".lstrip(".") or prefix or "body"
        context = detail.get("ctx") or {}
        limit = next((v for v in context.values() if isinstance(v, int)), None)
        problems.append(Problem(field, detail["type"], detail["msg"], limit))
    return problems
