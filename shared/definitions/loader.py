"""Load a YAML definition file into a pydantic model; every problem names file, line and field.

``load_definition`` parses with :mod:`shared.definitions.document`, then validates with
``model.model_validate(data, context=context)``. Each pydantic error becomes a
:class:`DefinitionProblem` whose ``field`` is built from the error's ``loc`` (union member
tags left out) and whose line and column are those of the deepest YAML node that exists
there: the parent mapping for a missing key, the key itself for an extra key.

A validator (``field_validator``, ``model_validator``) may raise ``ValueError``; the problem
is placed where that model or field sits. To place a problem found after validation, such
as a cross-reference check, raise :class:`DefinitionInvalid` from a ``model_validator``
with a location relative to that model::

    class GrowthPath(BaseModel):
        nodes: list[Node]

        @model_validator(mode="after")
        def gotos_exist(self) -> Self:
            names = {node.name for node in self.nodes}
            for i, node in enumerate(self.nodes):
                if node.goto is not None and node.goto not in names:
                    raise DefinitionInvalid(("nodes", i, "goto"), f"node {node.goto!r} does not exist")
            return self

To report every such problem at once, raise ``DefinitionInvalid.every(found)``; give a
problem inside a text value (a condition, a template) its ``offset`` there, and it is placed
at that character's line and column.

Checks that need outside facts read them from ``info.context`` (the ``context`` argument).
"""

from __future__ import annotations

from collections.abc import Sequence
from copy import deepcopy
from pathlib import Path
from typing import Any, Final, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from shared.definitions.document import (
    ABSENT,
    DataPath,
    Document,
    Position,
    child_of,
    parse_document,
    read_definition,
    value_at,
)
from shared.definitions.problems import (
    DefinitionError,
    DefinitionInvalid,
    DefinitionProblem,
    field_name,
)

M = TypeVar("M", bound=BaseModel)

MAX_ROUNDS: Final = 5
_NO_INPUT_SHOWN: Final = frozenset({"missing", "extra_forbidden"})


def load_definition(
    source: Path | str,
    model: type[M],
    *,
    text: str | None = None,
    context: dict[str, Any] | None = None,
    what: str = "the file",
) -> M:
    """Validate the YAML at ``source`` (or ``text``, with ``source`` naming it) as ``model``.

    Raises :class:`DefinitionError` listing every problem, sorted by line, with ``what``
    naming the file's kind ("the growth path") in its summary. A bad value
    stops pydantic from running the checks of the models around it (a cross-reference
    check sees only a valid file), so after each round the bad values are dropped and the
    data validated again, up to :data:`MAX_ROUNDS` times; a problem at or around a dropped
    value (a required key now missing) is taken to be caused by the dropping and left out.
    """
    try:
        return _validated(source, model, text, context)
    except DefinitionError as exc:
        exc.what = what
        raise


def _validated(
    source: Path | str, model: type[M], text: str | None, context: dict[str, Any] | None
) -> M:
    document = parse_document(str(source), read_definition(Path(source)) if text is None else text)
    data, problems, dropped = document.data, list[DefinitionProblem](), set[DataPath]()
    for _ in range(MAX_ROUNDS):
        try:
            validated = model.model_validate(data, context=context)
        except ValidationError as exc:
            found = [found for error in exc.errors() for found in _problems(document, error)]
        else:
            if not problems:
                return validated
            break
        problems += [problem for field, problem, _ in found if not _caused(field, dropped)]
        cuts = {cut for _, _, cut in found if cut is not None}
        if not cuts - dropped:
            break
        dropped |= cuts
        data = _without(document.data, dropped)
    raise DefinitionError(problems)


Found = tuple[DataPath, DefinitionProblem, DataPath | None]
"""A problem, the data path it concerns, and the mapping key to drop for the next round."""


def _problems(document: Document, error: ErrorDetails) -> list[Found]:
    """The problems one pydantic error stands for (see :data:`Found`)."""
    loc, kind = tuple(error["loc"]), error["type"]
    cause = error.get("ctx", {}).get("error")
    if isinstance(cause, DefinitionInvalid):
        where = _follow(document.data, loc)
        return [_placed(document, where, found) for found in cause.each()]
    where = _follow(document.data, loc, missing=kind == "missing")
    field = (*where, loc[-1]) if kind == "missing" else where
    by_key = kind == "extra_forbidden" or loc[-1:] == ("[key]",)  # on the key itself
    at = (document.keys if by_key else document.values).get(where)
    message = str(cause) if kind == "value_error" and cause is not None else error["msg"]
    if kind not in _NO_INPUT_SHOWN and _is_scalar(error["input"]):
        message += f" (got {_shown(error['input'])})"
    unknown = kind == "extra_forbidden" and isinstance(value_at(document.data, where[:-1]), dict)
    cut = where if unknown else _cut_point(document.data, field)  # an unknown key goes whole
    return [(field, _problem(document, field, at, message), cut)]


def _placed(document: Document, where: DataPath, found: DefinitionInvalid) -> Found:
    path = _follow(document.data, (*where, *found.location))
    field = (*where, *found.location)
    at = document.values.get(path)
    if found.offset is not None and path == field:
        at = document.position_within(path, found.offset) or at
    problem = _problem(document, field, at, found.message)
    return field, problem, _cut_point(document.data, field)


def _problem(
    document: Document, field: DataPath, at: Position | None, message: str
) -> DefinitionProblem:
    line, column = (at.line, at.column) if at else (None, None)
    return DefinitionProblem(document.file, line, column, field_name(field), message)


def _caused(field: DataPath, dropped: set[DataPath]) -> bool:
    """Whether a problem at ``field`` may come from dropping: it is at or around a dropped
    value (a required key now missing, a model that now lacks one of its values)."""
    return any(path[: len(field)] == field for path in dropped)


def _cut_point(data: object, field: DataPath) -> DataPath | None:
    """The mapping key to drop so that the bad value at ``field`` no longer hides the checks
    around it: a single value or a list of them (whose item may be the bad one), else None."""
    value = value_at(data, field)
    if value is ABSENT or isinstance(value, dict):
        return None
    if isinstance(value, list) and any(isinstance(item, dict | list) for item in value):
        return None
    if field and isinstance(value_at(data, field[:-1]), list):
        field = field[:-1]  # an item: drop the whole list
    if not field or not isinstance(value_at(data, field[:-1]), dict):
        return None
    return field


def _without(data: object, dropped: set[DataPath]) -> object:
    """A copy of ``data`` without the mapping keys at ``dropped``."""
    copy = deepcopy(data)
    for path in dropped:
        parent = value_at(copy, path[:-1])
        if isinstance(parent, dict):
            parent.pop(path[-1], None)
    return copy


def _follow(data: object, loc: Sequence[object], *, missing: bool = False) -> DataPath:
    """The longest path of ``loc`` that exists in ``data``, skipping union member tags.

    A part that exists is still skipped when the next part exists beside it but not below
    it (a tag that happens to equal a key). For a ``missing`` error the path ends at a mapping.
    """
    path: list[object] = []
    nodes = [data]
    for i, part in enumerate(loc):
        child = child_of(nodes[-1], part)
        if child is ABSENT:
            continue
        following = loc[i + 1] if i + 1 < len(loc) else ABSENT
        if (
            following is not ABSENT
            and child_of(child, following) is ABSENT
            and child_of(nodes[-1], following) is not ABSENT
        ):
            continue
        path.append(part)
        nodes.append(child)
    while missing and path and not isinstance(nodes[-1], dict):
        path.pop()
        nodes.pop()
    return tuple(path)


def _is_scalar(value: object) -> bool:
    return value is None or isinstance(value, str | int | float)


def _shown(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
