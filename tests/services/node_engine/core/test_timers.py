"""Timers: due dates from stage or node entry, the escalation chain on overdue, stale
timers that change nothing, and review timers that re-check time-based conditions."""

from __future__ import annotations

from datetime import timedelta

import pytest
from msgspec.structs import replace

from services.node_engine.core.state import Timer, TimerFired, TimerKind, TransitionKind
from services.node_engine.core.transition import transition
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


def chained() -> GrowthPath:
    return build(
        document(
            [
                stage(
                    "setup",
                    node("profile", 'happened("Profile")'),
                    node(
                        "listing",
                        'happened("Listing")',
                        due="P3D",
                        notify=["admin"],
                        escalations=[
                            {"at": "P5D", "notify": ["account_owner"], "action": "task"},
                            {
                                "at": "P7D",
                                "notify": ["decision_maker", "account_owner"],
                                "reason": "No listing by day 7: call the decision maker",
                            },
                        ],
                    ),
                    node("order", 'happened("Order")', due="P2D", due_from="node"),
                )
            ]
        )
    )


def at_listing(clock: FrozenClock, *, after: timedelta) -> Account:
    """Enrolled at T0; the profile is done ``after`` later, entering ``listing``."""
    account = Account(chained(), clock)
    account.group()
    clock.advance(after)
    account.event("Profile")
    assert account.at == ("setup", "listing")
    return account


def test_due_and_escalations_are_anchored_at_stage_entry_and_set_one_after_another(
    clock: FrozenClock,
) -> None:
    account = at_listing(clock, after=DAY)
    (due,) = account.decisions[-1].timers
    assert (due.kind, due.node, due.visit, due.level, due.due_at) == (
        TimerKind.DUE,
        "listing",
        1,
        0,
        epoch(T0 + 3 * DAY),
    )
    clock.set(T0 + 3 * DAY)
    (first,) = account.fire(due).timers
    assert (first.kind, first.level, first.due_at) == (TimerKind.ESCALATION, 1, epoch(T0 + 5 * DAY))
    clock.set(T0 + 5 * DAY)
    (second,) = account.fire(first).timers
    assert (second.kind, second.level, second.due_at) == (
        TimerKind.ESCALATION,
        2,
        epoch(T0 + 7 * DAY),
    )
    clock.set(T0 + 7 * DAY)
    assert account.fire(second).timers == ()
    assert {t.path_id for t in (due, first, second)} == {"test-path"}
    assert len({t.id for t in (due, first, second)}) == 3


def test_a_node_done_early_leaves_only_its_first_timer(clock: FrozenClock) -> None:
    account = at_listing(clock, after=DAY)
    account.event("Listing")
    assert [(t.kind, t.level) for t in account.pending(node="listing")] == [(TimerKind.DUE, 0)]


def test_a_due_date_from_node_entry(clock: FrozenClock) -> None:
    account = at_listing(clock, after=DAY)
    clock.advance(HOUR)
    decision = account.event("Listing")
    (due,) = decision.timers
    assert (due.kind, due.node, due.due_at) == (TimerKind.DUE, "order", epoch(T0 + 3 * DAY + HOUR))


def test_a_due_date_already_past_on_entry_falls_due_at_once(clock: FrozenClock) -> None:
    account = at_listing(clock, after=4 * DAY)
    due = account.timer(TimerKind.DUE, "listing")
    assert due.due_at == epoch(T0 + 4 * DAY)
    assert account.pending(TimerKind.ESCALATION) == []
    account.fire(due)
    assert [t.due_at for t in account.pending(TimerKind.ESCALATION)] == [epoch(T0 + 5 * DAY)]


def test_a_chain_already_past_on_entry_falls_due_link_by_link(clock: FrozenClock) -> None:
    account = at_listing(clock, after=8 * DAY)
    fired = [d for d in account.wait(timedelta(0)) if d.transitions]
    assert [kinds(d) for d in fired] == [
        [("node_overdue", "setup", "listing")],
        [("escalation", "setup", "listing")],
        [("escalation", "setup", "listing")],
    ]
    assert [d.transitions[0].payload["due_at"] for d in fired] == [epoch(T0 + 8 * DAY)] * 3


def test_overdue_then_the_escalation_chain(clock: FrozenClock) -> None:
    account = at_listing(clock, after=DAY)
    fired = [d for d in account.wait(7 * DAY) if d.transitions]
    assert [kinds(d) for d in fired] == [
        [("node_overdue", "setup", "listing")],
        [("escalation", "setup", "listing")],
        [("escalation", "setup", "listing")],
    ]
    overdue, first, second = (d.transitions[0] for d in fired)
    assert overdue.target_roles == ("admin",)
    assert overdue.payload == {"due_at": epoch(T0 + 3 * DAY), "condition": 'happened("Listing")'}
    assert overdue.reason == "Listing: not done P3D after stage entry"
    assert overdue.occurred_at == epoch(T0 + 3 * DAY)
    assert first.target_roles == ("account_owner",)
    assert first.payload == {"level": 1, "action": "task", "due_at": epoch(T0 + 5 * DAY)}
    assert first.reason == "Listing: still not done P5D after stage entry"
    assert second.target_roles == ("decision_maker", "account_owner")
    assert second.payload == {"level": 2, "action": "nudge", "due_at": epoch(T0 + 7 * DAY)}
    assert second.reason == "No listing by day 7: call the decision maker"
    assert all(t.trigger_kind is not None for t in (overdue, first, second))
    assert account.at == ("setup", "listing")


def test_a_node_due_from_its_entry_says_so(clock: FrozenClock) -> None:
    account = at_listing(clock, after=DAY)
    account.event("Listing")
    (overdue,) = account.fire(account.timer(TimerKind.DUE, "order")).transitions
    assert overdue.reason == "Order: not done P2D after node entry"
    assert overdue.target_roles == ()


def test_timers_of_a_completed_node_are_stale_and_change_nothing(clock: FrozenClock) -> None:
    account = at_listing(clock, after=DAY)
    stale = account.pending(node="listing")
    account.event("Listing")
    clock.advance(10 * DAY)
    for timer in stale:
        state = account.current
        decision = account.fire(timer)
        assert decision.state is state
        assert decision.transitions == ()
        assert decision.timers == ()


def test_timers_of_an_earlier_visit_are_stale(clock: FrozenClock) -> None:
    path = build(
        document(
            [
                stage(
                    "care",
                    node(
                        "call",
                        'count("Called", within="PT1H") >= 1',
                        due="PT12H",
                        due_from="node",
                        reentry="always",
                    ),
                    node("check", 'happened("Checked")', next=[{"goto": "call"}]),
                )
            ]
        )
    )
    account = Account(path, clock)
    account.group()
    first_visit = account.timer(TimerKind.DUE, "call")
    account.event("Called")
    clock.advance(2 * HOUR)
    account.event("Checked")
    assert account.at == ("care", "call")
    assert account.current.nodes["call"].visits == 2
    first_pending, second_visit = account.pending(TimerKind.DUE, "call")
    assert first_pending == first_visit
    assert (first_visit.visit, second_visit.visit) == (1, 2)
    assert second_visit.id != first_visit.id
    assert second_visit.due_at == epoch(T0 + 14 * HOUR)
    clock.advance(12 * HOUR)
    state = account.current
    assert account.fire(first_visit).state is state
    assert kinds(account.fire(second_visit)) == [("node_overdue", "care", "call")]


@pytest.mark.parametrize(
    "timer",
    [
        Timer("t1", "test-path", epoch(T0), TimerKind.DUE, "no_such_node", 1),
        Timer("t2", "test-path", epoch(T0), TimerKind.DUE, None, 1),
        Timer("t3", "test-path", epoch(T0), TimerKind.ESCALATION, "order", 1, 1),
    ],
    ids=["unknown node", "no node", "not the current node"],
)
def test_a_timer_for_another_node_is_stale(clock: FrozenClock, timer: Timer) -> None:
    account = at_listing(clock, after=DAY)
    state = account.current
    assert transition(state, TimerFired(timer), path=account.path, now=clock.now()).state is state


def test_a_timer_of_another_path_version_is_stale(clock: FrozenClock) -> None:
    account = at_listing(clock, after=DAY)
    state = account.current
    (due,) = account.pending(TimerKind.DUE, state.node)
    assert due.path_version == state.path_version == 1
    clock.advance(5 * DAY)
    older = replace(due, path_version=state.path_version + 1)
    assert transition(state, TimerFired(older), path=account.path, now=clock.now()).state is state
    assert kinds(transition(state, TimerFired(due), path=account.path, now=clock.now())) == [
        ("node_overdue", state.stage, state.node)
    ]


# -- review timers -------------------------------------------------------------------------


def test_a_review_schedules_the_next_one_review_every_later(clock: FrozenClock) -> None:
    account = Account(chained(), clock)
    account.group()
    first = account.timer(TimerKind.REVIEW)
    assert first.due_at == epoch(T0 + DAY)
    clock.advance(DAY)
    decision = account.fire(first)
    (second,) = decision.timers
    assert (second.kind, second.due_at) == (TimerKind.REVIEW, epoch(T0 + 2 * DAY))
    assert second.id != first.id
    assert decision.transitions == ()
    # replaying the same firing on the same state schedules the same next review
    again = transition(
        account.decisions[-2].state, TimerFired(first), path=account.path, now=clock.now()
    )
    assert again.timers == decision.timers


def test_a_late_review_is_not_scheduled_in_the_past(clock: FrozenClock) -> None:
    account = Account(chained(), clock)
    account.group()
    first = account.timer(TimerKind.REVIEW)
    clock.advance(3 * DAY)
    (second,) = account.fire(first).timers
    assert second.due_at > epoch(clock.now())


def test_reviews_recheck_time_based_conditions(clock: FrozenClock) -> None:
    path = build(
        document(
            [stage("wait", node("three_days", "days_in_stage >= 3"), node("next"))],
            review_every="PT6H",
        )
    )
    account = Account(path, clock)
    account.group()
    fired = account.wait(3 * DAY)
    assert len(fired) == 12
    assert [kinds(d) for d in fired if d.transitions] == [
        [("node_completed", "wait", "three_days"), ("node_entered", "wait", "next")]
    ]
    assert account.current.nodes["three_days"].completed_at == epoch(T0 + 3 * DAY)
    assert TransitionKind.NODE_COMPLETED in [t.kind for t in fired[-1].transitions]
