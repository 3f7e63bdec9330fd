"""A service's event-loop stalls and collection pauses over one benchmark phase, from the
histograms of :mod:`shared.observability.stalls` read on its ``/metrics`` before and after
(with the step histograms :mod:`tests.benchmarks._steps` reads from the same page).

Histograms keep buckets, not samples: a percentile is the upper bound of the bucket it falls
in, and the longest stall is known to within its bucket (``(lower, upper]``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families

LOOP_LAG = "milepost_event_loop_lag_seconds"
GC_PAUSE = "milepost_gc_pause_seconds"
STEP_FAMILY = re.compile(r"milepost_(\w+)_step_seconds")
"""The step histograms of the stream runtime (:func:`shared.consuming.metrics.steps_histogram`)."""
STALL_GOAL_MS = 10.0
"""Issue 17's goal for the p99 of the loop's lag during the engine benchmark."""


@dataclass(frozen=True, slots=True)
class Histogram:
    """Cumulative counts by upper bound (seconds, ``inf`` last) and the sum of values."""

    buckets: tuple[tuple[float, float], ...]
    total: float

    @property
    def count(self) -> float:
        return self.buckets[-1][1] if self.buckets else 0.0

    def quantile_bound(self, fraction: float) -> float:
        """The upper bound (seconds) of the bucket holding the ``fraction`` quantile."""
        target = fraction * self.count
        for bound, cumulative in self.buckets:
            if cumulative >= target and cumulative > 0:
                return bound
        return 0.0

    def share_over(self, bound: float) -> float:
        """The share of values above ``bound`` (seconds, one of the bucket bounds)."""
        if not self.count:
            return 0.0
        within = max(
            (cumulative for upper, cumulative in self.buckets if upper <= bound), default=0
        )
        return 1.0 - within / self.count

    def longest(self) -> tuple[float, float]:
        """``(lower, upper]`` bounds (seconds) of the bucket of the largest value."""
        lower = 0.0
        previous = 0.0
        found = (0.0, 0.0)
        for bound, cumulative in self.buckets:
            if cumulative > previous:
                found = (lower, bound)
            lower, previous = bound, cumulative
        return found


@dataclass(frozen=True, slots=True)
class Stalls:
    """One process's stalls over a phase."""

    loop: Histogram
    pauses: Mapping[str, Histogram]
    """Collection pauses by generation."""

    @property
    def p99_ms(self) -> float:
        return 1000 * self.loop.quantile_bound(0.99)

    def summary(self, label: str, *, goal: bool = False) -> dict[str, str | float]:
        """The figures of the phase; with ``goal``, the share over the goal is labelled
        with it (the engine benchmark's goal)."""
        low, high = self.loop.longest()
        over = f"{label}: loop lag samples over {STALL_GOAL_MS:,.0f} ms"
        found: dict[str, str | float] = {
            f"{label}: loop lag samples (every 10 ms)": self.loop.count,
            f"{label}: loop lag p50 / p99 (ms, bucket bound)": (
                f"<= {ms(self.loop.quantile_bound(0.5))} / <= {ms(self.loop.quantile_bound(0.99))}"
            ),
            over + (" (the p99 goal: <= 1%)" if goal else ""): (
                f"{self.loop.count * self.loop.share_over(STALL_GOAL_MS / 1000):,.0f} "
                f"({100 * self.loop.share_over(STALL_GOAL_MS / 1000):.2f}%)"
            ),
            f"{label}: longest stall (ms)": f"{ms(low)}-{ms(high)}",
        }
        for generation, pauses in sorted(self.pauses.items()):
            low, high = pauses.longest()
            found[f"{label}: gen-{generation} collections, total ms, longest ms"] = (
                f"{pauses.count:,.0f}, {1000 * pauses.total:,.0f}, {ms(low)}-{ms(high)}"
            )
        return found


async def read_histograms(url: str) -> dict[str, Histogram]:
    """The stall and step histograms on ``url`` (a ``/metrics`` page): ``LOOP_LAG``,
    ``GC_PAUSE:<generation>`` and ``<step family>:<group or "">:<step>``."""
    async with httpx.AsyncClient(timeout=10.0) as client:
        response = await client.get(url)
    response.raise_for_status()
    buckets: dict[str, list[tuple[float, float]]] = {}
    sums: dict[str, float] = {}
    for family in text_string_to_metric_families(response.text):
        if family.name not in (LOOP_LAG, GC_PAUSE) and not STEP_FAMILY.fullmatch(family.name):
            continue
        for sample in family.samples:
            key = family.name
            if "generation" in sample.labels:
                key = f"{family.name}:{sample.labels['generation']}"
            elif "step" in sample.labels:
                key = f"{family.name}:{sample.labels.get('group', '')}:{sample.labels['step']}"
            if sample.name.endswith("_bucket"):
                buckets.setdefault(key, []).append((float(sample.labels["le"]), sample.value))
            elif sample.name.endswith("_sum"):
                sums[key] = sample.value
    return {
        key: Histogram(tuple(sorted(rows)), sums.get(key, 0.0)) for key, rows in buckets.items()
    }


def stalls_between(before: Mapping[str, Histogram], after: Mapping[str, Histogram]) -> Stalls:
    """What was observed between two readings of :func:`read_histograms`."""
    pauses = {
        key.partition(":")[2]: histogram_between(before, after, key)
        for key in after
        if key.startswith(f"{GC_PAUSE}:")
    }
    return Stalls(histogram_between(before, after, LOOP_LAG), pauses)


def histogram_between(
    before: Mapping[str, Histogram], after: Mapping[str, Histogram], key: str
) -> Histogram:
    """What histogram ``key`` observed between two readings of :func:`read_histograms`."""
    late = after.get(key, Histogram((), 0.0))
    early = dict(before[key].buckets) if key in before else {}
    return Histogram(
        tuple((bound, count - early.get(bound, 0.0)) for bound, count in late.buckets),
        late.total - (before[key].total if key in before else 0.0),
    )


def ms(seconds: float) -> str:
    return "inf" if math.isinf(seconds) else f"{1000 * seconds:,.1f}".removesuffix(".0")
