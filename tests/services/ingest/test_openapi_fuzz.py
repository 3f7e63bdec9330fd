"""Schemathesis against the running embedded server's OpenAPI: no input may cause a 5xx."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import running

SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))


# About 40 s on an idle machine, over 3 minutes on two busy cores beside another test worker;
# a found 5xx is shrunk by Hypothesis, which takes minutes, so the guards against a hang are
# wide (each run's and the test's) and the failure shows its case.
@pytest.mark.timeout(900)
def test_no_generated_request_gets_a_server_error(tmp_path: Path) -> None:
    env = {"MILEPOST_DATA_DIR": str(tmp_path / "data")}
    with running("run", env, tmp_path / "run.log") as server:
        key = (tmp_path / "data" / "demo-write-key").read_text().strip()
        admin_token = (tmp_path / "data" / "admin-token").read_text().strip()
        # the write key for the ingest API, the admin token for the admin APIs under /api/
        for paths, authorization in (
            ("--exclude-path-regex", f"Basic {_basic(key)}"),
            ("--include-path-regex", f"Bearer {admin_token}"),
        ):
            result = _schemathesis(server.url, tmp_path, paths, authorization)
            assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


def _schemathesis(
    url: str, folder: Path, paths: str, authorization: str
) -> subprocess.CompletedProcess[str]:
    """Schemathesis on the operations whose path ``paths`` ``^/api/``, with ``authorization``."""
    return subprocess.run(  # noqa: S603 - the project's own test dependency
        [
            SCHEMATHESIS,
            "run",
            f"{url}/openapi.json",
            paths,
            "^/api/",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "40",
            "--seed",
            "20261122",
            "--header",
            f"Authorization: {authorization}",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=420,
        cwd=folder,
    )


def _basic(key: str) -> str:
    import base64

    return base64.b64encode(f"{key}:".encode()).decode()
