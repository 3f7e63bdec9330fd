"""The benchmarks' reading of a stall histogram (tests/benchmarks/_stalls.py) and of the
stream runtime's step histograms (tests/benchmarks/_steps.py)."""

from __future__ import annotations

import pytest

from shared.consuming.metrics import STEPS
from tests.benchmarks._stalls import Histogram, Stalls
from tests.benchmarks._steps import steps_between

LAGS = Histogram(((0.005, 90.0), (0.01, 97.0), (0.015, 99.0), (float("inf"), 100.0)), 1.2)
"""100 samples: 90 within 5 ms, 7 within 10, 2 within 15 and one longer."""


def test_the_share_over_a_bound_counts_the_samples_of_the_buckets_above_it() -> None:
    assert LAGS.share_over(0.01) == pytest.approx(0.03)
    assert LAGS.share_over(0.005) == pytest.approx(0.1)
    assert LAGS.share_over(0.001) == 1.0
    assert Histogram((), 0.0).share_over(0.01) == 0.0


def test_the_summary_says_how_many_samples_the_p99_goal_has_over_it() -> None:
    summary = Stalls(LAGS, {}).summary("engine", goal=True)

    assert summary["engine: loop lag p50 / p99 (ms, bucket bound)"] == "<= 5 / <= 15"
    assert summary["engine: loop lag samples over 10 ms (the p99 goal: <= 1%)"] == "3 (3.00%)"


def test_a_summary_without_the_goal_does_not_name_it() -> None:
    summary = Stalls(LAGS, {}).summary("ingest")

    assert summary["ingest: loop lag samples over 10 ms"] == "3 (3.00%)"
    assert not any("goal" in key for key in summary)


def histogram(total: float, counts: tuple[float, float, float]) -> Histogram:
    """Counts within 1 ms, within 10 ms and in all."""
    return Histogram(((0.001, counts[0]), (0.01, counts[1]), (float("inf"), counts[2])), total)


def test_the_steps_of_a_phase_are_what_each_stage_observed_between_two_readings() -> None:
    before = {
        "milepost_engine_step_seconds::apply": histogram(1.0, (10, 10, 10)),
        "milepost_engine_step_seconds::write": histogram(0.5, (0, 10, 10)),
        "milepost_event_loop_lag_seconds": histogram(0.0, (0, 0, 0)),
    }
    after = {
        "milepost_engine_step_seconds::apply": histogram(1.2, (10, 20, 20)),
        "milepost_engine_step_seconds::write": histogram(0.6, (0, 10, 15)),
        "milepost_messaging_step_seconds:bench-contacts:apply": histogram(0.0, (0, 0, 0)),
        "milepost_messaging_step_seconds:bench-subscriptions:apply": histogram(0.03, (3, 3, 3)),
        "milepost_event_loop_lag_seconds": histogram(0.5, (0, 0, 9)),
    }

    [subscriptions, engine] = steps_between(before, after)  # by stage name

    assert (engine.stage, engine.batches, list(engine.steps)) == ("engine", 10, ["apply", "write"])
    assert engine.mean_ms("apply") == pytest.approx(20.0)
    assert engine.mean_ms("write") == pytest.approx(10.0)  # 5 checkpoints in 10 batches
    assert engine.mean_ms("commit") == 0.0
    key = "250 ev/s, engine: per batch, mean / p99 ms by step (10 batches)"
    assert engine.summary("250 ev/s") == {key: "apply 20.0 / 10, write 10.0 / inf"}
    assert (subscriptions.stage, subscriptions.batches) == ("bench-subscriptions", 3)


def test_the_steps_are_read_in_the_order_a_batch_takes_them() -> None:
    after = {
        f"milepost_scoring_step_seconds::{step}": histogram(0.1, (1, 1, 1))
        for step in reversed(STEPS)
    }

    [scoring] = steps_between({}, after)

    assert list(scoring.steps) == list(STEPS)
    [line] = scoring.summary("the mix").values()
    assert line.startswith("queued 100.0 / 1, sift 100.0 / 1")
    [backlog] = scoring.summary("the mix", queued=False).values()
    assert backlog.startswith("sift 100.0 / 1")
