"""Standardisation, predictions and explanations that add up, for both kinds of model."""

from __future__ import annotations

import math

import pytest

from services.scoring.model.predictor import (
    LogisticScorer,
    ModelKind,
    Predictor,
    Standardiser,
    Tree,
    TreeEnsemble,
    expected_values,
    sigmoid,
)


def test_standardiser_logs_non_negative_features_and_fills_missing_with_the_mean() -> None:
    rows = [(0.0, -1.0, None), (3.0, 1.0, None), (None, 3.0, None)]
    standardiser = Standardiser.fit(rows)
    assert standardiser.logged == (True, False, False)
    assert standardiser.means[0] == pytest.approx(math.log(4) / 2)
    assert standardiser.scales[1] == pytest.approx(math.sqrt(8 / 3))
    assert standardiser.scales[2] == 1.0  # nothing present: a constant
    z = standardiser.apply((3.0, 1.0, None))
    assert z[0] == pytest.approx(1.0)
    assert z[1] == pytest.approx(0.0)
    assert z[2] == 0.0
    assert standardiser.apply((None, None, 7.0))[0] == 0.0
    assert standardiser.apply((-5.0, 0.0, 0.0))[0] == pytest.approx(-1.0)  # clamped to 0
    assert standardiser.typical(0) == pytest.approx(1.0)  # exp(mean of log1p) - 1
    with pytest.raises(ValueError, match="expected 3 feature values"):
        standardiser.apply((1.0,))


def test_logistic_explanation_adds_up_to_the_log_odds() -> None:
    predictor = Predictor(
        ModelKind.LOGISTIC,
        ("logins", "tickets", "seats"),
        Standardiser((0.0, 0.0, 10.0), (1.0, 2.0, 5.0), (False, False, False)),
        LogisticScorer((-1.5, 0.5, 0.2), -2.0),
    )
    explanation = predictor.explain((2.0, 4.0, None))
    assert [c.feature for c in explanation.contributions] == ["logins", "tickets", "seats"]
    assert [c.contribution for c in explanation.contributions] == [-3.0, 1.0, 0.0]
    assert explanation.base == -2.0
    assert explanation.log_odds == pytest.approx(-4.0)
    assert explanation.probability == pytest.approx(sigmoid(-4.0))
    assert predictor.probability((2.0, 4.0, None)) == explanation.probability
    assert explanation.top(1)[0].value == 2.0


def test_expected_values_weigh_children_by_samples() -> None:
    #        0
    #      1   2
    #     3 4
    values = expected_values(
        left=(1, 3, -1, -1, -1),
        right=(2, 4, -1, -1, -1),
        leaf_values=(9.0, 9.0, 4.0, 1.0, -2.0),
        weights=(0.0, 0.0, 10.0, 20.0, 10.0),
    )
    assert values[1] == pytest.approx(0.0)  # (20 x 1 + 10 x -2) / 30
    assert values[0] == pytest.approx(1.0)  # (30 x 0 + 10 x 4) / 40
    assert values[2:] == (4.0, 1.0, -2.0)


def test_tree_attribution_adds_up_and_credits_the_split_features() -> None:
    tree = Tree(
        left=(1, 3, -1, -1, -1),
        right=(2, 4, -1, -1, -1),
        feature=(0, 1, 0, 0, 0),
        threshold=(0.5, -1.0, 0.0, 0.0, 0.0),
        value=(1.0, 0.0, 4.0, 1.0, -2.0),
    )
    ensemble = TreeEnsemble(init=-1.0, learning_rate=0.5, trees=(tree, tree), features=3)
    base, contributions = ensemble.attribution((0.0, 0.0, 9.0))  # left, then right: -2
    assert base == pytest.approx(-1.0 + 2 * 0.5 * 1.0)
    # feature 0 moved 1 -> 0, feature 1 moved 0 -> -2, in each tree
    assert contributions == pytest.approx((2 * 0.5 * -1.0, 2 * 0.5 * -2.0, 0.0))
    assert base + sum(contributions) == pytest.approx(-1.0 + 2 * 0.5 * -2.0)


def test_a_tree_pointing_backwards_is_refused() -> None:
    with pytest.raises(ValueError, match="not a later node"):
        Tree(left=(0,), right=(0,), feature=(0,), threshold=(0.0,), value=(0.0,))
    with pytest.raises(ValueError, match="equal, non-zero length"):
        Tree(left=(), right=(), feature=(), threshold=(), value=())


def test_boosted_trees_as_numbers_predict_as_scikit_learn_does() -> None:
    np = pytest.importorskip("numpy")
    ensemble_module = pytest.importorskip("sklearn.ensemble")
    from services.scoring.model import sklearn_adapter as adapter

    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 4))
    y = (x[:, 0] - 0.5 * x[:, 2] + rng.normal(scale=0.7, size=300)) > 0.3
    rows = [tuple(float(v) for v in row) for row in x]
    scorer = adapter.fit_scorer(ModelKind.GBM, rows, [bool(v) for v in y], seed=5)
    assert isinstance(scorer, TreeEnsemble)
    reference = ensemble_module.GradientBoostingClassifier(
        n_estimators=adapter.GBM_TREES,
        max_depth=adapter.GBM_DEPTH,
        learning_rate=adapter.GBM_LEARNING_RATE,
        subsample=adapter.GBM_SUBSAMPLE,
        random_state=5,
    ).fit(x, y.astype(int))
    expected = reference.decision_function(x)
    for row, want in zip(rows, expected, strict=True):
        base, contributions = scorer.attribution(row)
        assert base + math.fsum(contributions) == pytest.approx(float(want), abs=1e-9)
