"""Incremental aggregates: lifetime and windowed counts and sums, distinct users, and
events falling out of a sliding window as the clock moves."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from services.node_engine.core import aggregates
from services.node_engine.core.state import AggregateValue
from services.node_engine.errors import ConditionFailed
from services.node_engine.paths.expressions import Aggregate, Names, compile_expression
from tests.services.node_engine.support import DAY, HOUR, T0, epoch, observation


def aggregate(source: str) -> Aggregate:
    (found,) = compile_expression(source, Names.ACCOUNT).aggregates
    return found


def fold(
    figure: Aggregate, events: list[tuple[datetime, dict[str, Any]]], *, now: datetime | None = None
) -> AggregateValue:
    """Add each event as it happens (``now`` is its time unless given)."""
    value = aggregates.empty(figure)
    for at, fields in events:
        event = observation("Order", at=at, **fields)
        value = aggregates.add(figure, value, event, epoch(now or at))
    return value


def read(figure: Aggregate, value: AggregateValue, at: datetime) -> float:
    return aggregates.read(figure, value, epoch(at))


# -- lifetime -----------------------------------------------------------------------------


def test_empty_values() -> None:
    assert aggregates.empty(aggregate('count("Order")')) == 0.0
    assert aggregates.empty(aggregate('sum("Order", "amount")')) == 0.0
    assert aggregates.empty(aggregate('count("Order", within="P7D")')) == ()
    assert aggregates.empty(aggregate('distinct_users("Order")')) == ()


def test_a_lifetime_count_never_forgets() -> None:
    figure = aggregate('count("Order")')
    value = fold(figure, [(T0, {}), (T0 + DAY, {}), (T0 + 40 * DAY, {})])
    assert value == 3.0
    assert read(figure, value, T0 + 1000 * DAY) == 3.0


@pytest.mark.parametrize(
    ("amounts", "total"),
    [([100, 250.5], 350.5), (["12.5", 10], 22.5), ([None, 5], 5.0), ([-20, 50], 30.0)],
)
def test_a_lifetime_sum_adds_the_property(amounts: list[Any], total: float) -> None:
    figure = aggregate('sum("Order", "amount")')
    value = fold(figure, [(T0, {"properties": {"amount": a}}) for a in amounts])
    assert read(figure, value, T0) == total


def test_a_sum_skips_events_without_the_property() -> None:
    figure = aggregate('sum("Order", "amount")')
    assert fold(figure, [(T0, {"properties": {"other": 7}})]) == 0.0


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("lots", "sum of 'amount': 'lots' is not a number"),
        (True, "sum of 'amount': true/false is not a number"),
        ([1, 2], "sum of 'amount': [1, 2] is not a number"),
        ({"value": 1}, "is not a number"),
        ("nan", "sum of 'amount': 'nan' is not a finite number"),
        (float("inf"), "is not a finite number"),
    ],
)
def test_a_sum_of_something_that_is_not_a_number_fails(raw: Any, message: str) -> None:
    figure = aggregate('sum("Order", "amount")')
    with pytest.raises(ConditionFailed) as caught:
        aggregates.add(figure, 0.0, observation("Order", properties={"amount": raw}), epoch(T0))
    assert message in str(caught.value)


# -- sliding windows ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("window", "bucket"),
    [
        (3600, aggregates.HOUR),
        (2 * 86400, aggregates.HOUR),
        (2 * 86400 + 1, aggregates.DAY),
        (28 * 86400, aggregates.DAY),
    ],
)
def test_buckets_are_hours_up_to_two_days_and_days_beyond(window: int, bucket: int) -> None:
    assert aggregates.bucket_seconds(window) == bucket


def test_seven_day_window_counts_today_and_the_six_days_before() -> None:
    figure = aggregate('count("Order", within="P7D")')
    order_at = T0 + 10 * HOUR
    value = fold(figure, [(order_at, {})])
    assert read(figure, value, order_at) == 1.0
    assert read(figure, value, T0 + 7 * DAY - timedelta(seconds=1)) == 1.0
    assert read(figure, value, T0 + 7 * DAY) == 0.0


def test_fifteen_orders_in_seven_days_as_the_clock_advances() -> None:
    figure = aggregate('count("Order", within="P7D")')
    # two orders a day for eight days, at noon
    events: list[tuple[datetime, dict[str, Any]]] = [
        (T0 + d * DAY + 12 * HOUR, {}) for d in range(8) for _ in range(2)
    ]
    value = fold(figure, events)
    # day 7: days 1..7 are in the window (14 orders); day 0's orders fell out
    assert read(figure, value, T0 + 7 * DAY + 13 * HOUR) == 14.0
    # the add on day 7 already dropped the expired bucket
    assert isinstance(value, tuple)
    assert [bucket for bucket, _amount in value] == [epoch(T0) // 86400 + d for d in range(1, 8)]
    assert read(figure, value, T0 + 9 * DAY) == 10.0
    assert read(figure, value, T0 + 13 * DAY) == 2.0
    assert read(figure, value, T0 + 14 * DAY) == 0.0


def test_an_hourly_window_forgets_on_the_hour() -> None:
    figure = aggregate('count("Order", within="PT2H")')
    value = fold(figure, [(T0 + 10 * HOUR + timedelta(minutes=30), {})])
    assert read(figure, value, T0 + 11 * HOUR + timedelta(minutes=59)) == 1.0
    assert read(figure, value, T0 + 12 * HOUR) == 0.0


@pytest.mark.parametrize(
    ("window", "kept_until"),
    [("PT36H", 36 * HOUR), ("P2D", 48 * HOUR), ("P3DT12H", 4 * DAY), ("P28D", 28 * DAY)],
)
def test_a_window_keeps_an_event_for_its_length_in_whole_buckets(
    window: str, kept_until: timedelta
) -> None:
    figure = aggregate(f'count("Order", within="{window}")')
    value = fold(figure, [(T0, {})])
    assert read(figure, value, T0 + kept_until - timedelta(seconds=1)) == 1.0
    assert read(figure, value, T0 + kept_until) == 0.0


def test_a_windowed_sum() -> None:
    figure = aggregate('sum("Order", "amount", within="P28D")')
    value = fold(
        figure,
        [
            (T0, {"properties": {"amount": 6000}}),
            (T0 + 10 * DAY, {"properties": {"amount": 5000}}),
            (T0 + 10 * DAY, {"properties": {"amount": "1500.5"}}),
        ],
    )
    assert read(figure, value, T0 + 10 * DAY) == 12500.5
    assert read(figure, value, T0 + 28 * DAY) == 6500.5
    assert read(figure, value, T0 + 38 * DAY) == 0.0


def test_a_late_event_counts_in_its_own_bucket_and_one_older_than_the_window_not_at_all() -> None:
    figure = aggregate('count("Order", within="P7D")')
    now = T0 + 10 * DAY
    late = fold(figure, [(now - 3 * DAY, {})], now=now)
    assert read(figure, late, now) == 1.0
    assert read(figure, late, now + 4 * DAY) == 0.0
    current = fold(figure, [(now, {})], now=now)
    too_old = aggregates.add(figure, current, observation("Order", at=now - 8 * DAY), epoch(now))
    assert too_old is current


# -- distinct users -----------------------------------------------------------------------


def test_distinct_users_count_each_user_once_and_ignore_anonymous_events() -> None:
    figure = aggregate('distinct_users("Report Created")')
    value = fold(
        figure,
        [
            (T0, {"user_id": "ann"}),
            (T0 + HOUR, {"user_id": "bob"}),
            (T0 + 2 * HOUR, {"user_id": "ann"}),
            (T0 + 3 * HOUR, {"user_id": None}),
        ],
    )
    assert read(figure, value, T0 + 400 * DAY) == 2.0


def test_distinct_users_in_a_window_keep_each_users_last_visit() -> None:
    figure = aggregate('distinct_users(None, within="P7D")')
    value = fold(
        figure,
        [
            (T0, {"user_id": "ann"}),
            (T0, {"user_id": "bob"}),
            (T0 + 5 * DAY, {"user_id": "ann"}),
            (T0 + 6 * DAY, {"user_id": "cat"}),
        ],
    )
    assert read(figure, value, T0 + 6 * DAY) == 3.0
    # bob was last seen on day 0 and falls out on day 7; ann (day 5) on day 12
    assert read(figure, value, T0 + 7 * DAY) == 2.0
    assert read(figure, value, T0 + 12 * DAY) == 1.0
    assert read(figure, value, T0 + 13 * DAY) == 0.0


def test_a_late_event_does_not_make_a_user_older() -> None:
    figure = aggregate('distinct_users(None, within="P7D")')
    now = T0 + 5 * DAY
    value = fold(figure, [(now, {"user_id": "ann"}), (T0, {"user_id": "ann"})], now=now)
    assert read(figure, value, T0 + 11 * DAY) == 1.0


def test_distinct_users_forget_the_least_recently_seen_beyond_the_cap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(aggregates, "MAX_DISTINCT_USERS", 3)
    figure = aggregate("distinct_users(None)")
    value = fold(figure, [(T0 + d * DAY, {"user_id": f"user{d}"}) for d in range(5)])
    assert isinstance(value, tuple)
    assert sorted(user for user, _last in value) == ["user2", "user3", "user4"]
    assert read(figure, value, T0 + 5 * DAY) == 3.0
