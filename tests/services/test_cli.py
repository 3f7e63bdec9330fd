"""The ``milepost`` command against the embedded mode, as a newcomer would use it."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.processes import RunningServer, milepost, running


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[tuple[RunningServer, dict[str, str]]]:
    env = {
        "MILEPOST_DATA_DIR": str(tmp_path / "data"),
        "MILEPOST_INGEST_WRITE_KEY_CACHE_TTL": "PT0S",
    }
    with running("run", env, tmp_path / "run.log") as server:
        yield server, env


def _track(server: RunningServer, key: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/v1/track",
        json={"userId": "u1", "event": "Signed Up", "context": {"groupId": "acme"}},
        auth=(key, ""),
        timeout=10,
    )


def test_embedded_run_serves_the_demo_key_and_cli_workspaces_while_running(
    embedded: tuple[RunningServer, dict[str, str]], tmp_path: Path
) -> None:
    server, env = embedded
    demo_key = (tmp_path / "data" / "demo-write-key").read_text().strip()
    assert demo_key in (tmp_path / "run.log").read_text()  # printed in the start banner
    assert _track(server, demo_key).json()["accepted"] == 1

    created = milepost("workspace", "create", "acme-ops", env=env).stdout.strip().splitlines()
    new_key = created[-1]
    assert new_key.startswith("mpk_")
    assert _track(server, new_key).status_code == 200

    listing = milepost("workspace", "list", env=env).stdout
    assert "acme-ops" in listing
    assert "demo" in listing

    rotated = milepost("workspace", "rotate", "acme-ops", env=env).stdout.strip().splitlines()[-1]
    key_id = new_key.split("_")[1]
    milepost("workspace", "revoke", key_id, env=env)
    assert _track(server, new_key).status_code == 401
    assert _track(server, rotated).status_code == 200


def test_help_lists_every_command() -> None:
    output = milepost("--help", env={}).stdout
    for command in ("run", "ingest", "workspace", "db", "kafka", "contracts"):
        assert command in output
    assert "create" in milepost("workspace", "--help", env={}).stdout


def test_a_duplicate_workspace_is_a_clear_error(tmp_path: Path) -> None:
    env = {"MILEPOST_DATA_DIR": str(tmp_path)}
    milepost("workspace", "create", "twice", env=env)
    with pytest.raises(AssertionError, match="exists already"):
        milepost("workspace", "create", "twice", env=env)


def test_db_upgrade_and_check_on_the_embedded_database(tmp_path: Path) -> None:
    env = {"MILEPOST_DATA_DIR": str(tmp_path)}
    assert "at head" in milepost("db", "upgrade", env=env).stdout
    assert "agree" in milepost("db", "check", env=env).stdout


def test_server_stops_cleanly_on_sigterm(
    embedded: tuple[RunningServer, dict[str, str]], tmp_path: Path
) -> None:
    """Uvicorn shuts down gracefully, then re-raises SIGTERM as its exit status."""
    server, _ = embedded
    server.process.terminate()
    deadline = time.monotonic() + 20
    while server.process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server.process.returncode in (0, -signal.SIGTERM)
    assert "Traceback" not in (tmp_path / "run.log").read_text()


def test_db_check_on_an_unmigrated_database_says_what_to_do(tmp_path: Path) -> None:
    env = {"MILEPOST_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"}
    with pytest.raises(AssertionError, match="milepost db upgrade"):
        milepost("db", "check", env=env)
