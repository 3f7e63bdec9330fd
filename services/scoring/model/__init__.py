"""The optional learned churn model: ``milepost scoring train`` and ``predict``.

Pure cores (history, features, backtest, predictor, training, synthetic history) and two
edges: :mod:`~services.scoring.model.sklearn_adapter`, the only importer of scikit-learn
(the ``ml`` extra), and :mod:`~services.scoring.model.modelfile` (JSON model files). The
rule-based health score stays the default; see docs/scoring-model.md.
"""
