"""The pure core, input by input with a frozen clock: enrolment, completion conditions over
events and account facts, scores, holds, conditions failing on one account, manual moves,
and deterministic ids."""

from __future__ import annotations

from typing import Any

import pytest
from msgspec.structs import replace

from services.node_engine.core.state import (
    PUBLISHED,
    AccountState,
    NodeRecord,
    NodeStatus,
    ScoreUpdate,
    TimerFired,
    TimerKind,
    TransitionKind,
)
from services.node_engine.core.transition import RISK_AUDIENCE, transition
from services.node_engine.paths.compiled import GrowthPath
from shared.clock import FrozenClock
from shared.contracts.triggers import TriggerKind
from tests.services.node_engine.support import (
    ACCOUNT,
    DAY,
    HOUR,
    T0,
    WORKSPACE,
    Account,
    build,
    document,
    epoch,
    kinds,
    node,
    observation,
    stage,
    where,
)


def single(complete_when: str, **fields: Any) -> GrowthPath:
    """Stage ``s``: node ``n`` (completing when ``complete_when``), then node ``after``."""
    return build(
        document([stage("s", node("n", complete_when, **fields), node("after"))]),
    )


def enrolled(path: GrowthPath, clock: FrozenClock, **fields: Any) -> Account:
    account = Account(path, clock)
    account.group(**fields)
    assert account.state is not None
    return account


COMPLETED = [("node_completed", "s", "n"), ("node_entered", "s", "after")]


# -- enrolment ----------------------------------------------------------------------------


def test_an_event_meeting_enrol_when_enrols_the_account(clock: FrozenClock) -> None:
    path = single('happened("Done")', notify=["admin"])
    decision = transition(
        None, observation(type="group", event_id="g1"), path=path, now=clock.now()
    )
    assert kinds(decision) == [
        ("enrolled", "s", None),
        ("stage_entered", "s", None),
        ("node_entered", "s", "n"),
    ]
    assert [t.kind for t in decision.triggers] == [
        TransitionKind.STAGE_ENTERED,
        TransitionKind.NODE_ENTERED,
    ]
    assert decision.transitions[0].trigger_kind is None
    assert decision.transitions[1].trigger_kind is TriggerKind.STAGE_ENTERED
    assert decision.transitions[2].target_roles == ("admin",)
    assert decision.transitions[0].reason == "enrolled on Test path by group"
    assert {t.cause_id for t in decision.transitions} == {"g1"}
    assert {t.occurred_at for t in decision.transitions} == {epoch(T0)}
    state = decision.state
    assert state is not None
    assert (state.workspace_id, state.account_id) == (WORKSPACE, ACCOUNT)
    assert (state.path_id, state.path_version) == ("test-path", 1)
    assert (state.enrolled_at, state.stage_entered_at, state.node_entered_at) == (
        epoch(T0),
        epoch(T0),
        epoch(T0),
    )
    assert (state.stage, state.node, state.sequence, state.tier) == ("s", "n", 1, None)
    assert state.nodes == {"n": NodeRecord(NodeStatus.ACTIVE, 1, epoch(T0))}
    (review,) = decision.timers
    assert (review.kind, review.due_at, review.node) == (TimerKind.REVIEW, epoch(T0 + DAY), None)


def test_an_event_not_meeting_enrol_when_leaves_the_account_off_the_path(
    clock: FrozenClock,
) -> None:
    path = single('happened("Done")')
    decision = transition(None, observation("Page Viewed"), path=path, now=clock.now())
    assert decision.state is None
    assert decision.transitions == ()
    assert decision.timers == ()


def test_only_an_observation_can_enrol(clock: FrozenClock) -> None:
    path = single('happened("Done")')
    score = ScoreUpdate("s1", "health", {"risk_level": "high"}, epoch(T0))
    assert transition(None, score, path=path, now=clock.now()).state is None
    assert transition(None, observation(type="group"), path=path, now=clock.now(), hold=True) == (
        transition(None, score, path=path, now=clock.now())
    )


def test_enrol_when_reads_the_event_and_the_facts_it_states(clock: FrozenClock) -> None:
    path = build(
        document(
            [stage("s", node("n", 'crm.plan == "pro"'))],
            enrol_when='event == "Signed Up" and crm.plan in ["pro", "basic"]',
        )
    )
    assert transition(None, observation("Signed Up"), path=path, now=clock.now()).state is None
    decision = transition(
        None,
        observation("Signed Up", facts={"crm.plan": "pro"}),
        path=path,
        now=clock.now(),
    )
    # enrolled, and the fact it stated completes the first node at once
    assert decision.state is not None
    assert decision.state.facts == {"crm.plan": "pro"}
    assert kinds(decision)[-1] == ("node_completed", "s", "n")


def test_the_enrolling_event_is_counted(clock: FrozenClock) -> None:
    path = build(
        document(
            [stage("s", node("n", 'count("Order") >= 1'), node("after"))],
            enrol_when='event == "Order"',
        )
    )
    account = Account(path, clock)
    account.event("Order")
    assert account.at == ("s", "after")
    assert account.current.aggregates == {"count|Order||||": 1.0}


def test_an_enrol_when_failing_on_the_event_does_not_enrol(clock: FrozenClock) -> None:
    path = build(document([stage("s", node("n"))], enrol_when="properties.amount > 10"))
    decision = transition(
        None, observation("Order", properties={"amount": "ten"}), path=path, now=clock.now()
    )
    assert decision == transition(None, observation("Order"), path=path, now=clock.now())
    assert decision.state is None


def test_a_state_on_another_path_version_is_refused(clock: FrozenClock) -> None:
    account = enrolled(single('happened("Done")'), clock)
    newer = build(document([stage("s", node("n"))]), version=2)
    with pytest.raises(ValueError, match="v2"):
        transition(account.current, observation("Done"), path=newer, now=clock.now())


# -- completion conditions over events ------------------------------------------------------


def test_completion_by_event_name(clock: FrozenClock) -> None:
    account = enrolled(single('happened("Listing Published")', notify=["admin"]), clock)
    assert account.event("Listing Drafted").transitions == ()
    clock.advance(2 * HOUR)
    decision = account.event("Listing Published")
    assert kinds(decision) == COMPLETED
    done = decision.transitions[0]
    assert done.target_roles == ("admin",)
    assert done.reason == 'N: happened("Listing Published")'
    assert done.payload == {"days_in_node": 0.08}
    assert account.current.nodes["n"] == NodeRecord(
        NodeStatus.COMPLETED, 1, epoch(T0), epoch(T0 + 2 * HOUR)
    )


def test_completion_with_property_predicates(clock: FrozenClock) -> None:
    account = enrolled(
        single(
            'happened("Order", where="properties.amount >= 100 and properties.currency == \'EUR\'")'
        ),
        clock,
    )
    assert account.event("Order", properties={"amount": 50, "currency": "EUR"}).transitions == ()
    assert account.event("Order", properties={"amount": 150, "currency": "USD"}).transitions == ()
    assert account.event("Order", properties={"currency": "EUR"}).transitions == ()
    assert account.event("Refund", properties={"amount": 500, "currency": "EUR"}).transitions == ()
    assert kinds(account.event("Order", properties={"amount": 100, "currency": "EUR"})) == COMPLETED


def test_fifteen_orders_in_seven_days_counts_only_the_window(clock: FrozenClock) -> None:
    account = enrolled(single('count("Order", within="P7D") >= 15'), clock)
    for _ in range(10):
        account.event("Order")
    clock.advance(6 * DAY)
    for _ in range(4):
        account.event("Order")
    assert account.at == ("s", "n")
    # day 7: the ten orders of day 0 leave the window; a lifetime count would be 15 now
    clock.advance(DAY)
    assert account.event("Order").transitions == ()
    for _ in range(9):
        assert account.event("Order").transitions == ()
    assert kinds(account.event("Order")) == COMPLETED


def test_a_windowed_sum(clock: FrozenClock) -> None:
    account = enrolled(single('sum("Order", "amount", within="P7D") >= 1000'), clock)
    account.event("Order", properties={"amount": 600})
    clock.advance(7 * DAY)
    assert account.event("Order", properties={"amount": 600}).transitions == ()
    assert kinds(account.event("Order", properties={"amount": "400"})) == COMPLETED


def test_three_distinct_end_users(clock: FrozenClock) -> None:
    account = enrolled(single('distinct_users("Report Created", role="end_user") >= 3'), clock)
    account.event("Report Created", user_id="ann", roles=["end_user"])
    account.event("Report Created", user_id="ann", roles=["end_user"])
    account.event("Report Created", user_id="bob", roles=["admin"])
    account.event("Report Created", user_id=None, roles=["end_user"])
    account.event("Report Viewed", user_id="cat", roles=["end_user"])
    account.event("Report Created", user_id="dan", roles=["end_user", "admin"])
    assert account.at == ("s", "n")
    assert kinds(account.event("Report Created", user_id="eve", roles=["end_user"])) == COMPLETED


def test_the_role_of_the_acting_user(clock: FrozenClock) -> None:
    account = enrolled(single('happened("User Invited", by="admin")'), clock)
    assert account.event("User Invited", roles=["end_user"]).transitions == ()
    assert account.event("User Invited").transitions == ()
    assert kinds(account.event("User Invited", roles=["admin", "end_user"])) == COMPLETED


@pytest.mark.parametrize(
    ("condition", "fact", "value"),
    [
        ('crm.deal_stage == "won"', "crm.deal_stage", "won"),
        ('crm.contract_status == "signed"', "crm.contract_status", "signed"),
        ('crm.invoice_status in ["paid", "settled"]', "crm.invoice_status", "paid"),
        ("account.payout_managed == True", "account.payout_managed", True),
    ],
)
def test_completion_on_crm_facts(clock: FrozenClock, condition: str, fact: str, value: Any) -> None:
    account = enrolled(single(condition), clock)
    assert account.event("Anything", facts={fact: "other"}).transitions == ()
    assert kinds(account.event("milepost.crm.update", facts={fact: value})) == COMPLETED
    assert account.current.facts[fact] == value


def test_facts_persist_and_the_latest_wins(clock: FrozenClock) -> None:
    account = enrolled(single('crm.deal_stage == "won" and crm.contract_status == "signed"'), clock)
    account.crm("deal.stage_changed", deal_stage="won")
    account.crm("deal.stage_changed", deal_stage="lost")
    account.crm("contract.signed", contract_status="signed")
    assert account.at == ("s", "n")
    assert kinds(account.crm("deal.stage_changed", deal_stage="won")) == COMPLETED


def test_days_to_renewal_reads_renewal_at_in_epoch_seconds(clock: FrozenClock) -> None:
    account = enrolled(single("days_to_renewal <= 90"), clock)
    account.crm("account.upserted", renewal_at=epoch(T0 + 100 * DAY))
    assert account.at == ("s", "n")
    # the review timers re-check it as the clock approaches the renewal date
    fired = account.wait(10 * DAY)
    assert [kinds(d) for d in fired if d.transitions] == [COMPLETED]
    assert account.current.nodes["n"].completed_at == epoch(T0 + 10 * DAY)


def test_days_in_stage_node_and_enrolled(clock: FrozenClock) -> None:
    path = build(
        document(
            [
                stage(
                    "s",
                    node("n", "days_in_node >= 2 and days_in_stage >= 2 and days_enrolled >= 2"),
                    node("after", "days_in_node >= 1.5 and days_enrolled >= 3.5"),
                    node("last"),
                )
            ]
        )
    )
    account = enrolled(path, clock)
    account.wait(2 * DAY)
    assert account.at == ("s", "after")
    account.wait(DAY)
    assert account.at == ("s", "after")
    account.wait(DAY)
    assert account.at == ("s", "last")


# -- scores -------------------------------------------------------------------------------


def test_a_score_update_sets_score_facts_that_conditions_read(clock: FrozenClock) -> None:
    account = enrolled(single("score.health >= 70"), clock)
    assert account.score({"health": 40}).transitions == ()
    assert account.current.facts["score.health"] == 40
    assert kinds(account.score({"health": 75})) == COMPLETED


def test_a_change_of_risk_level_is_a_risk_changed_trigger(clock: FrozenClock) -> None:
    account = enrolled(single('happened("Done")'), clock)
    # the very first score finding nothing ("unknown -> low") is announced to nobody
    assert account.score({"risk_level": "low", "health": 80}).transitions == ()
    assert account.current.facts["score.risk_level"] == "low"
    assert account.score({"risk_level": "low", "health": 70}).transitions == ()
    assert account.score({"health": 50}).transitions == ()
    reason = {
        "signal": "invoice_overdue",
        "severity": "high",
        "sentence": "An invoice is overdue.",
        "measure": 1.0,
        "threshold": 1.0,
        "figures": {},
    }
    update = ScoreUpdate(
        "s-high",
        "risk_raised",
        {"risk_level": "high", "signals": ["invoice_overdue"]},
        epoch(T0),
        (reason,),
    )
    (high,) = account.apply(update).triggers
    assert (high.kind, high.stage, high.node) == (TransitionKind.RISK_CHANGED, "s", None)
    assert high.target_roles == RISK_AUDIENCE == ("account_owner", "decision_maker")
    assert high.reason == "risk level low -> high"
    assert high.payload == {
        "from": "low",
        "to": "high",
        "signals": ["invoice_overdue"],
        "reasons": [reason],
    }
    assert "score.reasons" not in account.current.facts


def test_a_first_score_at_risk_is_announced(clock: FrozenClock) -> None:
    account = enrolled(single('happened("Done")'), clock)
    (risk,) = account.score({"risk_level": "medium"}).triggers
    assert risk.reason == "risk level unknown -> medium"


def test_facts_stated_before_enrolment_are_known_when_the_account_enrols(
    clock: FrozenClock,
) -> None:
    """The CRM account record (size 800) comes first, the deal that enrols it next: a
    branch on ``account.size >= 500`` takes the large-company route."""
    path = build(
        document(
            [
                stage(
                    "s",
                    node(
                        "qualify",
                        'crm.deal_stage == "qualified"',
                        next=[{"when": "account.size >= 500", "goto": "large"}],
                    ),
                    node("small"),
                    node("large"),
                )
            ],
            enrol_when='event == "milepost.crm.deal.stage_changed"',
        )
    )
    record = observation("milepost.crm.account.upserted", type="crm", facts={"account.size": 800})
    assert transition(None, record, path=path, now=clock.now()).state is None
    deal = observation(
        "milepost.crm.deal.stage_changed",
        type="crm",
        event_id="e2",
        facts={"crm.deal_stage": "qualified", "crm.deal_amount": 5000.0},
    )
    decision = transition(None, deal, path=path, now=clock.now(), known=record.facts)
    assert decision.state is not None
    assert where(decision.state) == ("s", "large")
    assert decision.state.facts == {
        "account.size": 800,
        "crm.deal_stage": "qualified",
        "crm.deal_amount": 5000.0,
    }


# -- hold: a paused path folds data but does not move ----------------------------------------


def test_on_hold_data_is_folded_but_nothing_moves_or_fires(clock: FrozenClock) -> None:
    account = enrolled(single('count("Order") >= 2'), clock)
    before = account.current
    account.event("Order", hold=True)
    decision = account.event("Order", facts={"crm.plan": "pro"}, hold=True)
    assert decision.transitions == ()
    assert decision.timers == ()
    assert account.at == ("s", "n")
    assert account.current.aggregates == {"count|Order||||": 2.0}
    assert account.current.facts == {"crm.plan": "pro"}
    assert account.current.sequence == before.sequence + 2
    risk = account.score({"risk_level": "high"}, hold=True)
    assert risk.transitions == ()
    assert account.current.facts["score.risk_level"] == "high"
    # released: the next input moves with what was folded
    assert kinds(account.event("Page Viewed")) == COMPLETED


def test_on_hold_a_due_timer_changes_nothing_and_a_review_keeps_its_rhythm(
    clock: FrozenClock,
) -> None:
    account = enrolled(single("days_in_node >= 1", due="PT12H"), clock)
    due = account.timer(TimerKind.DUE)
    clock.advance(12 * HOUR)
    state = account.current
    assert account.fire(due, hold=True).state is state
    review = account.timer(TimerKind.REVIEW)
    clock.advance(12 * HOUR)
    decision = account.fire(review, hold=True)
    assert decision.transitions == ()
    (following,) = decision.timers
    assert (following.kind, following.due_at) == (TimerKind.REVIEW, epoch(T0 + 2 * DAY))
    assert account.at == ("s", "n")


def test_on_hold_a_due_timer_sets_its_escalation_which_fires_after_the_pause(
    clock: FrozenClock,
) -> None:
    path = single(
        "days_in_node >= 9", due="PT12H", escalations=[{"at": "P1D", "notify": ["admin"]}]
    )
    account = enrolled(path, clock)
    due = account.timer(TimerKind.DUE)
    clock.advance(12 * HOUR)
    held = account.fire(due, hold=True)
    assert held.transitions == ()
    (escalation,) = held.timers
    assert (escalation.kind, escalation.due_at) == (TimerKind.ESCALATION, epoch(T0 + DAY))
    clock.advance(12 * HOUR)
    assert kinds(account.fire(escalation)) == [("escalation", "s", "n")]


# -- a condition failing on one account ----------------------------------------------------


def test_a_sum_of_text_is_recorded_and_the_rest_still_applies(clock: FrozenClock) -> None:
    path = build(
        document(
            [
                stage(
                    "s",
                    node("n", 'count("Order") >= 1 and sum("Order", "amount") < 1000'),
                    node("after"),
                )
            ]
        )
    )
    account = enrolled(path, clock)
    decision = account.event("Order", properties={"amount": "lots"}, facts={"crm.plan": "pro"})
    assert kinds(decision) == [("condition_failed", "s", None), *COMPLETED]
    failed = decision.transitions[0]
    assert failed.reason == "sum of 'amount': 'lots' is not a number"
    assert failed.trigger_kind is None
    state = account.current
    assert state.last_error == "sum of 'amount': 'lots' is not a number"
    assert state.aggregates["count|Order||||"] == 1.0
    assert "sum|Order|amount|||" not in state.aggregates
    assert state.facts == {"crm.plan": "pro"}


def test_comparing_text_with_a_number_is_recorded_and_the_next_branch_taken(
    clock: FrozenClock,
) -> None:
    path = build(
        document(
            [
                stage(
                    "s",
                    node(
                        "n",
                        next=[
                            {"when": "crm.seats > 10", "goto": "big"},
                            {"when": 'crm.plan == "pro"', "goto": "pro"},
                        ],
                    ),
                    node("big", 'happened("Big")'),
                    node("pro", 'happened("Pro")'),
                )
            ]
        )
    )
    account = enrolled(path, clock)
    decision = account.event("Done", facts={"crm.seats": "many", "crm.plan": "pro"})
    assert kinds(decision) == [
        ("node_completed", "s", "n"),
        ("condition_failed", "s", "n"),
        ("node_entered", "s", "pro"),
    ]
    assert decision.transitions[1].reason.startswith("'crm.seats > 10': '>' not supported")
    assert account.current.last_error == decision.transitions[1].reason


def test_a_failing_completion_condition_keeps_the_node_and_records_each_time(
    clock: FrozenClock,
) -> None:
    account = enrolled(single("crm.seats >= 10"), clock)
    first = account.event("Seats Changed", facts={"crm.seats": "ten"})
    assert kinds(first) == [("condition_failed", "s", "n")]
    assert account.at == ("s", "n")
    assert kinds(account.event("Page Viewed")) == [("condition_failed", "s", "n")]
    assert kinds(account.event("Seats Changed", facts={"crm.seats": 12})) == COMPLETED


def test_a_filter_failing_on_an_event_is_recorded(clock: FrozenClock) -> None:
    account = enrolled(single('happened("Order", where="properties.amount > 100")'), clock)
    decision = account.event("Order", properties={"amount": "big"})
    assert kinds(decision) == [("condition_failed", "s", None)]
    assert "'properties.amount > 100'" in decision.transitions[0].reason
    assert kinds(account.event("Order", properties={"amount": 101})) == COMPLETED


def test_an_unreadable_renewal_date_is_recorded(clock: FrozenClock) -> None:
    account = enrolled(single("days_to_renewal <= 90"), clock)
    decision = account.crm("account.upserted", renewal_at="next spring")
    assert kinds(decision) == [("condition_failed", "s", "n")]
    assert account.current.last_error is not None


# -- manual moves --------------------------------------------------------------------------


def moves_path() -> GrowthPath:
    return build(
        document(
            [
                stage(
                    "one",
                    node("a", 'happened("A", within="PT1H")', due="P1D"),
                    node("b", 'happened("B")', due="P2D", notify=["admin"]),
                ),
                stage("two", node("c", 'happened("C")'), node("d", 'happened("D")')),
            ]
        )
    )


def test_a_manual_move_to_a_node_is_audited(clock: FrozenClock) -> None:
    account = enrolled(moves_path(), clock)
    clock.advance(HOUR)
    decision = account.move("b", note="merchant asked")
    assert kinds(decision) == [("moved", "one", "a"), ("node_entered", "one", "b")]
    moved = decision.transitions[0]
    assert moved.trigger_kind is None
    assert moved.payload == {"actor": "ops@example.com", "note": "merchant asked", "target": "b"}
    assert moved.reason == "moved to b by ops@example.com: merchant asked"
    assert account.current.nodes["a"] == NodeRecord(
        NodeStatus.SKIPPED, 1, epoch(T0), epoch(T0 + HOUR)
    )
    (due,) = decision.timers
    assert (due.kind, due.node, due.visit, due.due_at) == (
        TimerKind.DUE,
        "b",
        1,
        epoch(T0 + 2 * DAY),
    )


def test_a_manual_move_to_another_stage_or_node_enters_it(clock: FrozenClock) -> None:
    account = enrolled(moves_path(), clock)
    assert kinds(account.move("d")) == [
        ("moved", "one", "a"),
        ("stage_entered", "two", None),
        ("node_entered", "two", "d"),
    ]
    assert kinds(account.move("one")) == [
        ("moved", "two", "d"),
        ("stage_entered", "one", None),
        ("node_entered", "one", "a"),
    ]
    assert account.current.nodes["a"].visits == 2


def test_a_manual_move_to_the_current_node_starts_a_new_visit(clock: FrozenClock) -> None:
    account = enrolled(moves_path(), clock)
    old_due = account.timer(TimerKind.DUE, "a")
    account.move("a")
    assert account.current.nodes["a"].visits == 2
    clock.advance(DAY)
    assert account.fire(old_due).transitions == ()
    assert kinds(account.fire(account.timer(TimerKind.DUE, "a"))) == [("node_overdue", "one", "a")]


def test_a_manual_move_to_a_completed_stage_enters_its_first_node_again(
    clock: FrozenClock,
) -> None:
    account = enrolled(moves_path(), clock)
    account.event("A")
    account.event("B")
    assert account.at == ("two", "c")
    clock.advance(2 * HOUR)
    assert kinds(account.move("one")) == [
        ("moved", "two", "c"),
        ("stage_entered", "one", None),
        ("node_entered", "one", "a"),
    ]
    assert account.at == ("one", "a")


def test_a_manual_move_to_an_unknown_target_moves_nothing(clock: FrozenClock) -> None:
    account = enrolled(moves_path(), clock)
    decision = account.move("nowhere")
    assert [t.kind for t in decision.transitions] == [TransitionKind.CONDITION_FAILED]
    assert "'nowhere'" in decision.transitions[0].reason
    assert account.at == ("one", "a")


# -- determinism ---------------------------------------------------------------------------


def test_the_same_input_on_the_same_state_gives_the_same_decision(clock: FrozenClock) -> None:
    path = moves_path()
    group = observation(type="group", event_id="g1")
    first = transition(None, group, path=path, now=clock.now())
    again = transition(None, group, path=path, now=clock.now())
    assert first == again
    assert first.state is not None
    done = observation("A", event_id="e2")
    one = transition(first.state, done, path=path, now=clock.now())
    two = transition(first.state, done, path=path, now=clock.now())
    assert one == two
    assert [t.id for t in one.transitions] == [t.id for t in two.transitions]
    assert [t.id for t in one.timers] == [t.id for t in two.timers]
    ids = [t.id for t in first.transitions + one.transitions]
    assert len(set(ids)) == len(ids)


def test_different_causes_give_different_transition_ids(clock: FrozenClock) -> None:
    path = moves_path()
    state = transition(None, observation(type="group"), path=path, now=clock.now()).state
    assert state is not None
    one = transition(state, observation("A", event_id="e2"), path=path, now=clock.now())
    two = transition(state, observation("A", event_id="e3"), path=path, now=clock.now())
    assert kinds(one) == kinds(two)
    assert not {t.id for t in one.transitions} & {t.id for t in two.transitions}
    # the timers belong to the node visit, whatever completed the node before it
    assert [t.id for t in one.timers] == [t.id for t in two.timers]
    other_account = replace(state, account_id="globex")
    three = transition(other_account, observation("A", event_id="e2"), path=path, now=clock.now())
    assert not {t.id for t in one.transitions} & {t.id for t in three.transitions}
    assert not {t.id for t in one.timers} & {t.id for t in three.timers}


def test_a_timer_firing_is_the_cause_of_what_it_records(clock: FrozenClock) -> None:
    account = enrolled(moves_path(), clock)
    due = account.timer(TimerKind.DUE, "a")
    clock.advance(DAY)
    state = account.current
    first = transition(state, TimerFired(due), path=account.path, now=clock.now())
    again = transition(state, TimerFired(due), path=account.path, now=clock.now())
    assert first == again
    (overdue,) = first.transitions
    assert due.id in overdue.cause_id


def test_the_state_is_a_new_value_and_the_input_state_is_untouched(clock: FrozenClock) -> None:
    account = enrolled(single('count("Order") >= 2'), clock)
    before: AccountState = account.current
    snapshot = (dict(before.aggregates), dict(before.nodes), dict(before.facts))
    account.event("Order", facts={"crm.plan": "pro"})
    account.event("Order")
    assert (dict(before.aggregates), dict(before.nodes), dict(before.facts)) == snapshot
    assert account.current is not before


def test_filters_read_every_event_name(clock: FrozenClock) -> None:
    account = enrolled(
        single(
            "happened(None, where=\"source == 'crm' and user_id == 'u9' and "
            "traits.plan == 'pro' and type == 'identify' and properties.size.x == None\")"
        ),
        clock,
    )
    fields: dict[str, Any] = {
        "source": "crm",
        "user_id": "u9",
        "traits": {"plan": "pro"},
        "type": "identify",
        "properties": {"size": 3},
    }
    for name, value in [("source", "segment"), ("user_id", "u1"), ("type", "track")]:
        assert account.event("Anything", **{**fields, name: value}).transitions == ()
    assert account.event("Anything", **{**fields, "traits": {"plan": "basic"}}).transitions == ()
    assert kinds(account.event("Anything", **fields)) == COMPLETED


def test_what_is_published_as_a_trigger() -> None:
    assert {kind.value for kind in PUBLISHED} == {kind.value for kind in TriggerKind}
    for kind in TransitionKind:
        expected = kind.value in {k.value for k in TriggerKind}
        assert (kind in PUBLISHED) is expected
    assert TransitionKind.ENROLLED not in PUBLISHED
    assert TransitionKind.MOVED not in PUBLISHED
    assert TransitionKind.NODE_SKIPPED not in PUBLISHED
    assert TransitionKind.CONDITION_FAILED not in PUBLISHED
