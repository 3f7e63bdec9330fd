"""Tiers: placement on entering a tier stage, promotion at enter_at, demotion only below
exit_below (no flapping in between), several levels at once, and the tier_changed payload."""

from __future__ import annotations

from typing import Any

import pytest

from services.node_engine.core.state import Decision, Transition, TransitionKind
from services.node_engine.paths.compiled import GrowthPath
from shared.clock import FrozenClock
from tests.services.node_engine.support import (
    DAY,
    T0,
    Account,
    build,
    document,
    epoch,
    kinds,
    node,
    of_kind,
    stage,
)

LEVELS = [
    {
        "id": "bronze",
        "name": "Bronze",
        "enter_at": 0,
        "benefits": [{"id": "course", "name": "Course"}],
    },
    {
        "id": "silver",
        "enter_at": 100,
        "exit_below": 80,
        "benefits": [{"id": "boost", "name": "Traffic boost"}],
    },
    {
        "id": "gold",
        "name": "Gold",
        "enter_at": 500,
        "exit_below": 400,
        "benefits": [
            {"id": "ads", "name": "Ads credit"},
            {"id": "support", "name": "Priority support"},
        ],
    },
]


def tiered(metric: str = "account.gmv") -> GrowthPath:
    return build(
        document(
            [
                stage("new", node("setup", 'happened("Setup")')),
                stage("established", notify=["account_owner"]),
            ],
            tiers={
                "metric": metric,
                "label": "GMV",
                "stages": ["established"],
                "notify": ["decision_maker", "account_owner"],
                "levels": LEVELS,
            },
        )
    )


def established(clock: FrozenClock, **facts: Any) -> Account:
    account = Account(tiered(), clock)
    account.group()
    account.event("Setup", facts={f"account.{k}": v for k, v in facts.items()})
    assert account.at == ("established", None)
    return account


def gmv(account: Account, value: float | None) -> Decision:
    return account.event("Account Updated", type="group", facts={"account.gmv": value})


def change(decision: Decision) -> Transition:
    (changed,) = of_kind(decision, TransitionKind.TIER_CHANGED)
    return changed


def test_placement_on_entering_the_tier_stage(clock: FrozenClock) -> None:
    account = Account(tiered(), clock)
    account.group()
    decision = account.event("Setup", facts={"account.gmv": 120})
    assert kinds(decision) == [
        ("node_completed", "new", "setup"),
        ("stage_entered", "established", None),
        ("tier_changed", "established", None),
    ]
    placed = change(decision)
    assert placed.trigger_kind is not None
    assert placed.target_roles == ("decision_maker", "account_owner")
    assert placed.reason == "placement: no tier -> silver (GMV 120)"
    assert placed.payload == {
        "from": None,
        "to": "silver",
        "direction": "placement",
        "metric": "GMV",
        "value": 120.0,
        "benefits": [{"id": "boost", "name": "Traffic boost"}],
    }
    assert account.current.tier == "silver"


def test_no_tier_outside_the_tier_stages(clock: FrozenClock) -> None:
    account = Account(tiered(), clock)
    account.group()
    assert kinds(gmv(account, 600)) == []
    assert account.current.tier is None


def test_no_placement_while_the_metric_is_unknown(clock: FrozenClock) -> None:
    account = established(clock)
    assert account.current.tier is None
    assert change(gmv(account, 10)).payload["to"] == "bronze"


def test_promotion_at_enter_at_and_demotion_only_below_exit_below(clock: FrozenClock) -> None:
    account = established(clock, gmv=50)
    assert account.current.tier == "bronze"
    steps = [
        (99, None),
        (100, ("bronze", "silver", "promotion")),
        (90, None),
        (99, None),
        (80, None),
        (100, None),
        (85, None),
        (79.5, ("silver", "bronze", "demotion")),
        (99, None),
        (80, None),
        (100, ("bronze", "silver", "promotion")),
    ]
    for value, expected in steps:
        changes = of_kind(gmv(account, value), TransitionKind.TIER_CHANGED)
        if expected is None:
            assert changes == [], value
        else:
            (changed,) = changes
            assert (
                changed.payload["from"],
                changed.payload["to"],
                changed.payload["direction"],
            ) == expected


def test_several_levels_at_once(clock: FrozenClock) -> None:
    account = established(clock, gmv=10)
    up = change(gmv(account, 750))
    assert (up.payload["from"], up.payload["to"], up.payload["direction"]) == (
        "bronze",
        "gold",
        "promotion",
    )
    assert up.payload["benefits"] == [
        {"id": "ads", "name": "Ads credit"},
        {"id": "support", "name": "Priority support"},
    ]
    down = change(gmv(account, 50))
    assert (down.payload["from"], down.payload["to"]) == ("gold", "bronze")
    assert down.reason == "demotion: gold -> bronze (GMV 50)"


@pytest.mark.parametrize(
    ("value", "tier"),
    [(450, "gold"), (400, "gold"), (399, "silver"), (90, "silver"), (80, "silver"), (79, "bronze")],
)
def test_a_demotion_lands_on_the_highest_level_still_held(
    clock: FrozenClock, value: float, tier: str
) -> None:
    account = established(clock, gmv=600)
    assert account.current.tier == "gold"
    gmv(account, value)
    assert account.current.tier == tier


def test_below_the_lowest_level_there_is_no_tier(clock: FrozenClock) -> None:
    account = established(clock, gmv=5)
    out = change(gmv(account, -1))
    assert out.payload["to"] is None
    assert out.payload["direction"] == "demotion"
    assert out.payload["benefits"] == []
    assert account.current.tier is None


def test_a_metric_that_is_not_a_number_is_recorded_and_the_tier_kept(
    clock: FrozenClock,
) -> None:
    account = established(clock, gmv=150)
    decision = gmv(account, "a lot")  # type: ignore[arg-type]
    assert kinds(decision) == [("condition_failed", "established", None)]
    assert "tier metric 'account.gmv' gave 'a lot'" in decision.transitions[0].reason
    assert account.current.tier == "silver"


def test_a_windowed_metric_demotes_on_review_as_sales_leave_the_window(
    clock: FrozenClock,
) -> None:
    path = tiered('sum("Order", "amount", within="P7D")')
    account = Account(path, clock)
    account.group()
    account.event("Order", properties={"amount": 150})
    account.event("Setup")
    assert account.current.tier == "silver"
    fired = account.wait(7 * DAY)
    changes = [change(d) for d in fired if d.transitions]
    assert [(c.payload["from"], c.payload["to"]) for c in changes] == [("silver", "bronze")]
    assert changes[0].occurred_at == epoch(T0 + 7 * DAY)


def test_conditions_read_the_tier_and_the_stage(clock: FrozenClock) -> None:
    path = build(
        document(
            [
                stage("new", node("setup", 'happened("Setup")')),
                stage(
                    "established",
                    node("reach_gold", 'tier == "gold" and stage == "established"'),
                    node("stay"),
                ),
            ],
            tiers={
                "metric": "account.gmv",
                "label": "GMV",
                "stages": ["established"],
                "levels": LEVELS,
            },
        )
    )
    account = Account(path, clock)
    account.group()
    account.event("Setup", facts={"account.gmv": 120})
    assert (account.at, account.current.tier) == (("established", "reach_gold"), "silver")
    decision = gmv(account, 510)
    assert kinds(decision) == [
        ("tier_changed", "established", None),
        ("node_completed", "established", "reach_gold"),
        ("node_entered", "established", "stay"),
    ]


def test_a_metric_failing_on_the_account_is_recorded_and_the_tier_kept(
    clock: FrozenClock,
) -> None:
    path = build(
        document(
            [stage("established")],
            tiers={
                "metric": "account.gmv / account.days",
                "label": "GMV per day",
                "stages": ["established"],
                "levels": LEVELS,
            },
        )
    )
    account = Account(path, clock)
    account.group(facts={"account.gmv": 1000, "account.days": 5})
    assert account.current.tier == "silver"
    decision = account.group(facts={"account.days": 0})
    assert kinds(decision) == [("condition_failed", "established", None)]
    assert "division by zero" in decision.transitions[0].reason
    assert account.current.tier == "silver"
