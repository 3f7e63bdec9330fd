"""The metrics file's tiers and diagnostics sections: refused with file, line and field when
they name unknown metrics or windows, bad percentiles or duplicates; compiled for scoring."""

from __future__ import annotations

import pytest

from services.scoring.definitions import MetricsFile, Window, load_metrics
from services.scoring.definitions.compiled import PercentileBound, TierSource
from shared.definitions import DefinitionError, load_definition

METRICS = """\
metrics:
  - id: orders
    name: Orders
    kind: count
    event: Order Completed
    windows: [P7D, P28D]
    north_star: true
  - id: gmv
    name: GMV
    kind: sum
    event: Order Completed
    property: amount
    windows: [P28D]
  - id: seats
    name: Seats
    kind: fact
    fact: crm.seats
  - id: admin_last_seen
    name: Admin last seen
    kind: last_seen
    event: Logged In
"""
TIERS = "tiers:\n  - {path: platform-merchant, metric: gmv, window: P28D}\n"
DIAGNOSTICS = """\
diagnostics:
  - path: platform-merchant
    min_peers: 5
    rules:
      - id: busy_but_small
        problem: Many orders, small baskets
        tiers: [L2]
        when:
          - {metric: orders, window: P28D, at_least: 50}
          - {metric: gmv, window: P28D, below: 20}
        playbook: merchant-basket-size
      - id: few_seats
        problem: Few seats
        when:
          - {metric: seats, at_least: 10, below: 30}
        playbook: seat-growth
"""
# The first bound's line once DIAGNOSTICS follows METRICS (21 lines) and TIERS (2).
FIRST_BOUND = 32


def problems(text: str) -> list[tuple[int | None, str, str]]:
    with pytest.raises(DefinitionError) as caught:
        load_definition("metrics.yaml", MetricsFile, text=text)
    return [(p.line, p.field, p.message) for p in caught.value.problems]


def test_a_valid_file_compiles_its_tier_figure_and_rules() -> None:
    definitions = load_metrics("metrics.yaml", text=METRICS + TIERS + DIAGNOSTICS)
    assert definitions.tier_source("platform-merchant") == TierSource(
        "platform-merchant", "gmv", Window.P28D
    )
    assert definitions.tier_source("platform-merchant").figure == "gmv_28d"  # type: ignore[union-attr]
    rules = definitions.diagnostics_for("platform-merchant")
    assert rules is not None
    assert rules.min_peers == 5
    assert [rule.id for rule in rules.rules] == ["busy_but_small", "few_seats"]
    assert rules.rules[0].when == (
        PercentileBound("orders", Window.P28D, 50, None),
        PercentileBound("gmv", Window.P28D, None, 20),
    )
    assert rules.rules[0].applies_in("L2")
    assert not rules.rules[0].applies_in("L3")
    assert rules.rules[1].applies_in(None)
    assert rules.figures == ("orders_28d", "gmv_28d", "seats")
    assert definitions.diagnostics_for("saas-account") is None


def test_sections_are_optional() -> None:
    definitions = load_metrics("metrics.yaml", text=METRICS)
    assert definitions.tier_sources == ()
    assert definitions.diagnostics == ()


def test_a_percentile_bound_holds_at_least_inclusive_below_exclusive() -> None:
    bound = PercentileBound("m", None, 20, 50)
    assert [bound.holds(p) for p in (19.9, 20, 49.9, 50)] == [False, True, True, False]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "metric: gmv, window: P28D}\n",
            "metric: revenue, window: P28D}\n",
            (23, "tiers[0].metric", "metric 'revenue' does not exist"),
        ),
        (
            "metric: gmv, window: P28D}\n",
            "metric: gmv, window: P7D}\n",
            (23, "tiers[0].window", "metric 'gmv' is measured over P28D"),
        ),
        (
            "metric: gmv, window: P28D}\n",
            "metric: gmv}\n",
            (23, "tiers[0].window", "metric 'gmv' is measured over P28D"),
        ),
        (
            "metric: gmv, window: P28D}\n",
            "metric: seats, window: P28D}\n",
            (23, "tiers[0].window", "a fact metric has no window"),
        ),
        (
            "metric: gmv, window: P28D}\n",
            "metric: admin_last_seen}\n",
            (23, "tiers[0].metric", "tiers are not placed by a last_seen metric"),
        ),
    ],
)
def test_a_bad_tier_binding(old: str, new: str, expected: tuple[int, str, str]) -> None:
    assert problems(METRICS + TIERS.replace(old, new) + DIAGNOSTICS) == [expected]


def test_a_path_bound_twice() -> None:
    twice = TIERS + "  - {path: platform-merchant, metric: orders, window: P7D}\n"
    assert problems(METRICS + twice) == [
        (24, "tiers[1].path", "path 'platform-merchant' is bound twice")
    ]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "{metric: orders, window: P28D, at_least: 50}",
            "{metric: visits, window: P28D, at_least: 50}",
            (
                FIRST_BOUND,
                "diagnostics[0].rules[0].when[0].metric",
                "metric 'visits' does not exist",
            ),
        ),
        (
            "{metric: orders, window: P28D, at_least: 50}",
            "{metric: orders, window: P90D, at_least: 50}",
            (
                FIRST_BOUND,
                "diagnostics[0].rules[0].when[0].window",
                "metric 'orders' is measured over P7D, P28D",
            ),
        ),
        (
            "{metric: orders, window: P28D, at_least: 50}",
            "{metric: orders, window: P28D, at_least: 150}",
            (
                FIRST_BOUND,
                "diagnostics[0].rules[0].when[0].at_least",
                "Input should be less than or equal to 100",
            ),
        ),
        (
            "{metric: orders, window: P28D, at_least: 50}",
            "{metric: orders, window: P28D, below: -1}",
            (
                FIRST_BOUND,
                "diagnostics[0].rules[0].when[0].below",
                "Input should be greater than or equal to 0",
            ),
        ),
        (
            "{metric: orders, window: P28D, at_least: 50}",
            "{metric: orders, window: P28D}",
            (
                FIRST_BOUND,
                "diagnostics[0].rules[0].when[0]",
                "give at_least, below or both (percentiles, 0..100)",
            ),
        ),
        (
            "{metric: seats, at_least: 10, below: 30}",
            "{metric: seats, at_least: 30, below: 10}",
            (
                FIRST_BOUND + 6,
                "diagnostics[0].rules[1].when[0].below",
                "below must be greater than at_least",
            ),
        ),
        (
            "playbook: seat-growth",
            "playbook: Seat Growth!",
            (
                FIRST_BOUND + 7,
                "diagnostics[0].rules[1].playbook",
                "String should match pattern '^[a-z][a-z0-9_-]{0,62}$'",
            ),
        ),
        (
            "id: few_seats",
            "id: busy_but_small",
            (
                FIRST_BOUND + 3,
                "diagnostics[0].rules[1].id",
                "rule id 'busy_but_small' is already used",
            ),
        ),
    ],
)
def test_a_bad_diagnostic_rule(old: str, new: str, expected: tuple[int, str, str]) -> None:
    text = METRICS + TIERS + DIAGNOSTICS.replace(old, new)
    found = problems(text)
    assert len(found) == 1
    line, field, message = found[0]
    assert (line, field) == expected[:2]
    assert expected[2] in message


def test_a_path_with_rules_twice() -> None:
    again = DIAGNOSTICS + "\n".join(DIAGNOSTICS.splitlines()[1:]) + "\n"
    found = problems(METRICS + TIERS + again)
    assert found == [(40, "diagnostics[1].path", "path 'platform-merchant' has rules already")]


def test_a_rule_needs_a_bound_and_a_playbook() -> None:
    text = METRICS + (
        "diagnostics:\n  - path: p\n    rules:\n"
        "      - {id: r, problem: P, when: [], playbook: x}\n"
        "      - {id: s, problem: P, when: [{metric: seats, below: 5}]}\n"
    )
    found = problems(text)
    assert [(line, field) for line, field, _ in found] == [
        (25, "diagnostics[0].rules[0].when"),
        (26, "diagnostics[0].rules[1].playbook"),
    ]
