"""The real processes: ``milepost messaging`` alone, and ``milepost run`` with the reference
playbooks published to the demo workspace."""

from __future__ import annotations

from pathlib import Path

import httpx

from services.messaging.playbooks.service import REFERENCE_PLAYBOOKS
from tests.processes import milepost, running


def test_the_messaging_service_alone_serves_its_api(tmp_path: Path) -> None:
    env = {"MILEPOST_DATA_DIR": str(tmp_path / "data"), "MILEPOST_DATABASE_URL": ""}
    milepost("workspace", "create", "ops", env=env)
    milepost(
        "playbooks", "publish", str(REFERENCE_PLAYBOOKS / "saas-account.yaml"), "-w", "ops", env=env
    )
    created = milepost("admin-token", "create", "--workspace", "ops", env=env)
    admin = {"Authorization": f"Bearer {created.stdout.strip().splitlines()[-1]}"}
    with running("messaging", env, tmp_path / "messaging.log") as server:
        base = f"{server.url}/api/messaging/workspaces/ops"
        assert httpx.get(f"{base}/playbooks", timeout=10).status_code == 401
        listed = httpx.get(f"{base}/playbooks", headers=admin, timeout=10)
        assert [p["playbook_id"] for p in listed.json()["items"]] == ["saas-account-outreach"]
        contacts = httpx.get(f"{base}/contacts", headers=admin, timeout=10)
        assert contacts.json() == {"items": [], "next_cursor": None}
        assert httpx.get(f"{server.url}/openapi.json", timeout=10).json()["info"]["title"] == (
            "Milepost messaging"
        )


def test_the_embedded_run_publishes_the_reference_playbooks_once(tmp_path: Path) -> None:
    env = {"MILEPOST_DATA_DIR": str(tmp_path / "data"), "MILEPOST_DATABASE_URL": ""}
    for _ in range(2):
        with running("run", env, tmp_path / "run.log") as server:
            token = (tmp_path / "data" / "admin-token").read_text().strip()
            listed = httpx.get(
                f"{server.url}/api/messaging/workspaces/demo/playbooks",
                headers={"Authorization": f"Bearer {token}"},
                timeout=10,
            )
            assert [(p["playbook_id"], p["current_version"]) for p in listed.json()["items"]] == [
                ("platform-merchant-outreach", 1),
                ("saas-account-outreach", 1),
            ]
    assert (tmp_path / "data" / "unsubscribe-secret").exists()
