"""``milepost scoring train``, ``predict`` and ``demo-events`` through the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner, Result

from services.scoring.model.commands import app
from services.scoring.model.modelfile import load_model


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A model trained with ``--demo``, and the JSON report it printed."""
    model = tmp_path_factory.mktemp("model") / "model.json"
    result = invoke("train", "--demo", "--json", "--out", str(model))
    assert result.exit_code == 0, result.output
    return model, orjson.loads(result.stdout)


@pytest.fixture(scope="module")
def files(
    trained: tuple[Path, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    """The trained model and a small synthetic history to predict on."""
    events = tmp_path_factory.mktemp("events") / "events.jsonl"
    written = invoke("demo-events", "--out", str(events), "--accounts", "40")
    assert written.exit_code == 0, written.output
    assert "of 40 accounts written" in written.output
    return trained[0], events


def test_train_reports_the_backtest_as_json(trained: tuple[Path, dict[str, Any]]) -> None:
    model, report = trained
    assert report["kind"] == "logistic"
    assert report["backtest"]["auc"] > 0.75
    assert report["backtest"]["brier"] < report["backtest"]["brier_reference"]
    assert len(report["backtest"]["calibration"]) == 10
    assert report["horizon_days"] == 90
    assert report["features"][:2] == ["orders.P1D", "orders.P7D"]
    saved = load_model(model)
    assert saved.metadata.backtest.auc == report["backtest"]["auc"]
    assert orjson.loads(model.read_bytes())["metadata"]["backtest"] == report["backtest"]


def test_train_prints_a_readable_report_on_an_events_file(files: tuple[Path, Path]) -> None:
    _, events = files
    result = invoke("train", "--events", str(events), "--model", "gbm", "--horizon", "P60D")
    assert result.exit_code == 0, result.output
    for text in (
        "Churn model: gradient boosting, label: churned within 60 days",
        "History: 40 accounts",
        "AUC",
        "Brier score",
        "Calibration on the test snapshots",
        "Drivers",
    ):
        assert text in result.output


def test_predict_prints_the_probability_and_top_features(files: tuple[Path, Path]) -> None:
    model, events = files
    result = invoke(
        "predict", "--model", str(model), "--events", str(events), "--account", "demo-002"
    )
    assert result.exit_code == 0, result.output
    assert "demo-002 at " in result.output
    assert "chance of churning within 90 days" in result.output
    assert result.output.count("risk\n") == 5
    as_json = invoke(
        "predict",
        "--model",
        str(model),
        "--events",
        str(events),
        "--account",
        "demo-002",
        "--json",
        "--top",
        "3",
        "--at",
        "2026-01-01",
    )
    assert as_json.exit_code == 0, as_json.output
    document = orjson.loads(as_json.stdout)
    assert document["at"] == "2026-01-01T00:00:00+00:00"
    assert 0 <= document["probability"] <= 1
    assert [set(item) for item in document["top_features"]] == [
        {"feature", "value", "typical", "contribution"}
    ] * 3


def test_predict_refuses_other_metrics_and_unknown_accounts(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    model, events = files
    metrics = tmp_path / "metrics.yaml"
    metrics.write_text(
        "metrics:\n  - {id: logins, name: Logins, kind: count, event: Logged In, "
        "windows: [P7D], north_star: true}\n"
    )
    other = invoke(
        "predict",
        "--model",
        str(model),
        "--events",
        str(events),
        "--account",
        "demo-002",
        "--metrics",
        str(metrics),
    )
    assert other.exit_code == 1
    assert "same --metrics file" in other.output
    unknown = invoke("predict", "--model", str(model), "--events", str(events), "--account", "x")
    assert unknown.exit_code == 1
    assert "no events for account 'x'" in unknown.output


def test_train_refuses_bad_arguments_and_thin_history(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    _, events = files
    assert invoke("train").exit_code == 2
    assert invoke("train", "--demo", "--events", str(events)).exit_code == 2
    hours = invoke("train", "--events", str(events), "--horizon", "PT12H")
    assert hours.exit_code == 2
    assert "whole number of days" in hours.output
    early = invoke("train", "--events", str(events), "--split-at", "2025-02-01")
    assert early.exit_code == 1
    assert "the training set has 0 snapshots" in early.output
    missing = invoke("train", "--events", str(tmp_path / "none.jsonl"))
    assert missing.exit_code == 1
    assert "cannot read" in missing.output


def test_help_says_model_files_are_json() -> None:
    result = invoke("train", "--help")
    assert result.exit_code == 0
    assert "never pickles" in result.output


def test_lines_that_are_not_envelopes_are_skipped_and_counted(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    model, events = files
    noisy = tmp_path / "noisy.jsonl"
    noisy.write_bytes(
        events.read_bytes() + b"not json\n" + b'{"timestamp": "2026-01-01T00:00:00Z"}\n'
    )
    result = invoke(
        "predict", "--model", str(model), "--events", str(noisy), "--account", "demo-002"
    )
    assert result.exit_code == 0, result.output
    assert "skipped 2 lines that are not event envelopes (first: line " in result.output
    clean = invoke(
        "predict", "--model", str(model), "--events", str(events), "--account", "demo-002"
    )
    assert result.stdout == clean.stdout


def test_the_commands_are_under_milepost_scoring() -> None:
    from services.cli import app as milepost

    result = CliRunner().invoke(milepost, ["scoring", "--help"])
    assert result.exit_code == 0, result.output
    for command in ("train", "predict", "demo-events"):
        assert command in result.output
