"""Snapshot names from the reference definitions: windows, baselines, derived figures and
role activity, read when asked."""

from __future__ import annotations

import msgspec

from services.scoring.catalog.service import reference_definitions
from services.scoring.definitions import MetricEvent
from services.scoring.evaluation.facts import AccountFacts
from services.scoring.evaluation.snapshot import (
    FigureMemo,
    SnapshotMetrics,
    build_snapshot,
    readers,
)
from services.scoring.health import snapshot as s
from services.scoring.metrics import DAY, MetricStore, fold

NOW = 1_000 * DAY + 9 * 3600
DEFINITIONS = reference_definitions().definitions


def store_with(*events: MetricEvent) -> MetricStore:
    store = MetricStore()
    for event in events:
        store = fold(store, event, DEFINITIONS, now=NOW)
    return store


def login(days_ago: int, user: str = "u1", roles: frozenset[str] = frozenset()) -> MetricEvent:
    return MetricEvent("Logged In", NOW - days_ago * DAY, user, roles)


def test_every_name_health_and_the_signals_read_is_published_by_the_reference_metrics() -> None:
    names = set(readers(DEFINITIONS))
    wanted = {
        s.LOGINS_7D,
        s.LOGINS_28D_WEEKLY_AVG,
        s.ACTIONS_PER_ACTIVE_USER_7D,
        s.FEATURES_USED_28D,
        s.ACTIVE_SEATS_28D,
        s.PAID_SEATS,
        s.OPEN_TICKETS,
        s.EXPORT_ROWS_7D,
        s.EXPORT_ROWS_28D_WEEKLY_AVG,
        s.API_CALLS_1D,
        s.API_CALLS_28D_DAILY_AVG,
        s.DAYS_SINCE_LAST_CONTACT,
        s.SEAT_UTILISATION,
        s.SEAT_UTILISATION_28D_AGO,
    }
    assert wanted <= names


def test_windows_and_the_weekly_baseline() -> None:
    events = [login(day) for day in range(35) for _ in range(2)]  # two logins a day
    events += [login(0) for _ in range(4)]  # six today
    snapshot = build_snapshot(store_with(*events), DEFINITIONS, AccountFacts(), now=NOW)
    assert snapshot.metric("logins_1d") == 6
    assert snapshot.metric(s.LOGINS_7D) == 18
    assert snapshot.metric(s.LOGINS_28D_WEEKLY_AVG) == 14
    assert snapshot.metric("logins_28d") == 60


def test_derived_figures() -> None:
    store = store_with(
        login(3),
        MetricEvent("Report Exported", NOW - DAY, "u1", properties={"rows": 10}),
        MetricEvent("Feature Requested", NOW - 5 * DAY, "u1"),
        MetricEvent("milepost.crm.contract.signed", NOW - 9 * DAY, facts={"crm.seats": 4.0}),
    )
    facts = AccountFacts(open_tickets=("t1", "t2"))
    snapshot = build_snapshot(store, DEFINITIONS, facts, now=NOW)
    assert snapshot.metric(s.FEATURES_USED_28D) == 1  # report exports
    assert snapshot.metric(s.DAYS_SINCE_LAST_CONTACT) == 5
    assert snapshot.metric(s.OPEN_TICKETS) == 2
    assert snapshot.metric(s.PAID_SEATS) == 4
    assert snapshot.metric(s.SEAT_UTILISATION) == 0.25


def test_an_account_that_never_made_contact_is_silent_since_its_first_event() -> None:
    snapshot = build_snapshot(store_with(login(40)), DEFINITIONS, AccountFacts(), now=NOW)
    assert snapshot.metric(s.DAYS_SINCE_LAST_CONTACT) == 40 + 9 / 24
    assert snapshot.metric(s.OPEN_TICKETS) is None


def test_role_activity_covers_the_roles_the_contacts_hold() -> None:
    store = store_with(login(12, "boss", frozenset({"decision_maker"})))
    facts = AccountFacts(roles=frozenset({"decision_maker", "admin", "end_user"}))
    snapshot = build_snapshot(store, DEFINITIONS, facts, now=NOW)
    assert snapshot.last_seen_days == {"decision_maker": 12, "admin": None}
    alone = build_snapshot(store, DEFINITIONS, AccountFacts(), now=NOW)
    assert alone.last_seen_days == {}


def test_figures_are_read_once_and_listed_by_name() -> None:
    snapshot = build_snapshot(store_with(login(1)), DEFINITIONS, AccountFacts(), now=NOW)
    assert len(snapshot.metrics) == len(list(snapshot.metrics))
    assert snapshot.metrics["logins_7d"] == snapshot.metrics["logins_7d"] == 1


def test_whole_day_figures_are_carried_over_while_their_buckets_and_day_stay() -> None:
    store = store_with(login(1))
    first = SnapshotMetrics(store, DEFINITIONS, AccountFacts(), NOW)
    assert first["logins_7d"] == 1
    assert first[s.LOGINS_28D_WEEKLY_AVG] is None  # no whole week before this one
    # a memo whose figure is deliberately off shows whether it was taken or recomputed
    memo = msgspec.structs.replace(
        first.memo(), figures={"logins_7d": 99.0, s.LOGINS_28D_WEEKLY_AVG: 42.0}
    )

    same = SnapshotMetrics(store, DEFINITIONS, AccountFacts(), NOW + 60, memo)
    assert same["logins_7d"] == 99.0
    assert same[s.LOGINS_28D_WEEKLY_AVG] == 42.0

    moved = fold(store, login(0), DEFINITIONS, now=NOW)
    assert SnapshotMetrics(moved, DEFINITIONS, AccountFacts(), NOW, memo)["logins_7d"] == 2
    next_day = SnapshotMetrics(store, DEFINITIONS, AccountFacts(), NOW + DAY, memo)
    assert next_day["logins_7d"] == 1
    assert "days_since_last_contact" not in first.memo().figures


def test_a_memo_of_other_definitions_is_not_used() -> None:
    store = store_with(login(1))
    memo = FigureMemo("another digest", NOW // DAY, store, {"logins_7d": 99.0})

    assert SnapshotMetrics(store, DEFINITIONS, AccountFacts(), NOW, memo)["logins_7d"] == 1
