"""Tier placement: the path's ladder with hysteresis (Tiers.place / Tiers.move, shared with the
engine), bound to the metrics file's tier figure, and the tier_changed event it becomes."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.node_engine.paths.compiled import Tiers
from services.node_engine.paths.service import compile_source
from services.scoring.definitions import Window, load_metrics
from services.scoring.definitions.compiled import TierSource
from services.scoring.tiers import TierChange, TierValueInvalid, place_account
from shared.contracts.scores import ScoreKind

REFERENCE_PATH = Path("services/node_engine/paths/reference/platform-merchant.yaml")
REFERENCE_METRICS = Path("services/scoring/reference/metrics.yaml")


@pytest.fixture(scope="module")
def ladder() -> Tiers:
    """L1 0; L2 10000 (exit 8000); L3 50000 (40000); L4 200000 (160000); L5 1e6 (8e5)."""
    path = compile_source(str(REFERENCE_PATH), REFERENCE_PATH.read_text(), version=1)
    assert path.tiers is not None
    return path.tiers


BINDING = TierSource("platform-merchant", "gmv", Window.P28D)


def ids(ladder: Tiers) -> list[str]:
    return [level.id for level in ladder.levels]


# -- Tiers.place: the one placement rule --------------------------------------------------


@pytest.mark.parametrize(
    ("value", "placed"),
    [(-1, None), (0, "L1"), (9999.99, "L1"), (10000, "L2"), (49999, "L2"), (1e6, "L5")],
)
def test_without_a_tier_the_highest_level_reached(
    ladder: Tiers, value: float, placed: str | None
) -> None:
    level = ladder.place(None, value)
    assert (level.id if level else None) == placed


def test_promotion_exactly_at_enter_at_and_not_a_hair_below(ladder: Tiers) -> None:
    assert ladder.place("L2", 50000).id == "L3"  # type: ignore[union-attr]
    assert ladder.place("L2", 49999.999).id == "L2"  # type: ignore[union-attr]


def test_demotion_only_below_exit_below(ladder: Tiers) -> None:
    # L3 is entered at 50000 and left below 40000: everything in between holds L3.
    for value in (49999, 45000, 40000):
        assert ladder.place("L3", value).id == "L3"  # type: ignore[union-attr]
    assert ladder.place("L3", 39999.99).id == "L2"  # type: ignore[union-attr]


def test_no_flapping_around_a_threshold(ladder: Tiers) -> None:
    tier: str | None = None
    history = []
    for value in (10000, 9000, 10500, 8500, 9999, 8000, 7999, 9000, 10000):
        level = ladder.place(tier, value)
        tier = level.id if level else None
        history.append(tier)
    assert history == ["L2", "L2", "L2", "L2", "L2", "L2", "L1", "L1", "L2"]


def test_several_levels_at_once_both_ways(ladder: Tiers) -> None:
    assert ladder.place("L1", 250000).id == "L4"  # type: ignore[union-attr]
    # From L5 down to 45000: below L5's, L4's exit (800000, 160000) but not L3's (40000).
    assert ladder.place("L5", 45000).id == "L3"  # type: ignore[union-attr]
    # A value between L2's enter_at and L3's exit_below from L4: L2 holds (>= its 8000 exit).
    assert ladder.place("L4", 9000).id == "L2"  # type: ignore[union-attr]


def test_falling_under_the_lowest_exit_leaves_every_tier(ladder: Tiers) -> None:
    assert ladder.place("L1", -0.01) is None
    assert ladder.place("L2", -5) is None


def test_an_unknown_current_tier_is_placed_afresh(ladder: Tiers) -> None:
    assert ladder.place("gone", 12000).id == "L2"  # type: ignore[union-attr]


def test_place_agrees_with_a_plain_reading_of_the_rules_on_random_walks(ladder: Tiers) -> None:
    rng = random.Random(4)
    levels = ladder.levels
    for _ in range(300):
        tier: str | None = rng.choice([None, *ids(ladder)])
        for _ in range(20):
            value = rng.choice([rng.uniform(-1000, 1.2e6), float(rng.choice(levels).enter_at)])
            placed = ladder.place(tier, value)
            got = placed.id if placed else None
            index = ids(ladder).index(tier) if tier else None
            reached = [i for i, lv in enumerate(levels) if value >= lv.enter_at]
            if index is None:
                expected = ids(ladder)[reached[-1]] if reached else None
            elif reached and reached[-1] > index:
                expected = ids(ladder)[reached[-1]]
            elif value >= levels[index].exit_below:
                expected = tier
            else:  # the highest lower level the value still holds
                held = [i for i in range(index) if value >= levels[i].exit_below]
                expected = ids(ladder)[held[-1]] if held else None
            assert got == expected, (tier, value)
            tier = got


def test_move_names_the_direction_and_the_threshold_crossed(ladder: Tiers) -> None:
    assert ladder.move("L2", 45000) is None
    placed = ladder.move(None, 12000)
    assert placed is not None
    assert (placed.old, placed.new.id, placed.direction, placed.threshold) == (  # type: ignore[union-attr]
        None,
        "L2",
        "placement",
        10000,
    )
    up = ladder.move("L1", 250000)
    assert up is not None
    assert (up.direction, up.threshold) == ("promotion", 200000)
    down = ladder.move("L5", 45000)  # left L5 and L4: the lowest left is L4 (exit 160000)
    assert down is not None
    assert down.new is not None
    assert (down.new.id, down.direction, down.threshold) == ("L3", "demotion", 160000)
    out = ladder.move("L2", -1)  # left L2 and L1: L1's exit (0)
    assert out is not None
    assert (out.new, out.direction, out.threshold) == (None, "demotion", 0)
    assert ladder.move(None, -1) is None


# -- place_account -------------------------------------------------------------------------


def test_place_account_explains_a_promotion(ladder: Tiers) -> None:
    change = place_account(BINDING, ladder, "L2", 52300.0)
    assert change == TierChange(
        path="platform-merchant",
        from_tier="L2",
        to_tier="L3",
        direction="promotion",
        metric="gmv",
        window_days=28,
        figure="gmv_28d",
        label="28-day GMV",
        value=52300.0,
        threshold=50000,
        benefits=(("ads_credit", "Advertising credit"), ("priority_support", "Priority support")),
    )
    assert change.sentence == "Promotion: L2 -> L3; 28-day GMV was 52300, which reached 50000."


def test_place_account_explains_a_demotion(ladder: Tiers) -> None:
    change = place_account(BINDING, ladder, "L3", 39000)
    assert change is not None
    assert change.explanation() == {
        "path": "platform-merchant",
        "from": "L3",
        "to": "L2",
        "direction": "demotion",
        "metric": "gmv",
        "window_days": 28,
        "figure": "gmv_28d",
        "label": "28-day GMV",
        "value": 39000.0,
        "threshold": 40000,
        "benefits": [{"id": "traffic_boost", "name": "Weekly traffic boost"}],
        "sentence": "Demotion: L3 -> L2; 28-day GMV was 39000, which fell below 40000.",
    }


def test_place_account_keeps_the_tier_inside_the_band_or_when_the_figure_is_unknown(
    ladder: Tiers,
) -> None:
    assert place_account(BINDING, ladder, "L3", 41000) is None
    assert place_account(BINDING, ladder, "L3", None) is None


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_place_account_refuses_a_figure_that_is_not_a_number(ladder: Tiers, bad: float) -> None:
    with pytest.raises(TierValueInvalid, match="gmv_28d"):
        place_account(BINDING, ladder, "L3", bad)


def test_the_change_becomes_a_tier_changed_score_event(ladder: Tiers) -> None:
    change = place_account(BINDING, ladder, None, 0)
    assert change is not None
    at = datetime(2026, 11, 22, tzinfo=UTC)
    envelope = change.envelope(
        score_event_id="w1:a1:tier:1", workspace_id="w1", account_id="a1", occurred_at=at
    )
    assert envelope.kind is ScoreKind.TIER_CHANGED
    assert (envelope.tier, envelope.occurred_at, envelope.key) == ("L1", at, "w1/a/a1")
    assert envelope.explanation["direction"] == "placement"
    assert envelope.explanation["threshold"] == 0


def test_the_reference_binding_places_platform_merchants_by_28_day_gmv(ladder: Tiers) -> None:
    definitions = load_metrics(REFERENCE_METRICS)
    binding = definitions.tier_source("platform-merchant")
    assert binding == BINDING
    assert definitions.tier_source("saas-account") is None
    change = place_account(binding, ladder, None, 10000)
    assert change is not None
    assert change.to_tier == "L2"
