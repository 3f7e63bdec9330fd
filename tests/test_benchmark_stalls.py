"""The benchmarks' reading of a stall histogram (tests/benchmarks/_stalls.py)."""

from __future__ import annotations

import pytest

from tests.benchmarks._stalls import Histogram, Stalls

LAGS = Histogram(((0.005, 90.0), (0.01, 97.0), (0.015, 99.0), (float("inf"), 100.0)), 1.2)
"""100 samples: 90 within 5 ms, 7 within 10, 2 within 15 and one longer."""


def test_the_share_over_a_bound_counts_the_samples_of_the_buckets_above_it() -> None:
    assert LAGS.share_over(0.01) == pytest.approx(0.03)
    assert LAGS.share_over(0.005) == pytest.approx(0.1)
    assert LAGS.share_over(0.001) == 1.0
    assert Histogram((), 0.0).share_over(0.01) == 0.0


def test_the_summary_says_how_many_samples_the_p99_goal_has_over_it() -> None:
    summary = Stalls(LAGS, {}).summary("engine")

    assert summary["engine: loop lag p50 / p99 (ms, bucket bound)"] == "<= 5 / <= 15"
    assert summary["engine: loop lag samples over 10 ms (the p99 goal: <= 1%)"] == "3 (3.00%)"
