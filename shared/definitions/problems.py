"""What is wrong with a definition file and where: the errors :mod:`shared.definitions` raises."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from shared.errors import Invalid, MilepostError

Location = tuple[str | int, ...]
"""A path into a document: mapping keys and list indexes, as in pydantic's ``loc``."""

_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True, slots=True)
class DefinitionProblem:
    """One problem in ``file``: 1-based ``line`` and ``column`` (None when unknown) and the
    ``field`` it concerns, such as ``stages[2].nodes[0].due`` ("" for the whole document)."""

    file: str
    line: int | None
    column: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}" if self.column is None else f":{self.line}:{self.column}"
        field = f"{self.field}: " if self.field else ""
        return f"{where}: {field}{self.message}"


class DefinitionError(Invalid):
    """A definition that cannot be used. ``problems`` holds each problem once, sorted by line;
    ``str()`` renders one ``file:line:column: field: message`` line per problem. ``what``
    names the file's kind in :attr:`summary` ("the growth path"); the loader sets it."""

    def __init__(self, problems: Iterable[DefinitionProblem], *, what: str = "the file") -> None:
        self.problems = tuple(sorted(dict.fromkeys(problems), key=_reading_order))
        if not self.problems:
            raise ValueError("a DefinitionError needs at least one problem")
        super().__init__(
            "\n".join(str(problem) for problem in self.problems),
            field=self.problems[0].field or "source",
        )
        self.what = what

    @property
    def summary(self) -> str:
        """One sentence: how many problems, and the first."""
        count = len(self.problems)
        plural = "s" if count != 1 else ""
        return f"{self.what} has {count} problem{plural}, the first: {self.problems[0]}"


class DefinitionInvalid(MilepostError, ValueError):
    """Raised from a model's validator: ``message`` applies at ``location``, which is relative
    to the model whose validator raised it (the loader adds where that model sits).

    ``offset``, when known, is the index in that value's text where the problem starts (a
    condition's bad name), so the loader can give its exact line and column; ``more`` holds
    further problems the same check found, so one run reports them all.
    """

    def __init__(
        self,
        location: Location,
        message: str,
        *,
        offset: int | None = None,
        more: Iterable[DefinitionInvalid] = (),
    ) -> None:
        super().__init__(message)
        self.location = tuple(location)
        self.message = message
        self.offset = offset
        self.more = tuple(more)

    @classmethod
    def every(cls, found: Sequence[DefinitionInvalid]) -> DefinitionInvalid:
        """One exception carrying every problem in ``found`` (which must not be empty)."""
        first, *rest = found
        return cls(first.location, first.message, offset=first.offset, more=rest)

    def each(self) -> tuple[DefinitionInvalid, ...]:
        """This problem and those in ``more``."""
        return (self, *self.more)


def field_name(location: Iterable[object]) -> str:
    """``("stages", 2, "nodes", 0, "due")`` as ``stages[2].nodes[0].due``; other keys in brackets."""
    parts: list[str] = []
    for part in location:
        if isinstance(part, int) and not isinstance(part, bool):
            parts.append(f"[{part}]")
        elif isinstance(part, str) and _PLAIN_KEY.fullmatch(part):
            parts.append(f".{part}" if parts else part)
        else:
            parts.append(f"[{part!r}]")
    return "".join(parts)


def _reading_order(problem: DefinitionProblem) -> tuple[bool, int, int, str]:
    return (problem.line is None, problem.line or 0, problem.column or 0, problem.field)
