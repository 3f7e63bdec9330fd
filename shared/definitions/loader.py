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

Checks that need outside facts read them from ``info.context`` (the ``context`` argument).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from shared.definitions.document import DataPath, Document, parse_document, read_definition
from shared.definitions.problems import (
    DefinitionError,
    DefinitionInvalid,
    DefinitionProblem,
    field_name,
)

M = TypeVar("M", bound=BaseModel)

_ABSENT: Final = object()
_NO_INPUT_SHOWN: Final = frozenset({"missing", "extra_forbidden"})


def load_definition(
    source: Path | str,
    model: type[M],
    *,
    text: str | None = None,
    context: dict[str, Any] | None = None,
) -> M:
    """Validate the YAML at ``source`` (or ``text``, with ``source`` naming it) as ``model``.

    Raises :class:`DefinitionError` listing every problem, sorted by line.
    """
    file = str(source)
    document = parse_document(file, read_definition(Path(source)) if text is None else text)
    try:
        return model.model_validate(document.data, context=context)
    except ValidationError as exc:
        raise DefinitionError(_problem(document, error) for error in exc.errors()) from exc


def _problem(document: Document, error: ErrorDetails) -> DefinitionProblem:
    loc, kind = tuple(error["loc"]), error["type"]
    cause = error.get("ctx", {}).get("error")
    if isinstance(cause, DefinitionInvalid):
        where = _follow(document.data, loc)
        field = (*where, *cause.location)
        at = document.values.get(_follow(document.data, field))
        message = cause.message
    else:
        where = _follow(document.data, loc, missing=kind == "missing")
        field = (*where, loc[-1]) if kind == "missing" else where
        by_key = kind == "extra_forbidden" or loc[-1:] == ("[key]",)  # on the key itself
        at = (document.keys if by_key else document.values).get(where)
        message = str(cause) if kind == "value_error" and cause is not None else error["msg"]
        if kind not in _NO_INPUT_SHOWN and _is_scalar(error["input"]):
            message += f" (got {_shown(error['input'])})"
    line, column = (at.line, at.column) if at else (None, None)
    return DefinitionProblem(document.file, line, column, field_name(field), message)


def _follow(data: object, loc: Sequence[object], *, missing: bool = False) -> DataPath:
    """The longest path of ``loc`` that exists in ``data``, skipping union member tags.

    A part that exists is still skipped when the next part exists beside it but not below
    it (a tag that happens to equal a key). For a ``missing`` error the path ends at a mapping.
    """
    path: list[object] = []
    nodes = [data]
    for i, part in enumerate(loc):
        child = _child(nodes[-1], part)
        if child is _ABSENT:
            continue
        following = loc[i + 1] if i + 1 < len(loc) else _ABSENT
        if (
            following is not _ABSENT
            and _child(child, following) is _ABSENT
            and _child(nodes[-1], following) is not _ABSENT
        ):
            continue
        path.append(part)
        nodes.append(child)
    while missing and path and not isinstance(nodes[-1], dict):
        path.pop()
        nodes.pop()
    return tuple(path)


def _child(node: object, part: object) -> object:
    if isinstance(node, dict):
        return node.get(part, _ABSENT)
    if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
        return node[part]
    return _ABSENT


def _is_scalar(value: object) -> bool:
    return value is None or isinstance(value, str | int | float)


def _shown(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
