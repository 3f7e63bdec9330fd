"""Folding events into day buckets and reading every kind of metric over its windows."""

from __future__ import annotations

import random

import pytest

from services.scoring.definitions import MetricDefinitions, MetricEvent, Window, load_metrics
from services.scoring.errors import EventValueInvalid, MetricUnknown, UnsupportedQuery
from services.scoring.metrics import store as store_module
from services.scoring.metrics.store import (
    DAY,
    HORIZON_DAYS,
    Baseline,
    MetricStore,
    baseline,
    fold,
    value,
)

TEXT = """\
metrics:
  - id: logins
    name: Logins
    kind: count
    event: Logged In
    windows: [P1D, P7D, P28D, P90D]
    north_star: true
  - id: gmv
    name: GMV
    kind: sum
    event: Order Completed
    property: amount
    where: {status: paid}
    windows: [P7D, P28D]
  - id: active_users
    name: Active users
    kind: distinct_users
    event: Logged In
    windows: [P1D, P7D, P28D]
  - id: active_admins
    name: Active admins
    kind: distinct_users
    event: Logged In
    role: admin
    windows: [P7D]
  - id: paid_seats
    name: Paid seats
    kind: fact
    fact: crm.seats
  - id: seat_utilisation
    name: Seat utilisation
    kind: ratio
    numerator: active_users
    denominator: paid_seats
    windows: [P7D, P28D]
  - id: logins_per_user
    name: Logins per active user
    kind: ratio
    numerator: logins
    denominator: active_users
    windows: [P7D]
  - id: admin_last_seen
    name: Admin last seen
    kind: last_seen
    event: Logged In
    role: admin
"""

TODAY = 20_000  # a UTC day number (2024-10-04)
NOW = TODAY * DAY + 12 * 3600  # noon


@pytest.fixture(scope="module")
def definitions() -> MetricDefinitions:
    return load_metrics("metrics.yaml", text=TEXT)


def at(day: int, hour: int = 10) -> int:
    """Epoch seconds ``day`` days from TODAY (negative: before), at ``hour`` UTC."""
    return (TODAY + day) * DAY + hour * 3600


def login(day: int, user: str = "u1", *roles: str, hour: int = 10) -> MetricEvent:
    return MetricEvent("Logged In", at(day, hour), user, frozenset(roles))


def order(day: int, amount: object, status: str = "paid") -> MetricEvent:
    return MetricEvent(
        "Order Completed", at(day), "u1", properties={"amount": amount, "status": status}
    )


def folded(definitions: MetricDefinitions, *events: MetricEvent, now: int = NOW) -> MetricStore:
    store = MetricStore()
    for event in events:
        store = fold(store, event, definitions, now=now)
    return store


def values(
    store: MetricStore, definitions: MetricDefinitions, metric: str, now: int = NOW
) -> dict[str, float | None]:
    windows = definitions.get(metric).windows
    return {w.name: value(store, definitions, metric, w, now=now) for w in windows}


def test_a_count_over_each_window(definitions: MetricDefinitions) -> None:
    store = folded(definitions, *(login(day) for day in (0, 0, -1, -6, -7, -27, -28, -89, -90)))
    assert values(store, definitions, "logins") == {
        "P1D": 2.0,
        "P7D": 4.0,
        "P28D": 6.0,
        "P90D": 8.0,
    }


def test_events_leave_the_windows_as_days_pass(definitions: MetricDefinitions) -> None:
    store = folded(definitions, login(0, hour=1), login(-5))
    assert values(store, definitions, "logins", now=at(0, 23)) == {
        "P1D": 1.0,
        "P7D": 2.0,
        "P28D": 2.0,
        "P90D": 2.0,
    }
    assert values(store, definitions, "logins", now=at(1, 0)) == {
        "P1D": 0.0,
        "P7D": 2.0,
        "P28D": 2.0,
        "P90D": 2.0,
    }
    assert values(store, definitions, "logins", now=at(2))["P7D"] == 1.0
    assert values(store, definitions, "logins", now=at(27))["P28D"] == 1.0
    assert values(store, definitions, "logins", now=at(90)) == {
        "P1D": 0.0,
        "P7D": 0.0,
        "P28D": 0.0,
        "P90D": 0.0,
    }


def test_a_sum_of_a_property_with_its_filter(definitions: MetricDefinitions) -> None:
    store = folded(
        definitions,
        order(0, 120.5),
        order(-3, "30"),
        order(-3, 1000, status="refunded"),
        order(-10, 50),
        order(-2, None),
        MetricEvent("Order Completed", at(0), properties={"status": "paid"}),
    )
    assert values(store, definitions, "gmv") == {"P7D": 150.5, "P28D": 200.5}


@pytest.mark.parametrize("amount", ["lots", True, float("nan"), [3]])
def test_a_sum_refuses_a_value_that_is_not_a_number(
    definitions: MetricDefinitions, amount: object
) -> None:
    store = folded(definitions, order(0, 10))
    with pytest.raises(EventValueInvalid, match="property 'amount'"):
        fold(store, order(0, amount), definitions, now=NOW)
    assert values(store, definitions, "gmv")["P7D"] == 10.0


def test_distinct_users_count_each_user_once_per_window(definitions: MetricDefinitions) -> None:
    store = folded(
        definitions,
        login(0, "ann"),
        login(0, "ann"),
        login(-1, "ann"),
        login(-2, "bob"),
        login(-10, "cy"),
        login(-10, "ann"),
        MetricEvent("Logged In", at(0)),  # no user: a login, but nobody to count
    )
    assert values(store, definitions, "active_users") == {"P1D": 1.0, "P7D": 2.0, "P28D": 3.0}
    assert values(store, definitions, "logins")["P1D"] == 3.0


def test_distinct_users_per_role(definitions: MetricDefinitions) -> None:
    store = folded(
        definitions,
        login(0, "ann", "admin"),
        login(-1, "bob", "admin", "decision_maker"),
        login(-1, "cy", "end_user"),
        login(-9, "dee", "admin"),
    )
    assert value(store, definitions, "active_admins", Window.P7D, now=NOW) == 2.0
    assert value(store, definitions, "active_users", Window.P7D, now=NOW) == 3.0


def test_distinct_users_are_capped_per_day(
    definitions: MetricDefinitions, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "MAX_USERS_PER_DAY", 2)
    store = folded(definitions, login(0, "a"), login(0, "b"), login(0, "c"), login(-1, "c"))
    assert value(store, definitions, "active_users", Window.P1D, now=NOW) == 2.0
    assert value(store, definitions, "active_users", Window.P7D, now=NOW) == 3.0


def test_a_ratio_over_a_fact_is_none_until_the_fact_is_stated(
    definitions: MetricDefinitions,
) -> None:
    store = folded(definitions, login(0, "ann"), login(-1, "bob"))
    assert value(store, definitions, "seat_utilisation", Window.P7D, now=NOW) is None
    assert value(store, definitions, "paid_seats", None, now=NOW) is None
    seats = MetricEvent("milepost.crm.contract.signed", at(-30), facts={"crm.seats": 8})
    store = fold(store, seats, definitions, now=NOW)
    assert value(store, definitions, "paid_seats", None, now=NOW) == 8.0
    assert value(store, definitions, "seat_utilisation", Window.P7D, now=NOW) == 0.25
    zero = MetricEvent("milepost.crm.subscription.renewed", at(-1), facts={"crm.seats": 0})
    store = fold(store, zero, definitions, now=NOW)
    assert value(store, definitions, "seat_utilisation", Window.P7D, now=NOW) is None


def test_a_fact_keeps_its_latest_statement(definitions: MetricDefinitions) -> None:
    store = folded(
        definitions,
        MetricEvent("renewed", at(-2), facts={"crm.seats": 20}),
        MetricEvent("signed", at(-40), facts={"crm.seats": 8}),
        MetricEvent("upserted", at(-1), facts={"crm.plan": "pro"}),
    )
    assert value(store, definitions, "paid_seats", None, now=NOW) == 20.0
    with pytest.raises(EventValueInvalid, match=r"fact 'crm\.seats'"):
        fold(store, MetricEvent("x", at(0), facts={"crm.seats": "many"}), definitions, now=NOW)


def test_a_ratio_of_two_windowed_metrics(definitions: MetricDefinitions) -> None:
    store = folded(definitions, login(0, "ann"), login(0, "ann"), login(-1, "bob"), login(-8, "cy"))
    assert value(store, definitions, "logins_per_user", Window.P7D, now=NOW) == 1.5
    assert value(store, definitions, "logins_per_user", Window.P7D, now=at(20)) is None


def test_last_seen_is_days_since_the_latest_matching_event(definitions: MetricDefinitions) -> None:
    store = folded(definitions, login(-1, "bob", "end_user"))
    assert value(store, definitions, "admin_last_seen", None, now=NOW) is None
    store = folded(definitions, login(-3, "ann", "admin", hour=12), login(-10, "ann", "admin"))
    assert value(store, definitions, "admin_last_seen", None, now=NOW) == 3.0
    assert value(store, definitions, "admin_last_seen", None, now=NOW + DAY // 2) == 3.5
    later = fold(store, login(0, "ann", "admin", hour=23), definitions, now=NOW)
    assert value(store, definitions, "admin_last_seen", None, now=NOW) == 3.0  # not changed
    assert value(later, definitions, "admin_last_seen", None, now=NOW) == 0.0


def test_last_seen_outlives_the_bucket_horizon(definitions: MetricDefinitions) -> None:
    store = folded(definitions, login(-200, "ann", "admin"))
    assert value(store, definitions, "admin_last_seen", None, now=NOW) == pytest.approx(
        200 + 2 / 24
    )
    assert value(store, definitions, "logins", Window.P90D, now=NOW) == 0.0
    assert store.amounts == {}


def test_buckets_older_than_the_horizon_are_dropped(definitions: MetricDefinitions) -> None:
    store = folded(definitions, login(0, "ann"), login(-60, "bob"))
    assert [day for day, _ in store.amounts["logins"]] == [TODAY - 60, TODAY]
    later = fold(store, login(40, "cy"), definitions, now=at(40))
    assert [day for day, _ in later.amounts["logins"]] == [TODAY, TODAY + 40]
    assert [day for day, _ in later.users["active_users"]] == [TODAY, TODAY + 40]
    assert later.day == TODAY + 40
    assert value(later, definitions, "logins", Window.P90D, now=at(40)) == 2.0
    assert TODAY + 40 - later.amounts["logins"][0][0] < HORIZON_DAYS


def test_an_event_after_now_counts_today(definitions: MetricDefinitions) -> None:
    store = folded(definitions, login(2, "ann", "admin"))
    assert value(store, definitions, "logins", Window.P1D, now=NOW) == 1.0
    assert value(store, definitions, "admin_last_seen", None, now=NOW) == 0.0


def test_folding_leaves_the_store_it_was_given(definitions: MetricDefinitions) -> None:
    before = folded(definitions, login(0, "ann"))
    after = fold(before, login(0, "bob"), definitions, now=NOW)
    assert value(before, definitions, "active_users", Window.P1D, now=NOW) == 1.0
    assert value(after, definitions, "active_users", Window.P1D, now=NOW) == 2.0
    unrelated = fold(after, MetricEvent("Page Viewed", at(0), "ann"), definitions, now=NOW)
    assert unrelated == after


def test_questions_the_store_cannot_answer(definitions: MetricDefinitions) -> None:
    store = folded(definitions, login(0))
    with pytest.raises(UnsupportedQuery, match="name one"):
        value(store, definitions, "logins", None, now=NOW)
    with pytest.raises(MetricUnknown):
        value(store, definitions, "visits", Window.P7D, now=NOW)
    with pytest.raises(UnsupportedQuery, match="no baseline"):
        baseline(
            store, definitions, "admin_last_seen", window=Window.P7D, over=Window.P28D, now=NOW
        )
    with pytest.raises(UnsupportedQuery, match="does not fit"):
        baseline(store, definitions, "logins", window=Window.P28D, over=Window.P90D, now=NOW)
    with pytest.raises(UnsupportedQuery, match="does not fit"):
        baseline(store, definitions, "logins", window=Window.P1D, over=Window.P90D, now=NOW)


def test_a_baseline_compares_the_last_7_days_with_the_28_before(
    definitions: MetricDefinitions,
) -> None:
    busy = [login(-day) for day in range(7, 35) for _ in range(10)]
    quiet = [login(-day) for day in range(7) for _ in range(2)]
    older = [login(-day) for day in range(35, 60) for _ in range(50)]  # outside the baseline
    store = folded(definitions, *older, *busy, *quiet)
    assert baseline(
        store, definitions, "logins", window=Window.P7D, over=Window.P28D, now=NOW
    ) == Baseline(current=14.0, average=70.0, blocks=4)
    daily = baseline(store, definitions, "logins", window=Window.P1D, over=Window.P7D, now=NOW)
    assert daily == Baseline(current=2.0, average=(6 * 2 + 10) / 7, blocks=7)  # day -7 is busy


def test_a_young_account_is_compared_with_the_weeks_it_existed(
    definitions: MetricDefinitions,
) -> None:
    store = folded(definitions, *(login(-day) for day in range(10)))
    assert baseline(
        store, definitions, "logins", window=Window.P7D, over=Window.P28D, now=NOW
    ) == Baseline(current=7.0, average=3.0, blocks=1)
    empty = baseline(
        MetricStore(), definitions, "logins", window=Window.P7D, over=Window.P28D, now=NOW
    )
    assert empty == Baseline(current=0.0, average=None, blocks=0)


@pytest.mark.parametrize("seed", range(20))
def test_a_baseline_averages_the_window_as_read_at_the_end_of_each_earlier_block(
    definitions: MetricDefinitions, seed: int
) -> None:
    """Against reading each block with :func:`value` at the block's end: every kind, every
    window pair, accounts of every age."""
    rng = random.Random(seed)
    first = -rng.randrange(1, HORIZON_DAYS)
    events = [
        rng.choice([login(day, rng.choice("abcd")), order(day, rng.randrange(1, 500))])
        for day in sorted(rng.randrange(first, 1) for _ in range(rng.randrange(1, 80)))
    ]
    seats = MetricEvent("signed", at(first), facts={"crm.seats": rng.randrange(0, 5)})
    store = folded(definitions, seats, *events)
    pairs = [(Window.P7D, Window.P28D), (Window.P1D, Window.P28D), (Window.P28D, Window.P28D)]
    for metric in ("logins", "gmv", "active_users", "seat_utilisation"):
        for window, over in pairs:
            if window not in definitions.get(metric).windows:
                continue
            found = baseline(store, definitions, metric, window=window, over=over, now=NOW)
            figures = [
                value(store, definitions, metric, window, now=NOW - k * window * DAY)
                for k in range(1, found.blocks + 1)
            ]
            read = [figure for figure in figures if figure is not None]
            assert found.average == (sum(read) / len(read) if read else None), (metric, window)
            assert store.since is not None
            assert found.blocks == max(0, min(over // window, (TODAY - store.since) // window))


def test_a_baseline_of_distinct_users_and_of_a_ratio(definitions: MetricDefinitions) -> None:
    earlier = [login(-day, user) for day in range(7, 35) for user in ("a", "b", "c", "d")]
    store = folded(definitions, *earlier, login(-1, "a"), login(-2, "a"))
    users = baseline(
        store, definitions, "active_users", window=Window.P7D, over=Window.P28D, now=NOW
    )
    assert users == Baseline(current=1.0, average=4.0, blocks=4)
    store = fold(
        store, MetricEvent("signed", at(-50), facts={"crm.seats": 8}), definitions, now=NOW
    )
    ratio = baseline(
        store, definitions, "seat_utilisation", window=Window.P7D, over=Window.P28D, now=NOW
    )
    assert ratio == Baseline(current=0.125, average=0.5, blocks=4)
