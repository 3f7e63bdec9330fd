"""The model file (JSON, no pickle) and the training report, as pydantic models.

A file holds the feature names, the standardisation (means, scales, log flags), the fitted
parameters (logistic coefficients and intercept, or the boosted trees as arrays) and the
metadata: the digest of the metric definitions it was trained with, when, and the
backtest's figures. The ``--json`` report of ``milepost scoring train`` is the metadata.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from services.scoring.model.predictor import ModelKind

FORMAT: Literal["milepost.churn-model"] = "milepost.churn-model"


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


Number = Annotated[float, AfterValidator(_finite)]
Share = Annotated[float, Field(ge=0, le=1)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CalibrationRow(Model):
    low: Share
    high: Share
    count: int = Field(ge=1)
    predicted: Share = Field(description="Mean predicted probability in the bin.")
    observed: Share = Field(description="Share of the bin's snapshots that churned.")


class BacktestFigures(Model):
    split_at: AwareDatetime = Field(description="Train before it (horizon closed), test after.")
    train_snapshots: int = Field(ge=1)
    train_churned: int = Field(ge=0)
    train_base_rate: Share
    test_snapshots: int = Field(ge=1)
    test_churned: int = Field(ge=0)
    test_base_rate: Share
    straddling_snapshots: int = Field(ge=0, description="Label window across the cut: unused.")
    auc: Share | None = Field(description="None when the test set has one class only.")
    brier: Share
    brier_reference: Share = Field(description="Brier score of always predicting the base rate.")
    calibration: list[CalibrationRow]


class DriverRow(Model):
    feature: str
    mean_abs_contribution: Number


class Metadata(Model):
    metrics_digest: str
    north_star: str
    horizon_days: int = Field(ge=1)
    trained_at: AwareDatetime
    history_end: AwareDatetime
    seed: int
    accounts: int = Field(ge=0)
    snapshots: int = Field(ge=0, description="Labelled snapshots the kept model is fitted on.")
    churned: int = Field(ge=0)
    censored_snapshots: int = Field(ge=0)
    invalid_events: int = Field(ge=0)
    backtest: BacktestFigures
    drivers: list[DriverRow]


class LogisticPart(Model):
    coefficients: list[Number]
    intercept: Number


class TreePart(Model):
    left: list[int]
    right: list[int]
    feature: list[Annotated[int, Field(ge=0)]]
    threshold: list[Number]
    value: list[Number]


class GbmPart(Model):
    init: Number
    learning_rate: Number
    trees: list[TreePart] = Field(min_length=1)


class ModelDocument(Model):
    format: Literal["milepost.churn-model"] = FORMAT
    version: Literal[1] = 1
    kind: ModelKind
    features: list[str] = Field(min_length=1)
    means: list[Number]
    scales: list[Annotated[float, AfterValidator(_finite), Field(gt=0)]]
    logged: list[bool] = Field(description="Whether each feature is taken as log1p first.")
    logistic: LogisticPart | None = None
    gbm: GbmPart | None = None
    metadata: Metadata

    @model_validator(mode="after")
    def _check_shapes(self) -> ModelDocument:
        size = len(self.features)
        if not len(self.means) == len(self.scales) == len(self.logged) == size:
            raise ValueError(f"means, scales and logged need one value per feature ({size})")
        if self.kind is ModelKind.LOGISTIC:
            if self.logistic is None or self.gbm is not None:
                raise ValueError("a logistic model has a 'logistic' part and no 'gbm' part")
            if len(self.logistic.coefficients) != size:
                raise ValueError(f"coefficients need one value per feature ({size})")
        else:
            if self.gbm is None or self.logistic is not None:
                raise ValueError("a gbm model has a 'gbm' part and no 'logistic' part")
            if any(f >= size for tree in self.gbm.trees for f in tree.feature):
                raise ValueError(f"a tree splits on a feature index beyond {size - 1}")
        return self
