"""``milepost paths``: validate, publish, list, show, pause, resume and simulate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from services.cli import app
from tests.processes import milepost
from tests.services.node_engine.simulation.sample_events import SAMPLE
from tests.services.node_engine.simulation.tiny import CURRENT, PATH, lines
from tests.services.node_engine.support import PATH_MISTAKES

REFERENCE = Path(__file__).parents[2] / "services" / "node_engine" / "paths" / "reference"
MERCHANT = REFERENCE / "platform-merchant.yaml"
PLAYBOOKS = Path(__file__).parents[2] / "services" / "messaging" / "playbooks" / "reference"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"MILEPOST_DATA_DIR": str(tmp_path / "data"), "MILEPOST_DATABASE_URL": ""}


def run(env: dict[str, str], *args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(app, list(args), env=env)
    assert result.exit_code == code, result.output
    return result


def test_validate_prints_each_problem_with_its_line(env: dict[str, str], tmp_path: Path) -> None:
    ok = run(env, "paths", "validate", str(MERCHANT), str(REFERENCE / "saas-account.yaml"))
    assert "platform-merchant.yaml: valid: platform-merchant (4 stages, 7 nodes, 5 tiers" in (
        ok.output
    )
    broken = tmp_path / "broken.yaml"
    broken.write_text(MERCHANT.read_text().replace("goto: established", "goto: nowhere"))
    failed = run(env, "paths", "validate", str(MERCHANT), str(broken), code=1)
    line = MERCHANT.read_text().split("goto: established")[0].count("\n") + 1
    assert f"{broken}:{line}:19: stages[2].nodes[2].next[0].goto: no stage or node 'nowhere'" in (
        failed.output
    )
    run(env, "paths", "validate", str(tmp_path / "missing.yaml"), code=1)


def test_validate_prints_every_problem_of_a_file_in_one_run(
    env: dict[str, str], tmp_path: Path
) -> None:
    broken = tmp_path / "trial.yaml"
    broken.write_text(PATH_MISTAKES)
    failed = run(env, "paths", "validate", str(broken), code=1)
    assert [line.split(": ")[0] for line in failed.output.splitlines()] == [
        f"{broken}:12:25",
        f"{broken}:15:42",
        f"{broken}:17:19",
        f"{broken}:25:13",
    ]


def test_publish_list_show_pause_and_resume(env: dict[str, str], tmp_path: Path) -> None:
    run(env, "workspace", "create", "demo")
    published = run(env, "paths", "publish", str(MERCHANT))
    assert "published platform-merchant v1 in demo (migration: pin;" in published.output
    same = run(env, "paths", "publish", str(MERCHANT), code=1)
    assert "v1 has the same content: nothing to publish" in same.output

    v2 = tmp_path / "merchant-v2.yaml"
    v2.write_text(MERCHANT.read_text().replace("id: first_order", "id: first_sale"))
    bad_map = run(
        env, "paths", "publish", str(v2), "--migration", "migrate", "--map", "first_order=x", code=1
    )
    assert "'x' is no stage or node of the new version" in bad_map.output
    run(env, "paths", "publish", str(v2), "--map", "first_order", code=2)
    second = run(
        env,
        "paths",
        "publish",
        str(v2),
        "--migration",
        "migrate",
        "--map",
        "first_order=first_sale",
    )
    assert "published platform-merchant v2" in second.output

    listing = run(env, "paths", "list").output
    assert listing.startswith("platform-merchant\tv2\tactive\tPlatform merchant growth path")
    shown = run(env, "paths", "show", "platform-merchant").output
    assert "platform-merchant v2 (current): Platform merchant growth path" in shown
    assert "migration migrate with map {'first_order': 'first_sale'}" in shown
    assert '    node first_sale: happened("Order Completed"), due P7D from stage' in shown
    assert "L2 at 10,000 (out below 8,000)" in shown
    assert run(env, "paths", "show", "platform-merchant", "--version", "1", "--source").output == (
        MERCHANT.read_text()
    )
    run(env, "paths", "show", "platform-merchant", "--version", "7", code=1)

    assert (
        "platform-merchant is paused in demo"
        in run(env, "paths", "pause", "platform-merchant").output
    )
    assert "\tpaused\t" in run(env, "paths", "list").output
    assert "is active" in run(env, "paths", "resume", "platform-merchant").output
    missing = run(env, "paths", "list", "--workspace", "nope", code=1)
    assert "no workspace named 'nope'" in missing.output


def test_simulate_reports_and_compares_with_the_current_version(
    env: dict[str, str], tmp_path: Path
) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(lines()) + "\n")
    path = tmp_path / "tiny.yaml"
    path.write_text(PATH)
    alone = json.loads(
        run(env, "paths", "simulate", str(path), "--events", str(events), "--json").stdout
    )
    assert alone["diff"] is None
    assert alone["path"]["version"] == 1
    assert alone["triggers"]["by_kind"]["node_completed"] == 2

    run(env, "workspace", "create", "demo")
    current = tmp_path / "current.yaml"
    current.write_text(CURRENT)
    run(env, "paths", "publish", str(current))
    report = json.loads(
        run(
            env,
            "paths",
            "simulate",
            str(path),
            "--events",
            str(events),
            "--horizon",
            "P3D",
            "--json",
        ).stdout
    )
    assert report["path"]["version"] == 2
    assert report["diff"]["against_version"] == 1
    changed = [
        (c["node"], c["kind"], c["change"]) for c in report["diff"]["triggers"] if c["change"]
    ]
    assert changed == [("orders", "node_completed", 1), (None, "stage_entered", 1)]
    assert report["triggers"]["by_kind"]["escalation"] == 1  # the horizon lets it fire

    text = run(env, "paths", "simulate", str(path), "--events", str(events)).stdout
    assert "Compared with the current version v1" in text
    assert "Triggers by kind and role" in text
    plain = run(env, "paths", "simulate", str(path), "--events", str(events), "--no-compare")
    assert "No current version of this path" in plain.stdout


def test_simulate_refuses_what_it_cannot_do(env: dict[str, str], tmp_path: Path) -> None:
    run(env, "paths", "simulate", str(MERCHANT), code=2)
    run(env, "paths", "simulate", str(MERCHANT), "--events", str(SAMPLE), "--every", "soon", code=2)
    missing = run(env, "paths", "simulate", str(MERCHANT), "--events", str(tmp_path / "no"), code=1)
    assert "cannot read" in missing.output


def test_the_sample_simulation_as_a_newcomer_runs_it(tmp_path: Path) -> None:
    output = milepost(
        "paths",
        "simulate",
        str(MERCHANT),
        "--events",
        str(SAMPLE),
        env={"MILEPOST_DATA_DIR": str(tmp_path)},
    ).stdout
    assert "accounts enrolled: 5" in output
    assert "sum of 'amount': 'n/a' is not a number" in output
    assert not (tmp_path / "milepost.db").exists()  # nothing written


def test_simulate_plans_the_outreach_day_by_day(env: dict[str, str], tmp_path: Path) -> None:
    playbook = str(PLAYBOOKS / "platform-merchant.yaml")
    args = ["paths", "simulate", str(MERCHANT), "--events", str(SAMPLE), "--no-compare"]
    text = run(env, *args, "--playbook", playbook).stdout
    assert "Outreach: " in text
    assert "playbooks: platform-merchant-outreach v0" in text
    assert "day 0 · 2026-03-02" in text
    assert "-> admin lotus-owner <lotus-owner> via in_app" in text
    assert "subject: Welcome aboard" in text
    assert "suppressed: budget:" in text
    assert "deferred: deferred (send window)" in text

    report = json.loads(run(env, *args, "--playbook", playbook, "--json").stdout)
    messages = [m for item in report["outreach"] for m in item["messages"]]
    assert {m["status"] for m in messages} >= {"queued", "deferred", "suppressed"}
    assert all(m["body"] for m in messages if m["status"] in ("queued", "deferred"))

    run(env, "workspace", "create", "demo")
    empty = run(env, *args, "--outreach").stdout  # the workspace has no playbooks yet
    assert "playbooks: (none)" in empty
    run(env, "playbooks", "publish", playbook)
    published = run(env, *args, "--outreach").stdout
    assert "playbooks: platform-merchant-outreach v1" in published
    assert "subject: Welcome aboard" in published
