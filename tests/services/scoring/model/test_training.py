"""Training on the seeded synthetic history: backtest quality, saved files, predictions."""

from __future__ import annotations

import math
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from services.scoring.definitions import MetricDefinitions, load_metrics
from services.scoring.model.commands import REFERENCE_METRICS
from services.scoring.model.errors import AccountNotFound, ModelFileInvalid, ModelMismatch
from services.scoring.model.features import Dataset, build_dataset
from services.scoring.model.history import History, history_of
from services.scoring.model.modelfile import document_of, load_model, save_model
from services.scoring.model.prediction import predict_account
from services.scoring.model.predictor import ModelKind
from services.scoring.model.sklearn_adapter import fit_scorer
from services.scoring.model.synthetic import DEMO_WORKSPACE, synthetic_history
from services.scoring.model.training import ChurnModel, TrainingOptions, train
from shared.clock import FrozenClock

CLOCK = FrozenClock(datetime(2026, 7, 1, 12, tzinfo=UTC))


@pytest.fixture(scope="module")
def definitions() -> MetricDefinitions:
    return load_metrics(REFERENCE_METRICS)


@pytest.fixture(scope="module")
def history() -> History:
    return history_of(synthetic_history(seed=7))


@pytest.fixture(scope="module")
def dataset(history: History, definitions: MetricDefinitions) -> Dataset:
    return build_dataset(history, definitions, horizon_days=90)


@pytest.fixture(scope="module")
def models(
    dataset: Dataset, history: History, definitions: MetricDefinitions
) -> dict[ModelKind, ChurnModel]:
    return {
        kind: train(
            dataset,
            definitions,
            TrainingOptions(kind=kind),
            fit_scorer,
            trained_at=CLOCK.now(),
            history_end=history.end,
        )
        for kind in ModelKind
    }


@pytest.fixture(params=list(ModelKind))
def model(request: pytest.FixtureRequest, models: dict[ModelKind, ChurnModel]) -> ChurnModel:
    return models[request.param]


def test_synthetic_history_is_seeded() -> None:
    first = synthetic_history(seed=3, accounts=4, days=200)
    again = synthetic_history(seed=3, accounts=4, days=200)
    other = synthetic_history(seed=4, accounts=4, days=200)
    assert [e.model_dump() for e in first] == [e.model_dump() for e in again]
    assert [e.event_id for e in first] != [e.event_id for e in other]
    assert [e.timestamp for e in first] == sorted(e.timestamp for e in first)
    type(first[0]).model_validate_json(first[0].model_dump_json())


def test_the_synthetic_history_has_churn_to_learn(dataset: Dataset) -> None:
    churned = sum(s.label for s in dataset.snapshots)
    assert dataset.accounts == 150
    assert 0.05 < churned / len(dataset.snapshots) < 0.2
    assert dataset.censored > 0


def test_backtest_separates_churn_from_retention(model: ChurnModel) -> None:
    figures = model.metadata.backtest
    assert figures.auc is not None
    assert figures.auc > 0.75
    assert figures.brier < figures.brier_reference
    assert figures.test_positives > 20
    assert len(figures.calibration) == 10
    top = figures.calibration[-1]
    bottom = figures.calibration[0]
    assert top.observed > 4 * bottom.observed


def test_metadata_records_what_the_model_was_trained_with(
    model: ChurnModel, definitions: MetricDefinitions, dataset: Dataset
) -> None:
    meta = model.metadata
    assert meta.metrics_digest == definitions.digest
    assert meta.north_star == "orders"
    assert meta.trained_at == CLOCK.now()
    assert meta.snapshots == len(dataset.snapshots)
    assert meta.backtest.train_count + meta.backtest.test_count < meta.snapshots
    assert meta.drivers
    assert model.predictor.features == dataset.features


def test_saved_model_predicts_identically(
    model: ChurnModel, dataset: Dataset, tmp_path: Path
) -> None:
    path = tmp_path / "model.json"
    save_model(model, path)
    loaded = load_model(path)
    assert document_of(loaded) == document_of(model)
    for snapshot in dataset.snapshots:
        assert loaded.predictor.probability(snapshot.values) == model.predictor.probability(
            snapshot.values
        )
    assert not path.read_bytes().startswith(b"\x80")  # JSON, never a pickle
    assert orjson.loads(path.read_bytes())["kind"] == model.predictor.kind.value


def test_predictions_are_explained_exactly(
    model: ChurnModel, history: History, definitions: MetricDefinitions
) -> None:
    prediction = predict_account(model, history, definitions, "demo-001")
    explanation = prediction.explanation
    assert prediction.workspace_id == DEMO_WORKSPACE
    assert prediction.at == history.end + 1
    assert explanation.base + math.fsum(c.contribution for c in explanation.contributions) == (
        pytest.approx(explanation.log_odds)
    )
    assert explanation.probability == pytest.approx(1 / (1 + math.exp(-explanation.log_odds)))
    sizes = [abs(c.contribution) for c in explanation.contributions]
    assert sizes == sorted(sizes, reverse=True)


def test_prediction_needs_the_training_metrics_and_a_known_account(
    model: ChurnModel, history: History, definitions: MetricDefinitions
) -> None:
    other = load_metrics(
        "metrics.yaml",
        text="metrics:\n  - {id: logins, name: Logins, kind: count, event: Logged In, "
        "windows: [P7D], north_star: true}\n",
    )
    with pytest.raises(ModelMismatch, match="same --metrics file"):
        predict_account(model, history, other, "demo-001")
    with pytest.raises(AccountNotFound, match="nobody"):
        predict_account(model, history, definitions, "nobody")
    with pytest.raises(AccountNotFound):
        predict_account(model, history, definitions, "demo-001", workspace_id="elsewhere")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(means=d["means"][:-1]), "means, scales and logged need one value"),
        (lambda d: d["metadata"].pop("metrics_digest"), "metadata.metrics_digest"),
        (lambda d: d.update(format="pickle"), "format"),
        (lambda d: d.update(scales=[0.0] * len(d["scales"])), "scales.0"),
    ],
)
def test_invalid_model_files_are_refused_with_the_field(
    model: ChurnModel, tmp_path: Path, change: object, message: str
) -> None:
    path = tmp_path / "model.json"
    save_model(model, path)
    document = orjson.loads(path.read_bytes())
    change(document)  # type: ignore[operator]
    path.write_bytes(orjson.dumps(document))
    with pytest.raises(ModelFileInvalid, match=message) as caught:
        load_model(path)
    assert str(path) in str(caught.value)


def test_unreadable_or_malformed_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelFileInvalid, match="cannot read"):
        load_model(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ModelFileInvalid, match=r"broken\.json"):
        load_model(broken)


def test_a_backwards_tree_is_refused(tmp_path: Path, models: dict[ModelKind, ChurnModel]) -> None:
    boosted = models[ModelKind.GBM]
    path = tmp_path / "gbm.json"
    save_model(boosted, path)
    document = orjson.loads(path.read_bytes())
    document["gbm"]["trees"][0]["left"][0] = 0
    path.write_bytes(orjson.dumps(document))
    with pytest.raises(ModelFileInvalid, match="not a later node"):
        load_model(path)


def test_scikit_learn_is_imported_only_to_fit() -> None:
    code = (
        "import sys\n"
        "import services.scoring.model.commands, services.scoring.model.sklearn_adapter\n"
        "import services.scoring.model.modelfile, services.scoring.model.prediction\n"
        "import services.scoring.model.report\n"
        "assert 'sklearn' not in sys.modules, 'sklearn imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[4])  # noqa: S603 - this interpreter
