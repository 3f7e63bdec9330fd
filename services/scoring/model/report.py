"""The text reports of ``milepost scoring train`` and ``predict``, and predict's JSON. Pure."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from services.scoring.model.prediction import Prediction
from services.scoring.model.predictor import ModelKind
from services.scoring.model.training import ChurnModel

KIND_NAMES = {ModelKind.LOGISTIC: "logistic regression", ModelKind.GBM: "gradient boosting"}


def training_text(model: ChurnModel, *, saved_to: str | None = None) -> str:
    meta = model.metadata
    figures = meta.backtest
    cut = _day(figures.cut)
    lines = [
        f"Churn model: {KIND_NAMES[model.predictor.kind]}, label: churned within "
        f"{meta.horizon_days} days of a monthly snapshot (North Star: {meta.north_star})",
        f"History: {meta.accounts} accounts up to {_day(meta.history_end)}; "
        f"{meta.snapshots} labelled snapshots, {meta.churned} churned "
        f"({_percent(meta.churned / meta.snapshots if meta.snapshots else 0.0)}); "
        f"{meta.censored} censored (horizon not over yet)",
    ]
    if meta.invalid_events:
        lines.append(f"Skipped {meta.invalid_events} events with a non-numeric amount.")
    lines += [
        "",
        f"Backtest, split at {cut}:",
        f"  train     {figures.train_count:>6} snapshots whose horizon ended before the cut, "
        f"{figures.train_positives} churned (base rate {_percent(figures.train_base_rate)})",
        f"  test      {figures.test_count:>6} snapshots on or after the cut, "
        f"{figures.test_positives} churned (base rate {_percent(figures.test_base_rate)})",
        f"  left out  {figures.straddling:>6} snapshots whose horizon straddles the cut",
        "",
        f"  AUC          {_figure(figures.auc)}   chance that a churned snapshot scores above "
        "a retained one (0.5: no skill)",
        f"  Brier score  {figures.brier:.4f}  mean squared error of the probabilities; "
        f"always predicting the base rate scores {figures.brier_reference:.4f}",
        "",
        "Calibration on the test snapshots (equal-count bins by predicted probability):",
        f"  {'bin':>3}  {'predicted range':<17}  {'count':>5}  {'predicted':>9}  {'observed':>8}",
    ]
    for number, row in enumerate(figures.calibration, start=1):
        span = f"{_percent(row.low)} - {_percent(row.high)}"
        lines.append(
            f"  {number:>3}  {span:<17}  {row.count:>5}  {_percent(row.predicted):>9}  "
            f"{_percent(row.observed):>8}"
        )
    width = max((len(d.feature) for d in meta.drivers), default=7)
    lines += ["", "Drivers (mean absolute log-odds contribution on the test snapshots):"]
    lines += [f"  {d.feature:<{width}}  {d.weight:.3f}" for d in meta.drivers]
    lines.append("")
    lines.append(
        "The saved model is refitted on every labelled snapshot; the figures above are the "
        "backtest's."
    )
    if saved_to is not None:
        lines.append(f"Model saved to {saved_to} (metrics digest {meta.metrics_digest[:12]}).")
    return "\n".join(lines) + "\n"


def prediction_text(model: ChurnModel, prediction: Prediction, *, top: int) -> str:
    meta = model.metadata
    explanation = prediction.explanation
    means = _typical(model)
    shown = explanation.top(top)
    width = max((len(c.feature) for c in shown), default=7)
    lines = [
        f"{prediction.account_id} at {_day(prediction.at)}: "
        f"{_percent(explanation.probability)} chance of churning within {meta.horizon_days} days",
        f"({KIND_NAMES[model.predictor.kind]} trained {meta.trained_at:%Y-%m-%d}, "
        f"backtest AUC {_figure(meta.backtest.auc)}, base rate "
        f"{_percent(meta.backtest.test_base_rate)})",
    ]
    if prediction.cancelled:
        lines.append("Note: the account stands cancelled at this date.")
    lines += [
        "",
        f"Top features (log-odds: base {explanation.base:+.3f}, total {explanation.log_odds:+.3f}):",
        f"  {'feature':<{width}}  {'value':>10}  {'typical':>10}  {'effect':>7}",
    ]
    for item in shown:
        value = "missing" if item.value is None else f"{item.value:.4g}"
        direction = "raises risk" if item.contribution > 0 else "lowers risk"
        lines.append(
            f"  {item.feature:<{width}}  {value:>10}  {means[item.feature]:>10.4g}  "
            f"{item.contribution:>+7.3f}  {direction}"
        )
    return "\n".join(lines) + "\n"


def prediction_json(model: ChurnModel, prediction: Prediction, *, top: int) -> dict[str, Any]:
    meta = model.metadata
    explanation = prediction.explanation
    means = _typical(model)
    return {
        "workspace_id": prediction.workspace_id,
        "account_id": prediction.account_id,
        "at": _time(prediction.at).isoformat(),
        "cancelled": prediction.cancelled,
        "horizon_days": meta.horizon_days,
        "probability": explanation.probability,
        "log_odds": explanation.log_odds,
        "base": explanation.base,
        "top_features": [
            {
                "feature": item.feature,
                "value": item.value,
                "typical": means[item.feature],
                "contribution": item.contribution,
            }
            for item in explanation.top(top)
        ],
        "model": {
            "kind": model.predictor.kind.value,
            "trained_at": meta.trained_at.isoformat(),
            "metrics_digest": meta.metrics_digest,
            "backtest_auc": meta.backtest.auc,
        },
    }


def _typical(model: ChurnModel) -> dict[str, float]:
    """Each feature's value at the training mean (the geometric-style mean of a logged one)."""
    standardiser = model.predictor.standardiser
    return {name: standardiser.typical(i) for i, name in enumerate(model.predictor.features)}


def _figure(value: float | None) -> str:
    return "n/a   " if value is None else f"{value:.4f}"


def _percent(share: float) -> str:
    return f"{share * 100:.1f}%"


def _time(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _day(epoch: int) -> str:
    return f"{_time(epoch):%Y-%m-%d %H:%M} UTC"
