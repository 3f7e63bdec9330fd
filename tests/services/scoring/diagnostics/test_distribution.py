"""Peer distributions: percentiles and values within the stated bounds against brute force on
seeded random data, exact add/remove/merge, and the byte form."""

from __future__ import annotations

import bisect
import math
import random

import pytest

from services.scoring.diagnostics import (
    ACCURACY,
    GAMMA,
    PeerDistribution,
    PeerDistributionCorrupt,
    PeerValueInvalid,
    PeerValueMissing,
)
from services.scoring.diagnostics.distribution import bin_of

SLACK = 1e-9
"""Floating-point room at bin edges."""


def filled(values: list[float]) -> PeerDistribution:
    distribution = PeerDistribution()
    for value in values:
        distribution.add(value)
    return distribution


def samples(seed: int, n: int) -> list[float]:
    """Skewed like real figures: log-normal amounts, zeros, a few negatives, repeats."""
    rng = random.Random(seed)
    values: list[float] = []
    for _ in range(n):
        roll = rng.random()
        if roll < 0.1:
            values.append(0.0)
        elif roll < 0.15:
            values.append(-rng.lognormvariate(3, 1.5))
        elif roll < 0.25:
            values.append(float(rng.randint(1, 20)))
        else:
            values.append(rng.lognormvariate(6, 2.5))
    return values


def share_at_most(ordered: list[float], x: float) -> float:
    return 100 * bisect.bisect_right(ordered, x) / len(ordered)


def share_below(ordered: list[float], x: float) -> float:
    return 100 * bisect.bisect_left(ordered, x) / len(ordered)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_percentile_of_is_within_the_stated_bounds(seed: int) -> None:
    values = samples(seed, 3000)
    ordered = sorted(values)
    distribution = filled(values)
    rng = random.Random(seed + 100)
    probes = [*rng.sample(values, 300), *(rng.uniform(-500, 50000) for _ in range(300)), 0.0]
    worst_outside_band = 0.0
    for probe in probes:
        estimate = distribution.percentile_of(probe)
        assert estimate is not None
        if probe == 0:
            low, high = share_below(ordered, 0), share_at_most(ordered, 0)
        else:
            edges = sorted((probe / (GAMMA * (1 + SLACK)), probe * GAMMA * (1 + SLACK)))
            low, high = share_at_most(ordered, edges[0]), share_below(ordered, edges[1])
        assert low - SLACK <= estimate <= high + SLACK, (probe, low, estimate, high)
        true_mid = (share_below(ordered, probe) + share_at_most(ordered, probe)) / 2
        worst_outside_band = max(worst_outside_band, abs(estimate - true_mid))
    # The band is narrow: a few percent of a spread-out population at most.
    assert worst_outside_band < 5


@pytest.mark.parametrize("seed", [6, 7])
def test_percentile_of_counts_the_values_of_lower_bins_and_half_of_its_own(seed: int) -> None:
    values = samples(seed, 1500)
    distribution = filled(values)
    rng = random.Random(seed)
    for probe in [*rng.sample(values, 200), *(rng.uniform(-5000, 5000) for _ in range(200))]:
        own = bin_of(probe)
        below = sum(1 for v in values if v < probe and bin_of(v) != own)
        same = sum(1 for v in values if bin_of(v) == own)
        assert distribution.percentile_of(probe) == 100.0 * (below + same / 2) / len(values)


@pytest.mark.parametrize("seed", [4, 5])
def test_value_at_is_within_accuracy_of_the_true_rank(seed: int) -> None:
    values = samples(seed, 2000)
    ordered = sorted(values)
    distribution = filled(values)
    for percentile in [0, 0.1, 1, 5, 10, 20, 25, 33.3, 50, 66.6, 75, 80, 90, 95, 99, 99.9, 100]:
        rank = max(0, math.ceil(percentile / 100 * len(ordered)) - 1)
        truth = ordered[rank]
        estimate = distribution.value_at(percentile)
        assert estimate is not None
        assert abs(estimate - truth) <= ACCURACY * abs(truth) * (1 + SLACK), (percentile, truth)


def test_small_exact_cases() -> None:
    distribution = filled([10.0, 20.0, 30.0, 40.0])
    assert distribution.count == 4
    assert distribution.percentile_of(5) == 0
    assert distribution.percentile_of(20) == 37.5  # one below, itself counted half
    assert distribution.percentile_of(1000) == 100
    assert distribution.value_at(0) == pytest.approx(10, rel=ACCURACY)
    assert distribution.value_at(50) == pytest.approx(20, rel=ACCURACY)
    assert distribution.value_at(100) == pytest.approx(40, rel=ACCURACY)
    zeros = filled([0.0, 0.0, 5e-10])
    assert zeros.value_at(50) == 0
    assert zeros.percentile_of(0) == 50


def test_an_empty_distribution_has_no_percentiles() -> None:
    empty = PeerDistribution()
    assert empty.percentile_of(3) is None
    assert empty.value_at(50) is None
    with pytest.raises(ValueError, match="between 0 and 100"):
        filled([1.0]).value_at(101)


def test_remove_after_add_restores_the_state() -> None:
    base = samples(7, 500)
    distribution = filled(base)
    before = distribution.encode()
    extra = samples(8, 300)
    for value in extra:
        distribution.add(value)
    assert distribution != filled(base)
    for value in reversed(extra):
        distribution.remove(value)
    assert distribution == filled(base)
    assert distribution.encode() == before
    assert distribution.count == len(base)


def test_an_account_changing_its_value_moves_one_count() -> None:
    distribution = filled([1.0, 100.0, 1000.0])
    distribution.replace(100.0, 5000.0)
    assert distribution == filled([1.0, 1000.0, 5000.0])
    distribution.replace(None, 7.0)
    distribution.replace(1.0, None)
    assert distribution == filled([7.0, 1000.0, 5000.0])


def test_removing_what_was_never_added_is_refused() -> None:
    distribution = filled([10.0])
    with pytest.raises(PeerValueMissing):
        distribution.remove(500.0)
    distribution.remove(10.0)
    with pytest.raises(PeerValueMissing):
        distribution.remove(10.0)
    assert distribution.count == 0


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_values_that_are_not_numbers_are_refused(bad: float) -> None:
    distribution = filled([1.0])
    with pytest.raises(PeerValueInvalid):
        distribution.add(bad)
    assert distribution == filled([1.0])


def test_merge_equals_one_distribution_of_all_values_in_any_order() -> None:
    left, right = samples(9, 400), samples(10, 600)
    merged = filled(left).merged(filled(right))
    assert merged == filled(right + left)
    shuffled = right + left
    random.Random(1).shuffle(shuffled)
    assert merged.encode() == filled(shuffled).encode()
    assert merged.count == 1000


def test_encode_decode_round_trip_and_size() -> None:
    values = samples(11, 5000)
    distribution = filled(values)
    data = distribution.encode()
    decoded = PeerDistribution.decode(data)
    assert decoded == distribution
    assert decoded.count == 5000
    assert decoded.percentile_of(123.0) == distribution.percentile_of(123.0)
    assert PeerDistribution.decode(PeerDistribution().encode()) == PeerDistribution()
    # Compact: far smaller than the 8 bytes a value the raw values would take.
    assert len(data) < 8 * len(values) / 4


@pytest.mark.parametrize(
    "data",
    [b"", b"XXXX" + bytes(16), PeerDistribution().encode()[:-1], filled([1.0]).encode() + b"\0"],
)
def test_bytes_that_do_not_decode_are_refused(data: bytes) -> None:
    with pytest.raises(PeerDistributionCorrupt):
        PeerDistribution.decode(data)


def test_a_repeated_or_empty_bin_is_refused() -> None:
    one = filled([1.0]).encode()
    header, bin_ = one[:20], one[20:]
    repeated = header[:12] + (2).to_bytes(4, "little") + header[16:] + bin_ + bin_
    with pytest.raises(PeerDistributionCorrupt):
        PeerDistribution.decode(repeated)
    empty = one[:-8] + bytes(8)
    with pytest.raises(PeerDistributionCorrupt):
        PeerDistribution.decode(empty)
