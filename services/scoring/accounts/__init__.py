"""Each account's scoring state (metrics, facts, current score) and its score history;
the ``/api/scoring/`` API over them."""
