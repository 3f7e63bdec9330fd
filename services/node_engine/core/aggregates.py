"""Incremental aggregates: counts, sums and distinct users, for a lifetime or a sliding window.

A window is kept as time buckets (an hour for windows up to two days, a day beyond), so
adding an event and reading the figure touch only that account's few buckets, never its
history. The window covers the current bucket and the ones before it, ``window / bucket``
in all; events are bucketed by their own timestamp.
"""

from __future__ import annotations

import math
from typing import Any

from services.node_engine.core.state import AggregateValue, Observation
from services.node_engine.errors import ConditionFailed
from services.node_engine.paths.expressions import Aggregate, AggregateKind

HOUR = 3600
DAY = 86400
MAX_DISTINCT_USERS = 5000
"""Distinct users kept per aggregate; beyond it the least recently seen are forgotten."""


def bucket_seconds(window_seconds: int) -> int:
    return HOUR if window_seconds <= 2 * DAY else DAY


def empty(aggregate: Aggregate) -> AggregateValue:
    if aggregate.kind is AggregateKind.DISTINCT_USERS or aggregate.window_seconds:
        return ()
    return 0.0


def add(
    aggregate: Aggregate, value: AggregateValue, observation: Observation, now: int
) -> AggregateValue:
    """``value`` with the observation counted in. The caller checked that it matches."""
    if aggregate.kind is AggregateKind.DISTINCT_USERS:
        if observation.user_id is None:
            return value
        return _seen(aggregate, value, observation.user_id, observation.occurred_at, now)
    amount = 1.0 if aggregate.kind is AggregateKind.COUNT else _number(aggregate, observation)
    if aggregate.window_seconds is None:
        assert isinstance(value, float | int)
        return float(value) + amount
    assert isinstance(value, tuple)
    size = bucket_seconds(aggregate.window_seconds)
    bucket = observation.occurred_at // size
    first = _first_bucket(aggregate.window_seconds, now)
    if bucket < first:
        return value
    kept = {b: a for b, a in value if b >= first}
    kept[bucket] = kept.get(bucket, 0.0) + amount
    return tuple(sorted(kept.items()))


def read(aggregate: Aggregate, value: AggregateValue, now: int) -> float:
    """The figure an expression sees at ``now``."""
    if isinstance(value, float | int):
        return float(value)
    if aggregate.window_seconds is None:
        return float(len(value))
    first = _first_bucket(aggregate.window_seconds, now)
    if aggregate.kind is AggregateKind.DISTINCT_USERS:
        return float(sum(1 for _user, last in value if last >= first))
    return float(sum(amount for bucket, amount in value if bucket >= first))


def _first_bucket(window_seconds: int, now: int) -> int:
    size = bucket_seconds(window_seconds)
    return now // size - max(1, math.ceil(window_seconds / size)) + 1


def _seen(
    aggregate: Aggregate, value: AggregateValue, user: str, at: int, now: int
) -> AggregateValue:
    assert isinstance(value, tuple)
    size = bucket_seconds(aggregate.window_seconds) if aggregate.window_seconds else DAY
    bucket = at // size
    users = dict(value)
    if aggregate.window_seconds:
        first = _first_bucket(aggregate.window_seconds, now)
        if bucket < first:
            return value
        users = {u: last for u, last in users.items() if last >= first}
    users[user] = max(bucket, users.get(user, bucket))
    if len(users) > MAX_DISTINCT_USERS:
        users = dict(sorted(users.items(), key=lambda item: item[1])[-MAX_DISTINCT_USERS:])
    return tuple(users.items())


def _number(aggregate: Aggregate, observation: Observation) -> float:
    raw: Any = observation.properties.get(aggregate.prop or "")
    if raw is None:
        return 0.0
    if isinstance(raw, bool):
        raise ConditionFailed(f"sum of {aggregate.prop!r}: true/false is not a number")
    try:
        number = float(raw)
    except (TypeError, ValueError) as exc:
        raise ConditionFailed(f"sum of {aggregate.prop!r}: {raw!r} is not a number") from exc
    if not math.isfinite(number):
        raise ConditionFailed(f"sum of {aggregate.prop!r}: {raw!r} is not a finite number")
    return number
