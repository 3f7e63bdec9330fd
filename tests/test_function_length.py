"""No function or method in ``services/`` and ``shared/`` is longer than 60 lines (from its
``def`` to its last line, docstring included), but for the listed ones, which are history
never edited (the old migrations): an entry that is no longer too long fails too."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIMIT = 60
ALLOWED = frozenset(
    {
        # migrations: history, written before the limit and never edited, so they stay as they are
        "services/migrations/versions/0002_node_engine.py::upgrade",
        "services/migrations/versions/0003_scoring.py::upgrade",
        "services/migrations/versions/0004_messaging_directory.py::upgrade",
        "services/migrations/versions/0005_messaging_deliveries.py::upgrade",
    }
)


def functions(tree: ast.AST, prefix: str = "") -> Iterator[tuple[str, int]]:
    """Each function's qualified name (``Class.method``, ``outer.inner``) and length."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            name = prefix + node.name
            yield name, (node.end_lineno or node.lineno) - node.lineno + 1
            yield from functions(node, f"{name}.")
        elif isinstance(node, ast.ClassDef):
            yield from functions(node, f"{prefix}{node.name}.")
        else:
            yield from functions(node, prefix)


def too_long() -> dict[str, int]:
    found: dict[str, int] = {}
    for folder in ("services", "shared"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            where = path.relative_to(ROOT).as_posix()
            for name, length in functions(ast.parse(path.read_text(), str(path))):
                if length > LIMIT:
                    found[f"{where}::{name}"] = length
    return found


def test_no_function_is_longer_than_the_limit() -> None:
    offenders = {name: length for name, length in too_long().items() if name not in ALLOWED}
    assert offenders == {}


def test_every_allowed_function_is_still_too_long() -> None:
    assert sorted(ALLOWED - too_long().keys()) == []


def test_a_long_method_is_found_by_its_qualified_name() -> None:
    body = "\n".join(["        x = 1"] * LIMIT)
    tree = ast.parse(f"class A:\n    def f(self):\n{body}\n    def g(self):\n        pass\n")
    assert dict(functions(tree)) == {"A.f": LIMIT + 1, "A.g": 2}
