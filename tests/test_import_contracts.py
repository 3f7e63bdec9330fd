"""The architecture's import contracts (``[tool.importlinter]`` in pyproject.toml), checked by
``lint-imports`` in ``make lint``: the tree keeps them, and one forbidden import breaks them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` on the source tree at ``tree`` (its own packages, not the installed)."""
    return subprocess.run(  # noqa: S603 - our own tool on our own tree
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """A copy of the sources and the contracts to break."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in ("services", "shared"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    return tmp_path


def test_the_tree_keeps_every_contract() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "bad_import", "contract"),
    [
        (
            "services/node_engine/core/state.py",
            "import sqlalchemy",
            "Pure cores import no web, database or bus library, even indirectly",
        ),
        (
            "services/node_engine/paths/files.py",
            "import services.node_engine.paths.schemas",  # FastAPI, indirectly
            "Pure cores import no web, database or bus library, even indirectly",
        ),
        (
            "services/messaging/errors.py",
            "import services.ingest.errors",
            "Services import each other only through shared",
        ),
        ("shared/private_files.py", "import services", "shared never imports services"),
        (
            "services/scoring/app.py",
            "import aiokafka",
            "Kafka, PostgreSQL, HTTP-client and SMTP libraries only in their adapters",
        ),
    ],
)
def test_a_forbidden_import_breaks_its_contract(
    copy: Path, module: str, bad_import: str, contract: str
) -> None:
    source = copy / module
    source.write_text(source.read_text() + f"\n{bad_import}  # noqa\n")
    result = lint_imports(copy)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{contract} BROKEN" in result.stdout
    assert "1 broken" in result.stdout
