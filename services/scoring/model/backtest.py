"""The time split and the figures of a backtest: AUC, Brier score, calibration. Pure.

A model is trained on what was known at the cut date and tested on what came after. A
training snapshot's label must be known at the cut, so only snapshots whose whole horizon
ends at or before the cut train; test snapshots are taken at or after the cut. Snapshots
in between (label window straddling the cut) are left out of both.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from services.scoring.metrics import DAY
from services.scoring.model.errors import NotEnoughHistory
from services.scoring.model.features import Snapshot

DEFAULT_TEST_FRACTION = 0.3
CALIBRATION_BINS = 10


@dataclass(frozen=True, slots=True)
class Split:
    cut: int
    train: tuple[Snapshot, ...]
    test: tuple[Snapshot, ...]
    straddling: int
    """Snapshots before the cut whose label window ends after it: in neither set."""


def default_cut(snapshots: Sequence[Snapshot], test_fraction: float) -> int:
    """The latest snapshot date that leaves at least ``test_fraction`` of the snapshots at
    or after it."""
    if not 0 < test_fraction < 1:
        raise ValueError("the test fraction must be between 0 and 1")
    if not snapshots:
        raise NotEnoughHistory("no labelled snapshots: the history is shorter than the horizon")
    dates = sorted(s.at for s in snapshots)
    wanted = math.ceil(test_fraction * len(dates))
    return dates[len(dates) - wanted]


def time_split(snapshots: Sequence[Snapshot], *, cut: int, horizon_days: int) -> Split:
    """Train on snapshots whose horizon ends by ``cut``, test on those at or after it.

    Raises :class:`NotEnoughHistory` when either side lacks a churned or a retained case.
    """
    horizon = horizon_days * DAY
    train = tuple(s for s in snapshots if s.at + horizon <= cut)
    test = tuple(s for s in snapshots if s.at >= cut)
    for name, side in (("training", train), ("test", test)):
        positives = sum(s.label for s in side)
        if positives == 0 or positives == len(side):
            raise NotEnoughHistory(
                f"the {name} set has {len(side)} snapshots, {positives} of them churned: it "
                "needs both churned and retained accounts (move --split-at or add history)"
            )
    return Split(cut, train, test, len(snapshots) - len(train) - len(test))


def auc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """Area under the ROC curve: the chance a random churned case scores above a random
    retained one (ties count half). None without both classes."""
    positives = sum(labels)
    negatives = len(labels) - positives
    if not positives or not negatives:
        return None
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    rank_sum = 0.0
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        average_rank = (i + j) / 2 + 1
        rank_sum += average_rank * sum(labels[order[k]] for k in range(i, j + 1))
        i = j + 1
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def brier(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """Mean squared difference between predicted probability and outcome (0 is perfect)."""
    if not scores:
        raise ValueError("a Brier score needs at least one prediction")
    return math.fsum((p - y) ** 2 for p, y in zip(scores, labels, strict=True)) / len(scores)


@dataclass(frozen=True, slots=True)
class CalibrationBin:
    """Cases with predictions in ``[low, high]``: mean predicted against observed rate."""

    low: float
    high: float
    count: int
    predicted: float
    observed: float


def calibration(
    scores: Sequence[float], labels: Sequence[bool], bins: int = CALIBRATION_BINS
) -> tuple[CalibrationBin, ...]:
    """Equal-count bins by predicted probability (deciles by default; fewer with fewer cases)."""
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    count = min(bins, len(order))
    table: list[CalibrationBin] = []
    for b in range(count):
        members = order[b * len(order) // count : (b + 1) * len(order) // count]
        predicted = [scores[i] for i in members]
        table.append(
            CalibrationBin(
                low=predicted[0],
                high=predicted[-1],
                count=len(members),
                predicted=math.fsum(predicted) / len(members),
                observed=sum(labels[i] for i in members) / len(members),
            )
        )
    return tuple(table)


@dataclass(frozen=True, slots=True)
class Backtest:
    """A model trained before ``cut`` and scored on the snapshots after it.

    ``brier_reference`` is the Brier score of always predicting the training base rate: a
    model is useful when its ``brier`` is clearly below it.
    """

    cut: int
    train_count: int
    train_positives: int
    test_count: int
    test_positives: int
    straddling: int
    auc: float | None
    brier: float
    brier_reference: float
    calibration: tuple[CalibrationBin, ...]

    @property
    def train_base_rate(self) -> float:
        return self.train_positives / self.train_count

    @property
    def test_base_rate(self) -> float:
        return self.test_positives / self.test_count


def backtest(split: Split, scores: Sequence[float]) -> Backtest:
    """The figures of ``scores`` (one per test snapshot, in order) against their labels."""
    labels = [s.label for s in split.test]
    train_positives = sum(s.label for s in split.train)
    base_rate = train_positives / len(split.train)
    return Backtest(
        cut=split.cut,
        train_count=len(split.train),
        train_positives=train_positives,
        test_count=len(split.test),
        test_positives=sum(labels),
        straddling=split.straddling,
        auc=auc(scores, labels),
        brier=brier(scores, labels),
        brier_reference=brier([base_rate] * len(labels), labels),
        calibration=calibration(scores, labels),
    )
