"""Write the chart's README.md from README.md.tmpl and the ``# --`` comments in values.yaml.

A ``# -- text`` comment (continued on the following ``#`` lines) documents the key on the
next line; the table lists each documented key with its type and default.

    .venv/bin/python deploy/helm/generate_readme.py          # rewrite README.md
    .venv/bin/python deploy/helm/generate_readme.py --check  # exit 1 when it is stale
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CHART = Path(__file__).parent / "milepost"
MARKER = "<!-- values -->"
_KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_.-]+):(?:\s|$)")
_DOC = re.compile(r"^ *# -- ?(?P<text>.*)$")
_MORE = re.compile(r"^ *#(?: (?P<text>.*))?$")


@dataclass(frozen=True, slots=True)
class Documented:
    key: str
    description: str


def documented_keys(text: str) -> list[Documented]:
    """Each key that follows a ``# --`` comment, as a dotted path, in file order."""
    found: list[Documented] = []
    parents: list[tuple[int, str]] = []
    comment: list[str] | None = None
    for line in text.splitlines():
        doc = _DOC.match(line)
        if doc:
            comment = [doc["text"].strip()]
            continue
        more = _MORE.match(line)
        if more:
            if comment is not None:
                comment.append((more["text"] or "").strip())
            continue
        key = _KEY.match(line)
        if key is None:
            if line.strip():
                comment = None
            continue
        indent = len(key["indent"])
        while parents and parents[-1][0] >= indent:
            parents.pop()
        path = ".".join([name for _, name in parents] + [key["key"]])
        if comment is not None:
            found.append(Documented(path, " ".join(part for part in comment if part)))
            comment = None
        parents.append((indent, key["key"]))
    return found


def _lookup(values: dict[str, Any], path: str) -> Any:
    value: Any = values
    for part in path.split("."):
        value = value[part]
    return value


def _type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return "object"


def values_table(values_text: str) -> str:
    values = yaml.safe_load(values_text)
    rows = ["| Key | Type | Default | Description |", "|-----|------|---------|-------------|"]
    for item in documented_keys(values_text):
        value = _lookup(values, item.key)
        default = json.dumps(value, separators=(", ", ": ")).replace("|", "\\|")
        description = item.description.replace("|", "\\|")
        rows.append(f"| `{item.key}` | {_type(value)} | `{default}` | {description} |")
    return "\n".join(rows) + "\n"


def readme(chart: Path = CHART) -> str:
    template = (chart / "README.md.tmpl").read_text()
    if MARKER not in template:
        raise SystemExit(f"{chart / 'README.md.tmpl'} has no {MARKER} line")
    return template.replace(MARKER, values_table((chart / "values.yaml").read_text()).rstrip())


def main(argv: list[str]) -> int:
    target = CHART / "README.md"
    text = readme()
    if "--check" in argv:
        if not target.exists() or target.read_text() != text:
            print(f"{target} is stale: run {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    target.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
