"""Training: split the snapshots by time, fit, backtest, refit on everything. Pure apart
from the fitter it is given (:func:`services.scoring.model.sklearn_adapter.fit_scorer`).

The backtest figures describe the method fitted on the snapshots known at the cut and
scored on the snapshots after it. The saved model is then fitted the same way on every
labelled snapshot, so it has seen the most recent behaviour; its figures are the
backtest's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from services.scoring.definitions import MetricDefinitions
from services.scoring.model.backtest import (
    DEFAULT_TEST_FRACTION,
    Backtest,
    backtest,
    default_cut,
    time_split,
)
from services.scoring.model.errors import NotEnoughHistory
from services.scoring.model.features import Dataset, Snapshot
from services.scoring.model.predictor import (
    LogisticScorer,
    ModelKind,
    Predictor,
    Standardiser,
    TreeEnsemble,
)

DEFAULT_HORIZON_DAYS = 90
DEFAULT_SEED = 7
DRIVERS_KEPT = 10


class Fitter(Protocol):
    def __call__(
        self, kind: ModelKind, rows: Sequence[Sequence[float]], labels: Sequence[bool], *, seed: int
    ) -> LogisticScorer | TreeEnsemble:
        """Fit a scorer of ``kind`` on standardised rows and their labels."""
        ...


@dataclass(frozen=True, slots=True)
class TrainingOptions:
    kind: ModelKind = ModelKind.LOGISTIC
    split_at: int | None = None
    """The cut date (epoch seconds); None: :func:`default_cut` with ``test_fraction``."""
    test_fraction: float = DEFAULT_TEST_FRACTION
    seed: int = DEFAULT_SEED


@dataclass(frozen=True, slots=True)
class Driver:
    """A feature's mean absolute contribution (log-odds) over the test snapshots."""

    feature: str
    weight: float


@dataclass(frozen=True, slots=True)
class ModelMetadata:
    metrics_digest: str
    north_star: str
    horizon_days: int
    trained_at: datetime
    history_end: int
    seed: int
    accounts: int
    snapshots: int
    churned: int
    censored: int
    invalid_events: int
    backtest: Backtest
    drivers: tuple[Driver, ...]


@dataclass(frozen=True, slots=True)
class ChurnModel:
    predictor: Predictor
    metadata: ModelMetadata


def train(
    dataset: Dataset,
    definitions: MetricDefinitions,
    options: TrainingOptions,
    fit: Fitter,
    *,
    trained_at: datetime,
    history_end: int,
) -> ChurnModel:
    """Backtest on a time split, then fit the model to keep on every labelled snapshot."""
    snapshots = dataset.snapshots
    cut = (
        options.split_at
        if options.split_at is not None
        else default_cut(snapshots, options.test_fraction)
    )
    split = time_split(snapshots, cut=cut, horizon_days=dataset.horizon_days)
    trial = _fit(options, dataset.features, split.train, fit)
    scores = [trial.probability(s.values) for s in split.test]
    figures = backtest(split, scores)
    kept = _fit(options, dataset.features, snapshots, fit)
    return ChurnModel(
        kept,
        ModelMetadata(
            metrics_digest=definitions.digest,
            north_star=definitions.north_star,
            horizon_days=dataset.horizon_days,
            trained_at=trained_at,
            history_end=history_end,
            seed=options.seed,
            accounts=dataset.accounts,
            snapshots=len(snapshots),
            churned=sum(s.label for s in snapshots),
            censored=dataset.censored,
            invalid_events=dataset.invalid_events,
            backtest=figures,
            drivers=drivers(trial, split.test),
        ),
    )


def drivers(predictor: Predictor, snapshots: Sequence[Snapshot]) -> tuple[Driver, ...]:
    """The features that move predictions most over ``snapshots``, largest first."""
    totals = [0.0] * len(predictor.features)
    for snapshot in snapshots:
        for i, item in enumerate(_contributions(predictor, snapshot)):
            totals[i] += abs(item)
    ranked = sorted(
        (
            Driver(name, total / len(snapshots))
            for name, total in zip(predictor.features, totals, strict=True)
        ),
        key=lambda d: (-d.weight, d.feature),
    )
    return tuple(ranked[:DRIVERS_KEPT])


def _contributions(predictor: Predictor, snapshot: Snapshot) -> tuple[float, ...]:
    return predictor.scorer.attribution(predictor.standardiser.apply(snapshot.values))[1]


def _fit(
    options: TrainingOptions, features: tuple[str, ...], snapshots: Sequence[Snapshot], fit: Fitter
) -> Predictor:
    if not snapshots:
        raise NotEnoughHistory("no snapshots to fit on")
    standardiser = Standardiser.fit([s.values for s in snapshots])
    rows = [standardiser.apply(s.values) for s in snapshots]
    scorer = fit(options.kind, rows, [s.label for s in snapshots], seed=options.seed)
    if not all(math.isfinite(x) for x in _parameters(scorer)):
        raise NotEnoughHistory("the fit did not converge to finite parameters")
    return Predictor(options.kind, features, standardiser, scorer)


def _parameters(scorer: LogisticScorer | TreeEnsemble) -> list[float]:
    if isinstance(scorer, LogisticScorer):
        return [*scorer.coefficients, scorer.intercept]
    return [scorer.init, *(v for tree in scorer.trees for v in tree.value)]
