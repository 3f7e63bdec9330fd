"""The time split (no training label reaches past the cut) and the backtest figures."""

from __future__ import annotations

import pytest

from services.scoring.model.backtest import (
    auc,
    backtest,
    brier,
    calibration,
    default_cut,
    time_split,
)
from services.scoring.model.errors import NotEnoughHistory
from services.scoring.model.features import Snapshot

DAY = 86400
HORIZON = 90


def snapshots() -> list[Snapshot]:
    """Twelve monthly (30-day) dates, five accounts each, churn in every date's account 0."""
    return [
        Snapshot(("ws", f"a{n}"), month * 30 * DAY, (float(n),), label=n == 0)
        for month in range(12)
        for n in range(5)
    ]


def test_no_training_label_reaches_past_the_cut() -> None:
    cut = 7 * 30 * DAY
    split = time_split(snapshots(), cut=cut, horizon_days=HORIZON)
    assert split.train
    assert split.test
    assert all(s.at + HORIZON * DAY <= cut for s in split.train)
    assert all(s.at >= cut for s in split.test)
    assert not {(s.account, s.at) for s in split.train} & {(s.account, s.at) for s in split.test}
    # month 4's horizon ends on the cut, so it trains; months 5 and 6 see past it
    assert max(s.at for s in split.train) == 4 * 30 * DAY
    assert split.straddling == 10
    assert len(split.train) + len(split.test) + split.straddling == 60


def test_default_cut_keeps_the_test_fraction() -> None:
    cut = default_cut(snapshots(), 0.3)
    assert cut == 8 * 30 * DAY  # months 8 to 11: 20 of 60, the fewest dates reaching 30%
    assert sum(s.at >= cut for s in snapshots()) >= 0.3 * 60
    with pytest.raises(ValueError, match="between 0 and 1"):
        default_cut(snapshots(), 1.0)
    with pytest.raises(NotEnoughHistory, match="shorter than the horizon"):
        default_cut([], 0.3)


def test_a_side_without_churn_is_refused() -> None:
    retained = [s for s in snapshots() if not s.label or s.at < 5 * 30 * DAY]
    with pytest.raises(NotEnoughHistory, match="test set has 16 snapshots, 0 of them churned"):
        time_split(retained, cut=8 * 30 * DAY, horizon_days=HORIZON)


def test_auc_counts_pairs_and_half_ties() -> None:
    assert auc([0.1, 0.4, 0.35, 0.8], [False, False, True, True]) == pytest.approx(0.75)
    assert auc([0.5, 0.5, 0.5], [True, False, False]) == pytest.approx(0.5)
    assert auc([0.9, 0.1], [True, False]) == 1.0
    assert auc([0.9, 0.1], [False, True]) == 0.0
    assert auc([0.2, 0.3], [False, False]) is None


def test_brier_score() -> None:
    assert brier([1.0, 0.0], [True, False]) == 0.0
    assert brier([0.8, 0.4], [True, False]) == pytest.approx((0.04 + 0.16) / 2)


def test_calibration_bins_by_predicted_probability() -> None:
    scores = [i / 20 for i in range(20)]
    labels = [i >= 15 for i in range(20)]
    table = calibration(scores, labels, bins=4)
    assert [row.count for row in table] == [5, 5, 5, 5]
    assert [row.observed for row in table] == [0.0, 0.0, 0.0, 1.0]
    assert table[0].low == 0.0
    assert table[0].high == pytest.approx(0.2)
    assert table[3].predicted == pytest.approx((0.75 + 0.8 + 0.85 + 0.9 + 0.95) / 5)
    assert len(calibration([0.1, 0.9], [False, True])) == 2


def test_backtest_figures() -> None:
    split = time_split(snapshots(), cut=8 * 30 * DAY, horizon_days=HORIZON)
    scores = [0.9 if s.label else 0.1 for s in split.test]
    figures = backtest(split, scores)
    assert figures.auc == 1.0
    assert figures.brier == pytest.approx(0.01)
    assert figures.train_base_rate == pytest.approx(0.2)
    assert figures.test_count == 20
    assert figures.test_positives == 4
    # always predicting 0.2 when 20% churn: 0.2 * 0.8^2 + 0.8 * 0.2^2
    assert figures.brier_reference == pytest.approx(0.16)
