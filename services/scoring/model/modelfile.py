"""Saving and loading a churn model as JSON (:mod:`services.scoring.model.schemas`).

Nothing in a model file is executed: loading validates numbers and arrays, so a model
file from elsewhere is safe to load (unlike a pickle).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from services.scoring.model.backtest import Backtest, CalibrationBin
from services.scoring.model.errors import ModelFileInvalid
from services.scoring.model.predictor import (
    LogisticScorer,
    Predictor,
    Standardiser,
    Tree,
    TreeEnsemble,
)
from services.scoring.model.schemas import (
    BacktestFigures,
    CalibrationRow,
    DriverRow,
    GbmPart,
    LogisticPart,
    Metadata,
    ModelDocument,
    TreePart,
)
from services.scoring.model.training import ChurnModel, Driver, ModelMetadata


def save_model(model: ChurnModel, path: Path) -> None:
    path.write_bytes(
        orjson.dumps(document_of(model).model_dump(mode="json"), option=orjson.OPT_INDENT_2)
    )


def load_model(path: Path) -> ChurnModel:
    """Read and validate a model file; :class:`ModelFileInvalid` names the file and field."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ModelFileInvalid(f"{path}: cannot read: {exc.strerror or exc}") from exc
    try:
        document = ModelDocument.model_validate_json(raw)
        return model_of(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "(document)"
        raise ModelFileInvalid(f"{path}: {field}: {first['msg']}") from exc
    except ValueError as exc:
        raise ModelFileInvalid(f"{path}: {exc}") from exc


def document_of(model: ChurnModel) -> ModelDocument:
    predictor, meta = model.predictor, model.metadata
    scorer = predictor.scorer
    logistic = gbm = None
    if isinstance(scorer, LogisticScorer):
        logistic = LogisticPart(coefficients=list(scorer.coefficients), intercept=scorer.intercept)
    else:
        gbm = GbmPart(
            init=scorer.init,
            learning_rate=scorer.learning_rate,
            trees=[
                TreePart(
                    left=list(t.left),
                    right=list(t.right),
                    feature=list(t.feature),
                    threshold=list(t.threshold),
                    value=list(t.value),
                )
                for t in scorer.trees
            ],
        )
    return ModelDocument(
        kind=predictor.kind,
        features=list(predictor.features),
        means=list(predictor.standardiser.means),
        scales=list(predictor.standardiser.scales),
        logged=list(predictor.standardiser.logged),
        logistic=logistic,
        gbm=gbm,
        metadata=metadata_document(meta),
    )


def metadata_document(meta: ModelMetadata) -> Metadata:
    """The metadata as written to the file and printed by ``train --json``."""
    figures = meta.backtest
    return Metadata(
        metrics_digest=meta.metrics_digest,
        north_star=meta.north_star,
        horizon_days=meta.horizon_days,
        trained_at=meta.trained_at,
        history_end=_time(meta.history_end),
        seed=meta.seed,
        accounts=meta.accounts,
        snapshots=meta.snapshots,
        churned=meta.churned,
        censored_snapshots=meta.censored,
        invalid_events=meta.invalid_events,
        backtest=BacktestFigures(
            split_at=_time(figures.cut),
            train_snapshots=figures.train_count,
            train_churned=figures.train_positives,
            train_base_rate=figures.train_base_rate,
            test_snapshots=figures.test_count,
            test_churned=figures.test_positives,
            test_base_rate=figures.test_base_rate,
            straddling_snapshots=figures.straddling,
            auc=figures.auc,
            brier=figures.brier,
            brier_reference=figures.brier_reference,
            calibration=[
                CalibrationRow(
                    low=b.low,
                    high=b.high,
                    count=b.count,
                    predicted=b.predicted,
                    observed=b.observed,
                )
                for b in figures.calibration
            ],
        ),
        drivers=[
            DriverRow(feature=d.feature, mean_abs_contribution=d.weight) for d in meta.drivers
        ],
    )


def model_of(document: ModelDocument) -> ChurnModel:
    """The model a validated document describes; ``ValueError`` for a malformed tree."""
    features = tuple(document.features)
    standardiser = Standardiser(
        tuple(document.means), tuple(document.scales), tuple(document.logged)
    )
    scorer: LogisticScorer | TreeEnsemble
    if document.logistic is not None:
        scorer = LogisticScorer(tuple(document.logistic.coefficients), document.logistic.intercept)
    else:
        assert document.gbm is not None
        scorer = TreeEnsemble(
            document.gbm.init,
            document.gbm.learning_rate,
            tuple(
                Tree(
                    tuple(t.left),
                    tuple(t.right),
                    tuple(t.feature),
                    tuple(t.threshold),
                    tuple(t.value),
                )
                for t in document.gbm.trees
            ),
            len(features),
        )
    meta = document.metadata
    figures = meta.backtest
    return ChurnModel(
        Predictor(document.kind, features, standardiser, scorer),
        ModelMetadata(
            metrics_digest=meta.metrics_digest,
            north_star=meta.north_star,
            horizon_days=meta.horizon_days,
            trained_at=meta.trained_at,
            history_end=int(meta.history_end.timestamp()),
            seed=meta.seed,
            accounts=meta.accounts,
            snapshots=meta.snapshots,
            churned=meta.churned,
            censored=meta.censored_snapshots,
            invalid_events=meta.invalid_events,
            backtest=Backtest(
                cut=int(figures.split_at.timestamp()),
                train_count=figures.train_snapshots,
                train_positives=figures.train_churned,
                test_count=figures.test_snapshots,
                test_positives=figures.test_churned,
                straddling=figures.straddling_snapshots,
                auc=figures.auc,
                brier=figures.brier,
                brier_reference=figures.brier_reference,
                calibration=tuple(
                    CalibrationBin(b.low, b.high, b.count, b.predicted, b.observed)
                    for b in figures.calibration
                ),
            ),
            drivers=tuple(Driver(d.feature, d.mean_abs_contribution) for d in meta.drivers),
        ),
    )


def report_json(model: ChurnModel) -> dict[str, Any]:
    """What ``train --json`` prints: the kind, the features and the metadata."""
    return {
        "kind": model.predictor.kind.value,
        "features": list(model.predictor.features),
        **metadata_document(model.metadata).model_dump(mode="json"),
    }


def _time(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)
