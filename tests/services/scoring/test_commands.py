"""``milepost scoring metrics``: validate, publish, list and show; and the command group."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from services.cli import app
from services.scoring.catalog.service import REFERENCE_METRICS


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"MILEPOST_DATA_DIR": str(tmp_path / "data"), "MILEPOST_DATABASE_URL": ""}


def run(env: dict[str, str], *args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(app, list(args), env=env)
    assert result.exit_code == code, result.output
    return result


def test_validate_names_file_line_and_field(env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("metrics:\n  - id: orders\n    name: Orders\n    kind: count\n")
    result = run(env, "scoring", "metrics", "validate", str(REFERENCE_METRICS), str(bad), code=1)
    assert f"{REFERENCE_METRICS}: valid:" in result.stdout
    assert "North Star orders" in result.stdout
    assert f"{bad}:2:5: metrics[0].event: a count metric needs 'event'" in result.stderr


def test_publish_list_and_show(env: dict[str, str], tmp_path: Path) -> None:
    run(env, "workspace", "create", "acme")
    published = run(env, "scoring", "metrics", "publish", str(REFERENCE_METRICS), "-w", "acme")
    assert "published metric definitions v1 in acme" in published.stdout
    again = run(env, "scoring", "metrics", "publish", str(REFERENCE_METRICS), "-w", "acme", code=1)
    assert "same content" in again.stderr
    changed = tmp_path / "metrics.yaml"
    changed.write_text(REFERENCE_METRICS.read_text().replace("name: GMV", "name: Sales"))
    run(env, "scoring", "metrics", "publish", str(changed), "-w", "acme")

    listed = run(env, "scoring", "metrics", "list", "-w", "acme").stdout.splitlines()
    assert [line.split("\t")[:2] for line in listed] == [["v2", "current"], ["v1", ""]]
    shown = run(env, "scoring", "metrics", "show", "-w", "acme").stdout
    assert shown.startswith("metric definitions v2 in acme (current)")
    assert "  orders\tcount\tP1D,P7D,P28D,P90D\tOrders completed\t[north star]" in shown
    assert "  gmv\tsum\tP7D,P28D,P90D\tSales" in shown
    source = run(env, "scoring", "metrics", "show", "1", "-w", "acme", "--source").stdout
    assert source == REFERENCE_METRICS.read_text()


def test_a_workspace_without_definitions_is_scored_with_the_reference_ones(
    env: dict[str, str],
) -> None:
    run(env, "workspace", "create", "acme")
    listed = run(env, "scoring", "metrics", "list", "-w", "acme").stdout
    assert "it is scored with the reference ones" in listed
    assert (
        "no workspace named 'nope'"
        in run(env, "scoring", "metrics", "list", "-w", "nope", code=1).stderr
    )


def test_the_group_lists_metrics_and_the_churn_model() -> None:
    result = CliRunner().invoke(app, ["scoring", "--help"])
    assert result.exit_code == 0
    for command in ("metrics", "train", "predict", "demo-events"):
        assert command in result.stdout
