"""Moving accounts to a new path version: pin, migrate (node map, same id, stage), restart."""

from __future__ import annotations

from typing import Any

import pytest

from services.node_engine.core.migration import migrate
from services.node_engine.core.state import (
    AccountState,
    NodeStatus,
    TimerFired,
    TimerKind,
    TransitionKind,
)
from services.node_engine.core.transition import transition
from services.node_engine.paths.compiled import GrowthPath
from tests.services.node_engine.support import (
    DAY,
    T0,
    Account,
    build,
    document,
    epoch,
    kinds,
    of_kind,
)


def onboarding(
    *, b_id: str = "invite", b_due: str = "P5D", extra_stage: bool = True
) -> list[dict[str, Any]]:
    stages: list[dict[str, Any]] = [
        {
            "id": "setup",
            "name": "Setup",
            "nodes": [
                {"id": "profile", "name": "Profile", "complete_when": 'happened("Profile")'},
                {
                    "id": b_id,
                    "name": "Invite the team",
                    "complete_when": 'count("Invited") >= 2',
                    "due": b_due,
                    "notify": ["admin"],
                    "escalations": [{"at": "P20D", "notify": ["account_owner"]}],
                },
                {"id": "listing", "name": "Listing", "complete_when": 'happened("Listing")'},
            ],
        }
    ]
    if extra_stage:
        stages.append(
            {
                "id": "growth",
                "name": "Growth",
                "nodes": [{"id": "orders", "name": "Orders", "complete_when": "False"}],
            }
        )
    return stages


V1 = build(document(onboarding()), version=1)


def at_invite() -> Account:
    """An account on v1 that did its profile on day 0 and is now on `invite`, day 2."""
    account = Account(V1)
    account.group()
    account.event("Profile")
    account.wait(2 * DAY)
    assert account.at == ("setup", "invite")
    return account


def migrated(
    account: Account, to: GrowthPath, policy: Any, node_map: dict[str, str] | None = None
) -> tuple[AccountState, Any]:
    decision = migrate(
        account.current, to=to, policy=policy, node_map=node_map or {}, now=account.now
    )
    assert decision.state is not None
    return decision.state, decision


def test_pin_and_the_same_version_leave_the_state_as_it_is() -> None:
    account = at_invite()
    v2 = build(document(onboarding(b_due="P9D")), version=2)
    assert migrate(account.current, to=v2, policy="pin", node_map={}, now=account.now).state is (
        account.current
    )
    same = migrate(account.current, to=V1, policy="migrate", node_map={}, now=account.now)
    assert same.state is account.current
    assert same.transitions == ()


def test_a_state_on_another_path_is_refused() -> None:
    other = build(document(onboarding(), path_id="other-path"), version=2)
    with pytest.raises(ValueError, match="other-path"):
        migrate(at_invite().current, to=other, policy="migrate", node_map={}, now=T0)


def test_migrate_keeps_an_account_on_its_node_with_only_the_timers_still_ahead() -> None:
    account = at_invite()
    old_due = account.timer(TimerKind.DUE, "invite")
    v2 = build(document(onboarding(b_due="P9D")), version=2)
    state, decision = migrated(account, v2, "migrate")

    assert (state.path_version, state.stage, state.node) == (2, "setup", "invite")
    assert kinds(decision) == [("migrated", "setup", "invite")]
    [step] = decision.transitions
    assert step.reason == ("moved from test-path v1 (invite) to v2 (invite) by the migrate policy")
    assert step.trigger_kind is None  # recorded, not published
    assert state.node_entered_at == account.current.node_entered_at  # time in node kept
    assert state.nodes["invite"].visits == 2
    # due P9D and the P20D escalation from stage entry (day 0) are both still ahead on
    # day 2: the first of them is set, and it sets the other when it fires
    assert [(t.kind, t.due_at) for t in decision.timers] == [(TimerKind.DUE, epoch(T0 + 9 * DAY))]
    (due,) = decision.timers
    overdue = transition(state, TimerFired(due), path=v2, now=T0 + 9 * DAY)
    assert [(t.kind, t.due_at) for t in overdue.timers] == [
        (TimerKind.ESCALATION, epoch(T0 + 20 * DAY))
    ]
    # the old version's timer for that node is stale on the new version
    stale = transition(state, TimerFired(old_due), path=v2, now=T0 + 9 * DAY)
    assert stale.transitions == ()


def test_migrate_sets_no_timer_that_is_already_past() -> None:
    account = at_invite()
    v2 = build(document(onboarding(b_due="P1D")), version=2)
    _state, decision = migrated(account, v2, "migrate")
    assert [t.kind for t in decision.timers] == [TimerKind.ESCALATION]


def test_migrate_follows_the_node_map_and_enters_the_new_node() -> None:
    account = at_invite()
    account.event("Invited")
    v2 = build(document(onboarding(b_id="invite_team")), version=2)
    state, decision = migrated(account, v2, "migrate", {"invite": "invite_team"})

    assert (state.stage, state.node) == ("setup", "invite_team")
    assert kinds(decision) == [
        ("migrated", "setup", "invite_team"),
        ("node_entered", "setup", "invite_team"),
    ]
    assert of_kind(decision, TransitionKind.NODE_ENTERED)[0].target_roles == ("admin",)
    assert "invite" not in state.nodes  # no such node in v2
    assert state.nodes["profile"].status is NodeStatus.COMPLETED  # history kept
    assert state.aggregates == account.current.aggregates  # the same counts are read
    # due P5D from stage entry (day 0): ahead of now (day 2)
    assert {t.kind: t.due_at for t in decision.timers}[TimerKind.DUE] == epoch(T0 + 5 * DAY)


def test_migrate_advances_as_far_as_the_data_allows() -> None:
    account = at_invite()
    account.event("Invited")
    account.event("Invited")
    assert account.at == ("setup", "listing")
    v2 = build(document(onboarding()), version=2)
    # Mapped back to `invite`, done already: it completes at once and returns to `listing`,
    # which was left undone and so is entered again as usual
    state, decision = migrated(account, v2, "migrate", {"listing": "invite"})
    assert kinds(decision) == [
        ("migrated", "setup", "invite"),
        ("node_entered", "setup", "invite"),
        ("node_completed", "setup", "invite"),
        ("node_entered", "setup", "listing"),
    ]
    assert (state.stage, state.node) == ("setup", "listing")
    assert (state.nodes["invite"].visits, state.nodes["listing"].visits) == (2, 1)


def test_without_its_node_an_account_goes_to_its_stages_first_node_as_reentry_allows() -> None:
    account = at_invite()
    v2 = build(document(onboarding(b_id="invite_team")), version=2)
    state, decision = migrated(account, v2, "migrate")
    # `profile` is done and never re-entered, so the account passes on to `invite_team`
    assert kinds(decision) == [
        ("migrated", "setup", "profile"),
        ("node_entered", "setup", "invite_team"),
    ]
    assert (state.stage, state.node) == ("setup", "invite_team")
    assert state.nodes["profile"].visits == 1


def test_migrate_restarts_an_account_whose_stage_and_node_are_gone() -> None:
    account = at_invite()
    v2 = build(
        document(
            [
                {
                    "id": "opening",
                    "name": "Opening",
                    "nodes": [{"id": "first", "name": "First", "complete_when": "False"}],
                }
            ]
        ),
        version=2,
    )
    state, decision = migrated(account, v2, "migrate")
    assert (state.stage, state.node) == ("opening", "first")
    assert kinds(decision)[0] == ("migrated", "opening", None)
    assert decision.transitions[0].reason == (
        "moved from test-path v1 (invite) to v2 (opening) by the migrate policy: "
        "no matching stage or node, so it starts over"
    )


def test_restart_starts_over_keeping_facts_and_the_aggregates_still_read() -> None:
    account = at_invite()
    account.group(facts={"account.plan": "pro"})
    account.event("Invited")
    v2_stages = onboarding()
    v2_stages[0]["nodes"][1]["complete_when"] = 'count("Invited", within="P7D") >= 2'
    v2 = build(document(v2_stages), version=2)
    state, decision = migrated(account, v2, "restart")

    assert kinds(decision) == [
        ("migrated", "setup", None),
        ("stage_entered", "setup", None),
        ("node_entered", "setup", "profile"),
        ("node_completed", "setup", "profile"),  # the kept count of Profile holds at once
        ("node_entered", "setup", "invite"),
    ]
    assert decision.transitions[0].reason.endswith("by the restart policy")
    assert (state.path_version, state.stage, state.node) == (2, "setup", "invite")
    assert state.enrolled_at == state.stage_entered_at == epoch(account.now)
    assert state.nodes["invite"].visits == 1
    assert state.facts["account.plan"] == "pro"
    # the lifetime count of Invited is not read by v2 (its windowed count starts empty)
    assert set(account.current.aggregates) == {"count|Profile||||", "count|Invited||||"}
    assert set(state.aggregates) == {"count|Profile||||"}


def test_a_tier_is_kept_only_when_the_new_version_has_that_level() -> None:
    tiers = {
        "metric": 'count("Order")',
        "label": "orders",
        "stages": ["growth"],
        "levels": [{"id": "L1", "enter_at": 0}, {"id": "L2", "enter_at": 5}],
    }
    stages = onboarding()
    stages[0]["complete_when"] = "True"
    v1 = build(document(stages, tiers=tiers), version=1)
    account = Account(v1)
    account.group()
    assert account.current.tier == "L1"
    renamed = {**tiers, "levels": [{"id": "Bronze", "enter_at": 0}, {"id": "L2", "enter_at": 5}]}
    kept = migrate(
        account.current,
        to=build(document(stages, tiers=tiers), version=2),
        policy="migrate",
        node_map={},
        now=account.now,
    )
    assert kept.state is not None
    assert kept.state.tier == "L1"
    assert not of_kind(kept, TransitionKind.TIER_CHANGED)
    dropped = migrate(
        account.current,
        to=build(document(stages, tiers=renamed), version=2),
        policy="migrate",
        node_map={},
        now=account.now,
    )
    assert dropped.state is not None
    assert dropped.state.tier == "Bronze"  # placed again on the new levels
    assert of_kind(dropped, TransitionKind.TIER_CHANGED)[0].payload["direction"] == "placement"


def test_the_same_migration_yields_the_same_ids() -> None:
    account = at_invite()
    v2 = build(document(onboarding(b_id="invite_team")), version=2)
    first = migrate(account.current, to=v2, policy="migrate", node_map={}, now=account.now)
    again = migrate(account.current, to=v2, policy="migrate", node_map={}, now=account.now)
    assert [t.id for t in first.transitions] == [t.id for t in again.transitions]
    assert [t.id for t in first.timers] == [t.id for t in again.timers]
    v3 = build(document(onboarding(b_id="invite_team")), version=3)
    other = migrate(account.current, to=v3, policy="migrate", node_map={}, now=account.now)
    assert {t.id for t in other.transitions}.isdisjoint(t.id for t in first.transitions)
