"""``milepost run --sandbox``: an operator moves the clock forward and watches a day-based
growth path happen, with its outreach, without waiting days."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from services.cli import app
from services.sandbox import CLOCK_FILE, sandbox_clock
from shared.settings import RuntimeSettings
from tests.processes import running

WAIT_SECONDS = 60
"""How long the processing of a step may take before the test gives up (not a speed goal)."""


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[httpx.Client]:
    """A client of a sandbox ``milepost run``, sending the admin token it made."""
    data = tmp_path / "data"
    data.mkdir()
    (data / CLOCK_FILE).write_text("0\n")  # a data folder that was a sandbox stays one
    env = {
        "MILEPOST_DATA_DIR": str(data),
        "MILEPOST_ENGINE_TIMER_INTERVAL_MS": "200",
        "MILEPOST_MESSAGING_BUDGET_PER_CONTACT": "10",  # welcome, guide and reminder all fit
    }
    with running("run", env, tmp_path / "run.log") as server:
        token = (data / "admin-token").read_text().strip()
        with httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=10
        ) as client:
            yield client


def eventually(check: Callable[[], Any]) -> Any:
    """``check()``'s first truthy answer, asked until it gives one."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"nothing found within {WAIT_SECONDS}s")


def test_moving_the_clock_fires_the_overdue_reminder_and_the_escalation_task(
    sandbox: httpx.Client, tmp_path: Path
) -> None:
    assert "SANDBOX: the clock reads" in (tmp_path / "run.log").read_text()
    key = (tmp_path / "data" / "demo-write-key").read_text().strip()
    batch = [
        {"type": "identify", "userId": "ann", "traits": {"email": "ann@lotus.example"}},
        {
            "type": "group",
            "userId": "ann",
            "groupId": "lotus",
            "traits": {"business_type": "platform"},
            "context": {"traits": {"role": "admin"}},
        },
        {
            "type": "track",
            "userId": "ann",
            "event": "Merchant Approved",
            "context": {"groupId": "lotus"},
        },
    ]
    for item in batch:
        sent = sandbox.post(f"/v1/{item['type']}", json=item, auth=(key, ""))
        assert sent.status_code == 200, sent.text

    def kinds() -> list[str]:
        timeline = sandbox.get("/api/engine/workspaces/demo/accounts/lotus/timeline").json()
        return [entry["kind"] for entry in timeline["items"]]

    eventually(lambda: "node_entered" in kinds() and kinds().count("node_entered") >= 2)
    assert "node_overdue" not in kinds()

    before = datetime.fromisoformat(sandbox.get("/api/sandbox/clock").json()["now"])
    moved = advance(sandbox, "P1DT1H")
    assert moved["ahead_by"] == "P1DT1H"
    assert datetime.fromisoformat(moved["now"]) - before >= timedelta(days=1, hours=1)
    eventually(lambda: "node_overdue" in kinds())
    reminder = eventually(lambda: plans(sandbox, "platform-merchant-outreach/overdue_reminder"))
    assert reminder[0]["contact_id"] == "ann"
    assert reminder[0]["status"] in ("queued", "deferred")
    assert not plans(sandbox, "platform-merchant-outreach/owner_call")

    advance(sandbox, "P2D")  # day 3 of the node: the escalation asks for a call
    eventually(lambda: "escalation" in kinds())
    [task] = eventually(lambda: plans(sandbox, "platform-merchant-outreach/owner_call"))
    assert task["status"] == "task"
    assert (tmp_path / "data" / CLOCK_FILE).read_text().strip() == str(int(3.0 * 86400 + 3600))


def advance(sandbox: httpx.Client, by: str) -> dict[str, Any]:
    answer = sandbox.post("/api/sandbox/clock/advance", json={"by": by})
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def plans(sandbox: httpx.Client, step_id: str) -> list[dict[str, Any]]:
    found = sandbox.get("/api/messaging/workspaces/demo/plans", params={"account": "lotus"}).json()
    return [plan for plan in found if plan["step_id"] == step_id]


def test_the_clock_needs_an_admin_token(sandbox: httpx.Client) -> None:
    anonymous = httpx.post(sandbox.base_url.join("/api/sandbox/clock/advance"), json={"by": "P1D"})
    assert anonymous.status_code == 401
    assert sandbox.get("/api/sandbox/clock").json()["ahead_by"] == "P0D"


def test_the_clock_only_moves_forward_by_a_bounded_duration(sandbox: httpx.Client) -> None:
    for by, named in (
        ("-P1D", "ISO 8601"),
        ("PT0S", "longer than zero"),
        ("P400D", "P366D"),
        ("P" + "9" * 30 + "D", ""),
    ):
        answer = sandbox.post("/api/sandbox/clock/advance", json={"by": by})
        assert answer.status_code == 422, (by, answer.text)
        assert answer.json()["detail"]["field"] == "by"
        assert named in answer.json()["detail"]["message"]


def test_without_a_sandbox_there_is_no_clock_to_move(tmp_path: Path) -> None:
    env = {"MILEPOST_DATA_DIR": str(tmp_path / "data")}
    with running("run", env, tmp_path / "run.log") as server:
        assert httpx.get(f"{server.url}/api/sandbox/clock", timeout=10).status_code == 404
        assert "SANDBOX" not in (tmp_path / "run.log").read_text()
    assert not (tmp_path / "data" / CLOCK_FILE).exists()


def test_a_sandbox_needs_its_own_bus_and_database(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert sandbox_clock(RuntimeSettings(data_dir=data), requested=False) is None
    clock = sandbox_clock(RuntimeSettings(data_dir=data), requested=True)
    assert clock is not None
    assert (data / CLOCK_FILE).stat().st_mode & 0o777 == 0o600
    shared = RuntimeSettings(data_dir=data, database_url="postgresql+asyncpg://db/milepost")
    with pytest.raises(ValueError, match="only on the embedded bus and SQLite"):
        sandbox_clock(shared, requested=False)  # the folder is a sandbox now
    refused = CliRunner().invoke(
        app,
        ["run", "--sandbox"],
        env={"MILEPOST_DATA_DIR": str(tmp_path / "other"), "MILEPOST_BUS": "kafka"},
    )
    assert refused.exit_code == 2
    assert "only on the embedded bus" in refused.output
