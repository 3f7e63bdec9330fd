"""How an account moves: the following node, branches (first match wins, across stages),
stage exits, skips, re-entry rules, and paths whose branches loop."""

from __future__ import annotations

from typing import Any

import pytest

from services.node_engine.core.state import NodeRecord, NodeStatus, TimerKind
from services.node_engine.core.transition import MAX_STEPS_PER_INPUT
from services.node_engine.paths.compiled import GrowthPath
from shared.clock import FrozenClock
from tests.services.node_engine.support import (
    DAY,
    HOUR,
    T0,
    Account,
    build,
    document,
    epoch,
    kinds,
    node,
    stage,
)


def enrolled(path: GrowthPath, clock: FrozenClock) -> Account:
    account = Account(path, clock)
    account.group()
    return account


# -- following nodes and stages -------------------------------------------------------------


def test_nodes_follow_in_order_and_the_last_node_leads_to_the_next_stage(
    clock: FrozenClock,
) -> None:
    path = build(
        document(
            [
                stage("one", node("a", 'happened("A")'), node("b", 'happened("B")')),
                stage("two", node("c", 'happened("C")'), notify=["account_owner"]),
            ]
        )
    )
    account = enrolled(path, clock)
    assert kinds(account.event("B")) == []
    assert kinds(account.event("A")) == [
        ("node_completed", "one", "a"),
        ("node_entered", "one", "b"),
        ("node_completed", "one", "b"),
        ("stage_entered", "two", None),
        ("node_entered", "two", "c"),
    ]
    assert account.decisions[-1].transitions[3].target_roles == ("account_owner",)
    assert account.current.stage_entered_at == epoch(T0)


def test_the_last_stage_keeps_the_account_without_a_node(clock: FrozenClock) -> None:
    path = build(document([stage("only", node("a", 'happened("A")'))]))
    account = enrolled(path, clock)
    assert kinds(account.event("A")) == [("node_completed", "only", "a")]
    assert account.at == ("only", None)
    assert kinds(account.event("A")) == []


def test_a_stage_without_nodes_waits(clock: FrozenClock) -> None:
    path = build(document([stage("one", node("a", 'happened("A")')), stage("zone")]))
    account = enrolled(path, clock)
    assert kinds(account.event("A"))[-1] == ("stage_entered", "zone", None)
    assert account.at == ("zone", None)


# -- branches ----------------------------------------------------------------------------


def branching() -> GrowthPath:
    return build(
        document(
            [
                stage(
                    "setup",
                    node(
                        "check",
                        'happened("Checked")',
                        next=[
                            {"when": 'crm.plan == "enterprise"', "goto": "kickoff"},
                            {"when": 'crm.plan in ["pro", "enterprise"]', "goto": "pro_tour"},
                            {"when": 'crm.plan == "free"', "goto": "grow"},
                        ],
                    ),
                    node("basic_tour", 'happened("Toured")'),
                    node("pro_tour", 'happened("Toured")'),
                ),
                stage("grow", node("first_value", 'happened("Value")')),
                stage(
                    "enterprise",
                    node("contract", 'happened("Signed")'),
                    node("kickoff", 'happened("Kicked Off")', notify=["decision_maker"]),
                ),
            ]
        )
    )


@pytest.mark.parametrize(
    ("plan", "expected"),
    [
        (
            "enterprise",
            [("stage_entered", "enterprise", None), ("node_entered", "enterprise", "kickoff")],
        ),
        ("pro", [("node_entered", "setup", "pro_tour")]),
        ("free", [("stage_entered", "grow", None), ("node_entered", "grow", "first_value")]),
        (None, [("node_entered", "setup", "basic_tour")]),
    ],
)
def test_the_first_matching_branch_picks_the_next_node_or_stage(
    clock: FrozenClock, plan: str | None, expected: list[tuple[str, str, str | None]]
) -> None:
    account = enrolled(branching(), clock)
    facts = {"crm.plan": plan} if plan else {}
    assert kinds(account.event("Checked", facts=facts)) == [
        ("node_completed", "setup", "check"),
        *expected,
    ]


def test_a_branch_to_a_node_in_another_stage_enters_that_stage_at_that_node(
    clock: FrozenClock,
) -> None:
    account = enrolled(branching(), clock)
    clock.advance(HOUR)
    decision = account.event("Checked", facts={"crm.plan": "enterprise"})
    assert account.at == ("enterprise", "kickoff")
    assert account.current.stage_entered_at == epoch(T0 + HOUR)
    assert decision.transitions[-1].target_roles == ("decision_maker",)
    assert "contract" not in account.current.nodes


def test_a_stage_exit_branches_and_its_condition_leaves_early(clock: FrozenClock) -> None:
    path = build(
        document(
            [
                stage(
                    "trial",
                    node("a", 'happened("A")'),
                    node("b", 'happened("B")'),
                    complete_when='crm.status in ["paid", "lost"]',
                    next=[{"when": 'crm.status == "lost"', "goto": "win_back"}],
                ),
                stage("paid", node("welcome", 'happened("W")')),
                stage("win_back", node("call", 'happened("Called")')),
            ]
        )
    )
    paid = enrolled(path, clock)
    assert kinds(paid.crm("deal.stage_changed", status="paid")) == [
        ("stage_entered", "paid", None),
        ("node_entered", "paid", "welcome"),
    ]
    assert paid.current.nodes["a"] == NodeRecord(NodeStatus.SKIPPED, 1, epoch(T0), epoch(T0))
    lost = enrolled(path, clock)
    lost.event("A")
    assert kinds(lost.crm("deal.stage_changed", status="lost")) == [
        ("stage_entered", "win_back", None),
        ("node_entered", "win_back", "call"),
    ]
    assert lost.current.nodes["b"].status is NodeStatus.SKIPPED
    assert lost.current.nodes["a"].status is NodeStatus.COMPLETED


# -- skips -------------------------------------------------------------------------------


def skipping() -> GrowthPath:
    return build(
        document(
            [
                stage(
                    "setup",
                    node("profile", 'happened("Profile")'),
                    node(
                        "payout",
                        'happened("Payout")',
                        skip_when="account.payout_managed == True",
                        due="P1D",
                    ),
                    node("listing", 'happened("Listing")'),
                )
            ]
        )
    )


def test_a_node_whose_skip_when_holds_is_skipped(clock: FrozenClock) -> None:
    account = enrolled(skipping(), clock)
    decision = account.event("Profile", facts={"account.payout_managed": True})
    assert kinds(decision) == [
        ("node_completed", "setup", "profile"),
        ("node_skipped", "setup", "payout"),
        ("node_entered", "setup", "listing"),
    ]
    skipped = decision.transitions[1]
    assert skipped.trigger_kind is None
    assert skipped.reason == "Payout: skipped (account.payout_managed == True)"
    assert account.current.nodes["payout"] == NodeRecord(
        NodeStatus.SKIPPED, 0, epoch(T0), epoch(T0)
    )
    assert [t.node for t in decision.timers] == []


def test_skip_when_is_checked_on_entry_only(clock: FrozenClock) -> None:
    account = enrolled(skipping(), clock)
    account.event("Profile")
    assert account.at == ("setup", "payout")
    assert kinds(account.event("Other", facts={"account.payout_managed": True})) == []
    assert account.at == ("setup", "payout")
    assert account.pending(TimerKind.DUE)[0].node == "payout"


# -- re-entry ----------------------------------------------------------------------------


def reentering(rule: str) -> GrowthPath:
    """``welcome`` is done by a call within the hour; ``check`` goes back to it."""
    return build(
        document(
            [
                stage(
                    "care",
                    node(
                        "welcome",
                        'count("Called", within="PT1H") >= 1',
                        reentry=rule,
                        next=[{"when": "crm.checked == True", "goto": "done"}],
                    ),
                    node("check", 'happened("Checked")', next=[{"goto": "welcome"}]),
                    node("done", 'happened("Finished")'),
                )
            ]
        )
    )


@pytest.mark.parametrize(
    ("rule", "after", "expected"),
    [
        ("never", 30 * DAY, "done"),
        ("always", 2 * HOUR, "welcome"),
        ("P7D", 2 * HOUR, "done"),
        ("P7D", 7 * DAY, "welcome"),
    ],
)
def test_reentry_rules(clock: FrozenClock, rule: str, after: Any, expected: str) -> None:
    account = enrolled(reentering(rule), clock)
    account.event("Called")
    assert account.at == ("care", "check")
    clock.advance(after)
    decision = account.event("Checked", facts={"crm.checked": True})
    assert account.at == ("care", expected)
    if expected == "welcome":
        assert account.current.nodes["welcome"] == NodeRecord(
            NodeStatus.ACTIVE, 2, epoch(T0 + after)
        )
        assert kinds(decision)[-1] == ("node_entered", "care", "welcome")
    else:
        # passed through: welcome's own branch was followed without entering it again
        assert ("node_entered", "care", "welcome") not in kinds(decision)
        assert account.current.nodes["welcome"].visits == 1


@pytest.mark.parametrize("rule", ["never", "always"])
def test_a_branch_into_another_stage_respects_reentry(clock: FrozenClock, rule: str) -> None:
    path = build(
        document(
            [
                stage(
                    "onboarding",
                    node(
                        "intro",
                        'happened("Intro")',
                        reentry=rule,
                        next=[{"when": 'crm.reset == "yes"', "goto": "later"}],
                    ),
                ),
                stage(
                    "use",
                    node(
                        "active",
                        'happened("Used")',
                        next=[{"when": 'crm.reset == "yes"', "goto": "intro"}],
                    ),
                    node("later", 'happened("Later")'),
                ),
            ]
        )
    )
    account = enrolled(path, clock)
    account.event("Intro")
    assert account.at == ("use", "active")
    decision = account.event("Used", facts={"crm.reset": "yes"})
    visit = (
        [("node_entered", "onboarding", "intro"), ("node_completed", "onboarding", "intro")]
        if rule == "always"
        else []
    )
    assert kinds(decision) == [
        ("node_completed", "use", "active"),
        ("stage_entered", "onboarding", None),
        *visit,
        ("stage_entered", "use", None),
        ("node_entered", "use", "later"),
    ]
    assert account.current.nodes["intro"].visits == (2 if rule == "always" else 1)


# -- loops -------------------------------------------------------------------------------


@pytest.mark.parametrize("rule", ["always", "never"])
def test_branches_that_loop_stop_with_a_recorded_error(clock: FrozenClock, rule: str) -> None:
    path = build(
        document(
            [
                stage(
                    "loop",
                    node("a", "crm.go == True", reentry=rule, next=[{"goto": "b"}]),
                    node("b", "crm.go == True", reentry=rule, next=[{"goto": "a"}]),
                )
            ]
        )
    )
    account = enrolled(path, clock)
    decision = account.event("Go", facts={"crm.go": True})
    assert decision.state is not None
    failed = [t for t in decision.transitions if t.kind.value == "condition_failed"]
    assert len(failed) == 1
    assert "do branches loop?" in failed[0].reason
    assert account.current.last_error == failed[0].reason
    assert len(decision.transitions) <= 2 * MAX_STEPS_PER_INPUT + 2


def test_a_loop_across_stages_through_done_nodes_stops_with_a_recorded_error(
    clock: FrozenClock,
) -> None:
    path = build(
        document(
            [
                stage("one", node("intro", 'happened("Intro")')),
                stage(
                    "two",
                    node("active", "crm.back == True", next=[{"when": "crm.back", "goto": "one"}]),
                ),
            ]
        )
    )
    account = enrolled(path, clock)
    account.event("Intro")
    assert account.at == ("two", "active")
    decision = account.event("Back", facts={"crm.back": True})
    failed = [t for t in decision.transitions if t.kind.value == "condition_failed"]
    assert len(failed) == 1
    assert "do branches loop?" in failed[0].reason


def test_the_last_stage_completing_keeps_the_account_there(clock: FrozenClock) -> None:
    path = build(
        document(
            [
                stage("one", node("a", 'happened("A", within="PT1H")')),
                stage(
                    "last",
                    node("b", 'happened("B")'),
                    complete_when='crm.status == "churned" and stage == "last"',
                ),
            ]
        )
    )
    account = enrolled(path, clock)
    account.event("A")
    assert account.at == ("last", "b")
    assert kinds(account.crm("account.upserted", status="churned")) == []
    assert (account.current.stage, account.current.node) == ("last", None)
    assert account.current.nodes["b"].status is NodeStatus.SKIPPED
    # a manual move from a stage without a current node
    clock.advance(2 * HOUR)
    decision = account.move("a")
    assert kinds(decision) == [
        ("moved", "last", None),
        ("stage_entered", "one", None),
        ("node_entered", "one", "a"),
    ]
