"""A trained churn model as plain numbers, its predictions and their explanations. Pure.

Inputs are standardised with the training means and scales (after ``log1p`` for features
that were never negative in training); a missing figure becomes the mean (0 once
standardised). Both kinds of model produce a log-odds value that is exactly
a base plus one contribution per feature, so an explanation always adds up:

* logistic regression: base = intercept, contribution = coefficient x standardised value;
* gradient boosting: trees are walked from the root, and each split's change in the
  node's expected value (the mean of its leaves, weighted by training samples) goes to
  the split's feature (Saabas' path attribution). It is an approximation: a feature split
  on near the leaves gets more credit than a Shapley value would give it, and interactions
  are credited to whichever feature splits first.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

Values = Sequence[float | None]


class ModelKind(StrEnum):
    LOGISTIC = "logistic"
    GBM = "gbm"


@dataclass(frozen=True, slots=True)
class Standardiser:
    """Per-feature transform, then training mean and scale (standard deviation; 1 for a
    constant). ``logged`` features (never negative in training: counts, sums, days) are
    taken as ``log1p`` first, so a few very large accounts do not dominate the fit."""

    means: tuple[float, ...]
    scales: tuple[float, ...]
    logged: tuple[bool, ...]

    def __post_init__(self) -> None:
        if not len(self.means) == len(self.scales) == len(self.logged):
            raise ValueError("means, scales and log flags need one value per feature")

    @classmethod
    def fit(cls, rows: Sequence[Values]) -> Standardiser:
        """Fit on the present values of each column."""
        if not rows:
            raise ValueError("standardising needs at least one row")
        means: list[float] = []
        scales: list[float] = []
        logged: list[bool] = []
        for column in zip(*rows, strict=True):
            present = [v for v in column if v is not None]
            log = bool(present) and min(present) >= 0
            if log:
                present = [math.log1p(v) for v in present]
            mean = math.fsum(present) / len(present) if present else 0.0
            variance = (
                math.fsum((v - mean) ** 2 for v in present) / len(present) if present else 0.0
            )
            means.append(mean)
            scales.append(math.sqrt(variance) if variance > 1e-24 else 1.0)
            logged.append(log)
        return cls(tuple(means), tuple(scales), tuple(logged))

    def apply(self, values: Values) -> tuple[float, ...]:
        if len(values) != len(self.means):
            raise ValueError(f"expected {len(self.means)} feature values, got {len(values)}")
        return tuple(
            0.0 if v is None else ((math.log1p(max(0.0, v)) if log else v) - mean) / scale
            for v, mean, scale, log in zip(
                values, self.means, self.scales, self.logged, strict=True
            )
        )

    def typical(self, feature: int) -> float:
        """The feature's value at the training mean, in its own units."""
        mean = self.means[feature]
        return math.expm1(mean) if self.logged[feature] else mean


class Scorer(Protocol):
    def attribution(self, z: Sequence[float]) -> tuple[float, tuple[float, ...]]:
        """(base, per-feature contributions) in log-odds; their sum is the prediction."""
        ...


@dataclass(frozen=True, slots=True)
class LogisticScorer:
    coefficients: tuple[float, ...]
    intercept: float

    def attribution(self, z: Sequence[float]) -> tuple[float, tuple[float, ...]]:
        return self.intercept, tuple(c * x for c, x in zip(self.coefficients, z, strict=True))


@dataclass(frozen=True, slots=True)
class Tree:
    """A binary regression tree in arrays (node 0 is the root; a leaf has ``left == -1``):
    go left when ``z[feature] <= threshold``; ``value`` is each node's expected output."""

    left: tuple[int, ...]
    right: tuple[int, ...]
    feature: tuple[int, ...]
    threshold: tuple[float, ...]
    value: tuple[float, ...]

    def __post_init__(self) -> None:
        size = len(self.left)
        if not size or any(
            len(column) != size for column in (self.right, self.feature, self.threshold, self.value)
        ):
            raise ValueError("a tree's arrays must have one equal, non-zero length")
        for node in range(size):
            for child in (self.left[node], self.right[node]):
                if child != -1 and not node < child < size:
                    raise ValueError(f"node {node} points to {child}, not a later node")


def expected_values(
    left: Sequence[int],
    right: Sequence[int],
    leaf_values: Sequence[float],
    weights: Sequence[float],
) -> tuple[float, ...]:
    """Each node's expected output: leaves keep theirs, an inner node takes the
    sample-weighted mean of its children (children come after their parent)."""
    values = list(leaf_values)
    mass = list(weights)
    for node in range(len(left) - 1, -1, -1):
        a, b = left[node], right[node]
        if a == -1:
            continue
        total = mass[a] + mass[b]
        values[node] = (mass[a] * values[a] + mass[b] * values[b]) / total if total else 0.0
        mass[node] = total
    return tuple(values)


@dataclass(frozen=True, slots=True)
class TreeEnsemble:
    """Gradient-boosted trees: log-odds = ``init`` + ``learning_rate`` x the trees' sum."""

    init: float
    learning_rate: float
    trees: tuple[Tree, ...]
    features: int

    def attribution(self, z: Sequence[float]) -> tuple[float, tuple[float, ...]]:
        base = self.init
        contributions = [0.0] * self.features
        rate = self.learning_rate
        for tree in self.trees:
            node = 0
            base += rate * tree.value[0]
            while tree.left[node] != -1:
                feature = tree.feature[node]
                child = tree.left[node] if z[feature] <= tree.threshold[node] else tree.right[node]
                contributions[feature] += rate * (tree.value[child] - tree.value[node])
                node = child
        return base, tuple(contributions)


@dataclass(frozen=True, slots=True)
class Contribution:
    feature: str
    value: float | None
    """The raw feature value (None: missing, taken as the training mean)."""
    contribution: float
    """Log-odds added by this feature."""


@dataclass(frozen=True, slots=True)
class Explanation:
    """A probability, its log-odds as ``base`` plus every feature's contribution (sorted by
    size, largest first)."""

    probability: float
    log_odds: float
    base: float
    contributions: tuple[Contribution, ...]

    def top(self, count: int) -> tuple[Contribution, ...]:
        return self.contributions[:count]


@dataclass(frozen=True, slots=True)
class Predictor:
    """Features, standardiser and scorer: what predicting needs, and nothing else."""

    kind: ModelKind
    features: tuple[str, ...]
    standardiser: Standardiser
    scorer: LogisticScorer | TreeEnsemble

    def probability(self, values: Values) -> float:
        base, contributions = self.scorer.attribution(self.standardiser.apply(values))
        return sigmoid(base + math.fsum(contributions))

    def explain(self, values: Values) -> Explanation:
        base, contributions = self.scorer.attribution(self.standardiser.apply(values))
        log_odds = base + math.fsum(contributions)
        ranked = sorted(
            (
                Contribution(name, v, c)
                for name, v, c in zip(self.features, values, contributions, strict=True)
            ),
            key=lambda item: (-abs(item.contribution), item.feature),
        )
        return Explanation(sigmoid(log_odds), log_odds, base, tuple(ranked))


def sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)
