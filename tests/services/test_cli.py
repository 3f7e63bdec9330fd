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


def test_the_banner_shows_an_admin_token_that_opens_the_admin_apis_and_cli_tokens(
    embedded: tuple[RunningServer, dict[str, str]], tmp_path: Path
) -> None:
    server, env = embedded
    token_file = tmp_path / "data" / "admin-token"
    token = token_file.read_text().strip()
    assert token_file.stat().st_mode & 0o777 == 0o600
    assert f"curl -H 'Authorization: Bearer {token}'" in (tmp_path / "run.log").read_text()
    demo = f"{server.url}/api/engine/workspaces/demo/paths"
    assert httpx.get(demo, timeout=10).status_code == 401
    assert _admin_get(demo, token).status_code == 200

    milepost("workspace", "create", "acme-ops", env=env)
    created = milepost(
        "admin-token", "create", "--workspace", "acme-ops", "--label", "ops", env=env
    ).stdout
    ops_token = created.strip().splitlines()[-1]
    token_id = ops_token.split("_")[1]
    ops = f"{server.url}/api/scoring/workspaces/acme-ops/portfolio"
    assert _admin_get(ops, ops_token).status_code == 200
    assert _admin_get(demo, ops_token).status_code == 403
    listing = milepost("admin-token", "list", env=env).stdout
    assert f"{token_id}\tworkspace acme-ops\tops\t" in listing
    assert "all workspaces\tembedded" in listing
    milepost("admin-token", "revoke", token_id, env=env)
    assert _admin_get(ops, ops_token).status_code == 401
    assert "revoked" in milepost("admin-token", "list", env=env).stdout
    with pytest.raises(AssertionError, match="--workspace NAME or --all-workspaces"):
        milepost("admin-token", "create", env=env)


def _admin_get(url: str, token: str) -> httpx.Response:
    return httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)


def test_help_lists_every_command() -> None:
    output = milepost("--help", env={}).stdout
    for command in ("run", "ingest", "workspace", "admin-token", "db", "kafka", "contracts"):
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
