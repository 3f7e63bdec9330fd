"""Each account's scoring state (metrics, facts, current score), its score history and the
memberships that attribute user-only events; the ``/api/scoring/`` API over them."""
