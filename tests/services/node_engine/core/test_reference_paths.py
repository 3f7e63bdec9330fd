"""The two reference growth paths walked end to end with a frozen clock: a platform merchant
from its group call to the established zone and its GMV tiers, and a SaaS account from deal
stages to renewal windows and back after a renewal."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.node_engine.core.state import Decision, TimerKind, Transition, TransitionKind
from shared.clock import FrozenClock
from tests.services.node_engine.support import (
    DAY,
    HOUR,
    T0,
    Account,
    epoch,
    kinds,
    of_kind,
    reference,
)


def roles(transition: Transition) -> tuple[str, ...]:
    return tuple(str(role) for role in transition.target_roles)


def published(decisions: list[Decision]) -> list[tuple[str, str | None, tuple[str, ...]]]:
    """``(kind, node, roles)`` of every trigger in ``decisions``."""
    return [(t.kind.value, t.node, roles(t)) for d in decisions for t in d.triggers]


def tier_changes(decisions: list[Decision]) -> list[tuple[str | None, str | None, float]]:
    return [
        (t.payload["from"], t.payload["to"], t.payload["value"])
        for d in decisions
        for t in of_kind(d, TransitionKind.TIER_CHANGED)
    ]


# -- platform merchant --------------------------------------------------------------------


def order(account: Account, amount: float) -> Decision:
    return account.event("Order Completed", user_id="buyer", properties={"amount": amount})


def test_platform_merchant_from_group_call_to_established_tiers(clock: FrozenClock) -> None:
    merchant = Account(reference("platform-merchant"), clock)

    # day 0: the group call enrols the merchant; its traits say payouts are managed
    decision = merchant.group({"name": "Noodle Bar"}, facts={"account.payout_managed": True})
    assert kinds(decision) == [
        ("enrolled", "settle_in", None),
        ("stage_entered", "settle_in", None),
        ("node_entered", "settle_in", "application_approved"),
    ]
    assert published([decision]) == [
        ("stage_entered", None, ("admin",)),
        ("node_entered", "application_approved", ("account_owner",)),
    ]
    assert merchant.timer(TimerKind.DUE, "application_approved").due_at == epoch(T0 + 2 * DAY)

    # day 2: not approved yet -> overdue for the account owner
    fired = merchant.wait(2 * DAY)
    assert published(fired) == [("node_overdue", "application_approved", ("account_owner",))]

    # approved: account setup, day 1 profile node with a task escalation at day 3
    clock.advance(HOUR)
    decision = merchant.event("Merchant Approved", user_id=None, source="crm")
    assert kinds(decision) == [
        ("node_completed", "settle_in", "application_approved"),
        ("stage_entered", "account_setup", None),
        ("node_entered", "account_setup", "complete_profile"),
    ]
    setup_entered = T0 + 2 * DAY + HOUR
    # the first of the node's timers is set; the escalation follows when it fires
    assert [(t.kind, t.due_at) for t in decision.timers] == [
        (TimerKind.DUE, epoch(setup_entered + DAY)),
    ]

    # the profile is completed the same day; the payout node is skipped (managed payouts)
    clock.advance(5 * HOUR)
    decision = merchant.event("Profile Completed", user_id="owner", roles=["admin"])
    assert kinds(decision) == [
        ("node_completed", "account_setup", "complete_profile"),
        ("node_skipped", "account_setup", "payout_account"),
        ("stage_entered", "nurturing", None),
        ("node_entered", "nurturing", "first_listing"),
    ]
    nurturing_entered = T0 + 2 * DAY + 6 * HOUR
    assert merchant.current.stage_entered_at == epoch(nurturing_entered)

    # no listing: overdue at day 3 of the stage, the account manager's task at day 7; the
    # profile node's timers are stale by now and publish nothing
    fired = merchant.wait(7 * DAY)
    assert published(fired) == [
        ("node_overdue", "first_listing", ("admin",)),
        ("escalation", "first_listing", ("account_owner",)),
    ]
    overdue, task = (t for d in fired for t in d.triggers)
    assert overdue.occurred_at == epoch(nurturing_entered + 3 * DAY)
    assert task.occurred_at == epoch(nurturing_entered + 7 * DAY)
    assert task.payload["action"] == "task"
    assert task.reason == "No listing by day 7: the account manager visits or calls"

    # the listing, then the first order (its day-7 due date from stage entry has passed)
    clock.advance(HOUR)
    decision = merchant.event("Listing Published", user_id="owner", roles=["admin"])
    assert kinds(decision)[-1] == ("node_entered", "nurturing", "first_order")
    assert merchant.timer(TimerKind.DUE, "first_order").due_at == epoch(clock.now())
    decision = order(merchant, 2000)
    assert kinds(decision) == [
        ("node_completed", "nurturing", "first_order"),
        ("node_entered", "nurturing", "ten_orders"),
    ]
    assert roles(decision.transitions[1]) == ("admin", "decision_maker")

    # nine more orders, one a day: ten orders, but not 15 in 7 days -> the incentive node
    for _ in range(8):
        merchant.wait(DAY)
        assert kinds(order(merchant, 1000)) == []
    merchant.wait(DAY)
    decision = order(merchant, 1000)
    assert kinds(decision) == [
        ("node_completed", "nurturing", "ten_orders"),
        ("node_entered", "nurturing", "order_incentive"),
    ]
    incentive_entered = clock.now()
    assert merchant.timer(TimerKind.DUE, "order_incentive").due_at == epoch(
        incentive_entered + 14 * DAY
    )

    # a quiet week, then 15 orders in a day complete the incentive: established zone, placed
    # in L2 by the 28-day GMV
    merchant.wait(8 * DAY)
    for _ in range(14):
        assert kinds(order(merchant, 500)) == []
    decision = order(merchant, 500)
    assert kinds(decision) == [
        ("node_completed", "nurturing", "order_incentive"),
        ("stage_entered", "established", None),
        ("tier_changed", "established", None),
    ]
    placed = decision.transitions[-1]
    assert placed.payload == {
        "from": None,
        "to": "L2",
        "direction": "placement",
        "metric": "28-day GMV",
        "value": 2000 + 9 * 1000 + 15 * 500,
        "benefits": [{"id": "traffic_boost", "name": "Weekly traffic boost"}],
    }
    assert roles(placed) == ("decision_maker", "account_owner")
    assert merchant.at == ("established", None)

    # a big week of sales promotes it to L3
    merchant.wait(DAY)
    decision = order(merchant, 32000)
    assert tier_changes([decision]) == [("L2", "L3", 50500.0)]
    assert [b["id"] for b in decision.transitions[-1].payload["benefits"]] == [
        "ads_credit",
        "priority_support",
    ]

    # no more sales: as the 28-day window lets go of the early orders, the reviews demote it
    # to L2 only once GMV is below L3's exit (40000), and to L1 when everything has left
    fired = merchant.wait(40 * DAY)
    assert tier_changes(fired) == [("L3", "L2", 39500.0), ("L2", "L1", 0.0)]
    assert merchant.current.tier == "L1"


def test_platform_merchant_with_fifteen_orders_in_a_week_goes_straight_to_established(
    clock: FrozenClock,
) -> None:
    merchant = Account(reference("platform-merchant"), clock)
    merchant.group()
    merchant.event("Merchant Approved")
    merchant.event("Profile Completed")
    merchant.event("Payout Account Connected")
    assert merchant.at == ("nurturing", "first_listing")
    for _ in range(15):
        order(merchant, 800)
    assert merchant.at == ("nurturing", "first_listing")
    clock.advance(DAY)
    decision = merchant.event("Listing Published")
    assert kinds(decision) == [
        ("node_completed", "nurturing", "first_listing"),
        ("node_entered", "nurturing", "first_order"),
        ("node_completed", "nurturing", "first_order"),
        ("node_entered", "nurturing", "ten_orders"),
        ("node_completed", "nurturing", "ten_orders"),
        ("stage_entered", "established", None),
        ("tier_changed", "established", None),
    ]
    assert tier_changes([decision]) == [(None, "L2", 12000.0)]
    assert "order_incentive" not in merchant.current.nodes


# -- SaaS account -------------------------------------------------------------------------


def test_saas_account_from_deal_to_renewal_and_back_to_the_90_day_window(
    clock: FrozenClock,
) -> None:
    saas = Account(reference("saas-account"), clock)

    # a new deal enrols the account as a lead
    decision = saas.crm("deal.stage_changed", deal_stage="new")
    assert kinds(decision) == [
        ("enrolled", "lead", None),
        ("stage_entered", "lead", None),
        ("node_entered", "lead", "qualified"),
    ]
    assert saas.timer(TimerKind.DUE, "qualified").due_at == epoch(T0 + 14 * DAY)

    # deal stages move it through lead follow-up
    clock.advance(DAY)
    decision = saas.crm("deal.stage_changed", deal_stage="qualified")
    assert kinds(decision) == [
        ("node_completed", "lead", "qualified"),
        ("stage_entered", "opportunity", None),
        ("node_entered", "opportunity", "demo_held"),
    ]
    assert published([decision]) == [
        ("node_completed", "qualified", ("account_owner",)),
        ("stage_entered", None, ("account_owner",)),
        ("node_entered", "demo_held", ("account_owner",)),
    ]
    clock.advance(DAY)
    decision = saas.crm("deal.stage_changed", deal_stage="demo")
    assert kinds(decision) == [
        ("node_completed", "opportunity", "demo_held"),
        ("node_entered", "opportunity", "contract_signed"),
    ]
    assert roles(decision.transitions[1]) == ("account_owner", "decision_maker")

    # the contract is signed, with the renewal a year out: paid conversion
    clock.advance(3 * HOUR)
    signed_at = clock.now()
    renewal_at = epoch(signed_at + 365 * DAY)
    decision = saas.crm("contract.signed", contract_status="signed", renewal_at=renewal_at)
    assert kinds(decision) == [
        ("node_completed", "opportunity", "contract_signed"),
        ("stage_entered", "paid", None),
        ("node_entered", "paid", "first_invoice_paid"),
    ]
    assert roles(decision.transitions[1]) == ("decision_maker", "admin", "account_owner")

    # the first invoice is paid: onboarding
    clock.advance(DAY)
    decision = saas.crm("invoice.paid", invoice_status="paid")
    assert kinds(decision) == [
        ("node_completed", "paid", "first_invoice_paid"),
        ("stage_entered", "onboarding", None),
        ("node_entered", "onboarding", "admin_invited_users"),
    ]
    onboarding_at = clock.now()

    # the admin has not invited anyone by day 3: overdue for the admin
    fired = saas.wait(3 * DAY)
    assert published(fired) == [("node_overdue", "admin_invited_users", ("admin",))]

    # invitations sent by an end user do not count; three by the admin do
    saas.event("User Invited", user_id="ann", roles=["end_user"])
    saas.event("User Invited", user_id="adm", roles=["admin"])
    saas.event("User Invited", user_id="adm", roles=["admin"])
    assert saas.at == ("onboarding", "admin_invited_users")
    decision = saas.event("User Invited", user_id="adm", roles=["admin", "decision_maker"])
    assert kinds(decision) == [
        ("node_completed", "onboarding", "admin_invited_users"),
        ("node_entered", "onboarding", "key_feature_seats"),
    ]
    assert saas.timer(TimerKind.DUE, "key_feature_seats").due_at == epoch(onboarding_at + 14 * DAY)

    # three end users create reports (the same user twice counts once)
    clock.advance(HOUR)
    for user in ("ann", "bob", "ann"):
        assert kinds(saas.event("Report Created", user_id=user, roles=["end_user"])) == []
    decision = saas.event("Report Created", user_id="cat", roles=["end_user"])
    assert kinds(decision) == [
        ("node_completed", "onboarding", "key_feature_seats"),
        ("stage_entered", "adoption", None),
        ("node_entered", "adoption", "weekly_active_team"),
    ]

    # adoption: five users active within one week (those of last week do not count)
    saas.wait(8 * DAY)
    for user in ("ann", "bob", "cat", "dan"):
        assert kinds(saas.event("Page Viewed", user_id=user, roles=["end_user"])) == []
    decision = saas.event("Page Viewed", user_id="eve", roles=["end_user"])
    assert kinds(decision) == [
        ("node_completed", "adoption", "weekly_active_team"),
        ("stage_entered", "renewal", None),
        ("node_entered", "renewal", "renewal_window_90"),
    ]

    # the daily reviews open each renewal window as the renewal date approaches
    def window_opened(node: str, fired: list[Decision]) -> int:
        (completed,) = [
            t for d in fired for t in d.transitions if t.kind is TransitionKind.NODE_COMPLETED
        ]
        assert completed.node == node
        return completed.occurred_at

    before_90 = timedelta(seconds=renewal_at - epoch(clock.now())) - 90 * DAY
    fired = saas.wait(before_90 + DAY)
    opened_90 = window_opened("renewal_window_90", fired)
    assert 89 * 86400 < renewal_at - opened_90 <= 90 * 86400
    assert saas.at == ("renewal", "renewal_window_60")

    fired = saas.wait(30 * DAY)
    opened_60 = window_opened("renewal_window_60", fired)
    assert 59 * 86400 < renewal_at - opened_60 <= 60 * 86400
    assert saas.at == ("renewal", "renewal_window_30")
    assert saas.pending(TimerKind.DUE, "renewal_window_30") == []

    fired = saas.wait(30 * DAY)
    assert published(fired) == [
        ("node_completed", "renewal_window_30", ("decision_maker", "account_owner")),
        ("node_entered", "renewed", ("account_owner",)),
    ]
    opened_30 = window_opened("renewal_window_30", fired)
    assert 29 * 86400 < renewal_at - opened_30 <= 30 * 86400
    assert saas.at == ("renewal", "renewed")
    # the last renewal month: due a week after it starts, escalated to a visit after two
    assert saas.timer(TimerKind.DUE, "renewed").due_at == opened_30 + 7 * 86400

    fired = saas.wait(14 * DAY)
    assert published(fired) == [
        ("node_overdue", "renewed", ("account_owner",)),
        ("escalation", "renewed", ("account_owner", "decision_maker")),
    ]
    overdue, escalation = [t for d in fired for t in d.transitions if t.trigger_kind][:2]
    assert overdue.occurred_at == opened_30 + 7 * 86400
    assert escalation.occurred_at == opened_30 + 14 * 86400
    assert escalation.reason == (
        "Two weeks into the last renewal month and not renewed: visit the decision maker"
    )

    # the renewal moves the end date out a year: renewed, and back to the 90-day window
    decision = saas.crm("subscription.renewed", renewal_at=renewal_at + 365 * 86400)
    assert kinds(decision) == [
        ("node_completed", "renewal", "renewed"),
        ("node_entered", "renewal", "renewal_window_90"),
    ]
    assert saas.current.nodes["renewal_window_90"].visits == 2
    assert saas.at == ("renewal", "renewal_window_90")


def test_saas_renewal_inside_the_60_day_window_returns_to_the_90_day_window(
    clock: FrozenClock,
) -> None:
    saas = Account(reference("saas-account"), clock)
    saas.crm("deal.stage_changed", renewal_at=epoch(T0 + 70 * DAY))
    decision = saas.move("renewal_window_60", note="imported mid-contract")
    assert kinds(decision) == [
        ("moved", "lead", "qualified"),
        ("stage_entered", "renewal", None),
        ("node_entered", "renewal", "renewal_window_60"),
    ]
    clock.advance(DAY)
    decision = saas.crm("subscription.renewed", renewal_at=epoch(T0 + 435 * DAY))
    assert kinds(decision) == [
        ("node_completed", "renewal", "renewal_window_60"),
        ("node_entered", "renewal", "renewed"),
        ("node_completed", "renewal", "renewed"),
        ("node_entered", "renewal", "renewal_window_90"),
    ]
    assert saas.at == ("renewal", "renewal_window_90")
    # and a year later the windows open again
    fired = saas.wait(410 * DAY)
    opened = [
        (t.node, (epoch(T0 + 435 * DAY) - t.occurred_at) / 86400)
        for d in fired
        for t in d.transitions
        if t.kind is TransitionKind.NODE_COMPLETED
    ]
    assert opened == [
        ("renewal_window_90", 90.0),
        ("renewal_window_60", 60.0),
        ("renewal_window_30", 30.0),
    ]
    assert saas.at == ("renewal", "renewed")


@pytest.mark.parametrize("lost_at", ["demo_held", "contract_signed"])
def test_a_lost_deal_goes_back_to_the_lead_stage_and_can_qualify_again(lost_at: str) -> None:
    clock = FrozenClock(T0)
    saas = Account(reference("saas-account"), clock)
    saas.crm("deal.stage_changed", deal_stage="qualified")
    if lost_at == "contract_signed":
        saas.crm("deal.stage_changed", deal_stage="demo")
    assert saas.at == ("opportunity", lost_at)

    decision = saas.crm("deal.stage_changed", deal_stage="lost")
    assert kinds(decision) == [
        ("node_completed", "opportunity", lost_at),
        ("stage_entered", "lead", None),
        ("node_entered", "lead", "qualified"),
    ]
    decision = saas.crm("deal.stage_changed", deal_stage="qualified")
    assert kinds(decision)[:2] == [
        ("node_completed", "lead", "qualified"),
        ("stage_entered", "opportunity", None),
    ]
