"""YAML text to plain data plus where each value starts, so problems can name their line.

Only YAML's safe types are built: mappings, lists, strings, numbers, booleans, null,
timestamps and binary; ``<<`` merge keys and anchors work. Rejected, as a
:class:`DefinitionError`: any other tag, duplicate keys (each with its line), documents
over :data:`MAX_DEFINITION_BYTES`, more than one document, recursive aliases, and alias
expansions beyond :data:`MAX_DEFINITION_VALUES` values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import AnyStr, Final

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from shared.definitions.problems import DefinitionError, DefinitionProblem, field_name

MAX_DEFINITION_BYTES: Final = 1024 * 1024
MAX_DEFINITION_VALUES: Final = 1_000_000
_MAP: Final = "tag:yaml.org,2002:map"
_SEQ: Final = "tag:yaml.org,2002:seq"
_MERGE: Final = "tag:yaml.org,2002:merge"
ABSENT: Final = object()
"""What :func:`child_of` returns where there is nothing."""

DataPath = tuple[object, ...]
"""A location in built data; like :data:`Location`, but keys may be any YAML scalar."""


@dataclass(frozen=True, slots=True)
class Position:
    """1-based line and column."""

    line: int
    column: int


@dataclass(frozen=True, slots=True)
class Document:
    """A parsed definition: its ``data``, where each value starts and where each mapping key
    starts, and for each scalar value the ``(start, end)`` indexes of its source in ``text``."""

    file: str
    data: object
    values: Mapping[DataPath, Position]
    keys: Mapping[DataPath, Position]
    text: str
    spans: Mapping[DataPath, tuple[int, int]]

    def position_within(self, path: DataPath, offset: int) -> Position | None:
        """Where character ``offset`` of the text value at ``path`` is in the file.

        The value's characters are matched in order against its source (which may add
        quotes, escapes, indentation and line breaks); None when they cannot be matched.
        """
        value, span = value_at(self.data, path), self.spans.get(path)
        if not isinstance(value, str) or span is None or not 0 <= offset < len(value):
            return None
        index = span[0] - 1
        for char in value[: offset + 1]:
            index = self.text.find(char, index + 1, span[1])
            if index < 0:
                return None
        return _position_at(self.text, index, "\n")


def read_definition(path: Path) -> str:
    """The file's text; unreadable, oversized or non-UTF-8 files raise :class:`DefinitionError`."""
    file = str(path)
    try:
        with path.open("rb") as stream:
            raw = stream.read(MAX_DEFINITION_BYTES + 1)
    except OSError as exc:
        raise _error(file, None, f"cannot read the file: {exc.strerror or exc}") from exc
    _check_size(file, len(raw))
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        at = _position_at(raw, exc.start, b"\n")
        raise _error(file, at, f"not UTF-8 text: {exc.reason}") from exc


def parse_document(file: str, text: str) -> Document:
    """Parse one YAML document from ``text``; ``file`` names it in problems."""
    _check_size(file, len(text.encode("utf-8")))
    try:
        loader = yaml.SafeLoader(text)
        try:
            builder = _Builder(file, loader)
            root = loader.get_single_node()
            data = None if root is None else builder.build(root, ())
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        raise _error(file, _mark(exc), _yaml_message(exc)) from exc
    except yaml.reader.ReaderError as exc:
        at = _position_at(text, exc.position, "\n")
        raise _error(
            file, at, f"character #x{exc.character:04x} is not allowed: {exc.reason}"
        ) from exc
    except RecursionError as exc:
        raise _error(file, None, "the document is nested too deeply") from exc
    if builder.problems:
        raise DefinitionError(builder.problems)
    return Document(file, data, builder.values, builder.keys, text, builder.spans)


class _Builder:
    """Builds plain data from composed nodes, recording positions and duplicate keys."""

    def __init__(self, file: str, loader: yaml.SafeLoader) -> None:
        self.file = file
        self.loader = loader
        self.values: dict[DataPath, Position] = {}
        self.keys: dict[DataPath, Position] = {}
        self.spans: dict[DataPath, tuple[int, int]] = {}
        self.problems: list[DefinitionProblem] = []
        self._open: set[int] = set()
        self._flattened: set[int] = set()

    def build(self, node: Node, at: DataPath) -> object:
        if len(self.values) >= MAX_DEFINITION_VALUES:
            message = f"more than {MAX_DEFINITION_VALUES:,} values after expanding aliases"
            raise _error(self.file, _start(node), message)
        self.values[at] = _start(node)
        if isinstance(node, ScalarNode):
            self.spans[at] = (node.start_mark.index, node.end_mark.index)
            return self.loader.construct_object(node)
        if id(node) in self._open:
            raise _error(self.file, _start(node), "an alias refers to a value that contains it")
        if node.tag != (_SEQ if isinstance(node, SequenceNode) else _MAP):
            raise _error(self.file, _start(node), f"the tag {node.tag!r} is not allowed")
        self._open.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                return [self.build(item, (*at, i)) for i, item in enumerate(node.value)]
            assert isinstance(node, MappingNode)
            return self._mapping(node, at)
        finally:
            self._open.discard(id(node))

    def _mapping(self, node: MappingNode, at: DataPath) -> dict[object, object]:
        if id(node) not in self._flattened:  # an aliased mapping is checked and merged once
            self._flattened.add(id(node))
            self._report_duplicates(node, at)
            self.loader.flatten_mapping(node)
        entries: dict[object, tuple[Node, Node]] = {}
        for key_node, value_node in node.value:  # merged entries first; later ones win
            entries[self._key(key_node)] = (key_node, value_node)
        result: dict[object, object] = {}
        for key, (key_node, value_node) in entries.items():
            self.keys[(*at, key)] = _start(key_node)
            result[key] = self.build(value_node, (*at, key))
        return result

    def _report_duplicates(self, node: MappingNode, at: DataPath) -> None:
        first: dict[object, Position] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE:
                continue
            key, where = self._key(key_node), _start(key_node)
            if key not in first:
                first[key] = where
                continue
            message = f"duplicate key {key!r} (first on line {first[key].line})"
            field = field_name((*at, key))
            self.problems.append(
                DefinitionProblem(self.file, where.line, where.column, field, message)
            )

    def _key(self, node: Node) -> object:
        if not isinstance(node, ScalarNode):
            raise _error(self.file, _start(node), "a mapping key must be a single value")
        return self.loader.construct_object(node)


def _check_size(file: str, size: int) -> None:
    if size > MAX_DEFINITION_BYTES:
        limit = f"{MAX_DEFINITION_BYTES} bytes (1 MiB)"
        raise _error(file, None, f"the document is larger than the limit of {limit}")


def _error(file: str, at: Position | None, message: str) -> DefinitionError:
    line, column = (at.line, at.column) if at else (None, None)
    return DefinitionError([DefinitionProblem(file, line, column, "", message)])


def _start(node: Node) -> Position:
    return Position(node.start_mark.line + 1, node.start_mark.column + 1)


def _mark(exc: yaml.MarkedYAMLError) -> Position | None:
    mark = exc.problem_mark or exc.context_mark
    return Position(mark.line + 1, mark.column + 1) if mark else None


def _yaml_message(exc: yaml.MarkedYAMLError) -> str:
    problem, context = exc.problem or "", exc.context or ""
    if problem.startswith("but ") and context:  # "expected X" + "but found Y"
        return f"{context} {problem}"
    if problem and context and exc.context_mark:
        return f"{problem} ({context} on line {exc.context_mark.line + 1})"
    return problem or context or "invalid YAML"


def child_of(node: object, part: object) -> object:
    """``node[part]`` for a mapping key or list index that exists, else :data:`ABSENT`."""
    if isinstance(node, dict):
        return node.get(part, ABSENT)
    if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
        return node[part]
    return ABSENT


def value_at(data: object, path: DataPath) -> object:
    """What is at ``path`` in ``data``, or :data:`ABSENT`."""
    for part in path:
        data = child_of(data, part)
    return data


def _position_at(text: AnyStr, index: int, newline: AnyStr) -> Position:
    line_start = text.rfind(newline, 0, index) + 1
    return Position(text.count(newline, 0, index) + 1, index - line_start + 1)
