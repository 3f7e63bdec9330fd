"""Fitting with scikit-learn (the ``ml`` extra): the only module that imports it, and only
when a fit is asked for. The fitted estimator is turned into plain numbers at once
(:mod:`services.scoring.model.predictor`), so predicting and saving need no scikit-learn
and no pickle.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from services.scoring.model.errors import MissingExtra
from services.scoring.model.predictor import (
    LogisticScorer,
    ModelKind,
    Tree,
    TreeEnsemble,
    expected_values,
)

LOGISTIC_C = 0.1
"""Inverse L2 regularisation strength of the logistic regression."""
GBM_TREES = 150
GBM_DEPTH = 3
GBM_LEARNING_RATE = 0.05
GBM_SUBSAMPLE = 0.8


def fit_scorer(
    kind: ModelKind, rows: Sequence[Sequence[float]], labels: Sequence[bool], *, seed: int
) -> LogisticScorer | TreeEnsemble:
    """Fit ``kind`` on standardised ``rows``; deterministic for a given ``seed``."""
    try:
        import numpy as np
        from sklearn.ensemble import GradientBoostingClassifier  # type: ignore[import-untyped]
        from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
    except ImportError as exc:  # pragma: no cover - the extra is installed in development
        raise MissingExtra("training needs scikit-learn: pip install 'milepost[ml]'") from exc
    x = np.asarray(rows, dtype=float)
    y = np.asarray(labels, dtype=int)
    if kind is ModelKind.LOGISTIC:
        logistic = LogisticRegression(C=LOGISTIC_C, max_iter=2000, random_state=seed)
        logistic.fit(x, y)
        return LogisticScorer(
            tuple(float(c) for c in logistic.coef_[0]), float(logistic.intercept_[0])
        )
    boosted = GradientBoostingClassifier(
        n_estimators=GBM_TREES,
        max_depth=GBM_DEPTH,
        learning_rate=GBM_LEARNING_RATE,
        subsample=GBM_SUBSAMPLE,
        random_state=seed,
    )
    boosted.fit(x, y)
    trees = tuple(_tree(estimator[0].tree_) for estimator in boosted.estimators_)
    first = x[:1]
    summed = sum(float(estimator[0].predict(first)[0]) for estimator in boosted.estimators_)
    init = float(boosted.decision_function(first)[0]) - boosted.learning_rate * summed
    return TreeEnsemble(init, float(boosted.learning_rate), trees, x.shape[1])


def _tree(tree: Any) -> Tree:
    left = tuple(int(n) for n in tree.children_left)
    right = tuple(int(n) for n in tree.children_right)
    return Tree(
        left=left,
        right=right,
        feature=tuple(max(0, int(f)) for f in tree.feature),
        threshold=tuple(float(t) for t in tree.threshold),
        value=expected_values(
            left,
            right,
            [float(v) for v in tree.value[:, 0, 0]],
            [float(w) for w in tree.weighted_n_node_samples],
        ),
    )
