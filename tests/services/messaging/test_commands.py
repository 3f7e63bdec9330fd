"""``milepost playbooks``: validate, publish, list and show."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from services.cli import app
from services.messaging.playbooks.service import REFERENCE_PLAYBOOKS

MERCHANT = REFERENCE_PLAYBOOKS / "platform-merchant.yaml"
SAAS = REFERENCE_PLAYBOOKS / "saas-account.yaml"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"MILEPOST_DATA_DIR": str(tmp_path / "data"), "MILEPOST_DATABASE_URL": ""}


def run(env: dict[str, str], *args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(app, list(args), env=env)
    assert result.exit_code == code, result.output
    return result


def test_validate_prints_each_problem_with_its_line(env: dict[str, str], tmp_path: Path) -> None:
    ok = run(env, "playbooks", "validate", str(MERCHANT), str(SAAS))
    assert (
        f"{MERCHANT}: valid: platform-merchant-outreach (9 rules, 10 steps, 7 templates)"
        in ok.output
    )
    assert "saas-account-outreach (7 rules, 9 steps, 6 templates)" in ok.output
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        MERCHANT.read_text().replace("template: overdue_reminder", "template: missing")
    )
    failed = run(env, "playbooks", "validate", str(broken), code=1)
    line = MERCHANT.read_text().split("template: overdue_reminder")[0].count("\n") + 1
    assert (
        f"{broken}:{line}:19: rules[3].steps[0].template: no template 'missing' in templates"
        in failed.output
    )


def test_publish_list_and_show(env: dict[str, str], tmp_path: Path) -> None:
    run(env, "workspace", "create", "demo")
    none = run(env, "playbooks", "list")
    assert "no playbooks in demo yet" in none.output
    published = run(env, "playbooks", "publish", str(MERCHANT))
    assert "published platform-merchant-outreach v1 in demo" in published.output
    same = run(env, "playbooks", "publish", str(MERCHANT), code=1)
    assert "v1 has the same content: nothing to publish" in same.output
    v2 = tmp_path / "v2.yaml"
    v2.write_text(MERCHANT.read_text().replace("priority: low", "priority: normal"))
    assert "v2 in demo" in run(env, "playbooks", "publish", str(v2)).output
    listed = run(env, "playbooks", "list")
    assert listed.output.startswith("platform-merchant-outreach\tv2\tPlatform merchant outreach")
    shown = run(env, "playbooks", "show", "platform-merchant-outreach", "--version", "1")
    assert "platform-merchant-outreach v1: Platform merchant outreach" in shown.output
    assert "  rule overdue: kinds node_overdue; paths platform-merchant" in shown.output
    assert (
        "    step overdue_reminder: target_roles (else decision_maker) by email > dingtalk > "
        "feishu > wecom, template overdue_reminder, 09:00-18:00 local (normal, onboarding)"
    ) in shown.output
    assert (
        "    step risk_visit: task for the account owner, due P3D, escalated to decision_maker "
        "P2D later (critical)"
    ) in shown.output
    source = run(env, "playbooks", "show", "platform-merchant-outreach", "--source")
    assert source.output == v2.read_text()
    missing = run(env, "playbooks", "show", "nope", code=1)
    assert "no playbook 'nope'" in missing.output
    elsewhere = run(env, "playbooks", "list", "--workspace", "nowhere", code=1)
    assert "no workspace named 'nowhere'" in elsewhere.output
