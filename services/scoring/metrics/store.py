"""One account's metrics, kept incrementally in UTC day buckets.

:func:`fold` adds an event; :func:`value` and :func:`baseline` read a figure at ``now``.
Counts and sums keep an amount per day, distinct users a set of user ids per day, both for
the last :data:`HORIZON_DAYS` days only, so no read or write touches older history.
``last_seen`` keeps the latest matching time and ``fact`` the latest stated value, with no
horizon. A window of N days is the current UTC day and the N - 1 days before it; events are
bucketed by their own time (a time after ``now`` counts as today). Everything is pure: the
store is a frozen value, and folding returns a new one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TypeVar

import msgspec

from services.scoring.definitions import (
    MetricDefinition,
    MetricDefinitions,
    MetricEvent,
    MetricKind,
    Window,
)
from services.scoring.errors import EventValueInvalid, UnsupportedQuery

DAY = 86400
HORIZON_DAYS = 90
"""Days of buckets kept: the longest window."""
MAX_USERS_PER_DAY = 5000
"""Users kept per distinct-users metric and day; later ones that day are not counted."""

T = TypeVar("T")

Amounts = tuple[tuple[int, float], ...]
"""(day, amount) pairs, days ascending; a day is epoch seconds // 86400."""
UserDays = tuple[tuple[int, frozenset[str]], ...]
"""(day, users) pairs, days ascending."""


class MetricStore(msgspec.Struct, frozen=True, gc=False):
    """An account's metric state. ``day`` is the latest day folded at (None: nothing folded),
    ``since`` the earliest day of any event folded; the mappings are keyed by metric id."""

    day: int | None = None
    since: int | None = None
    amounts: Mapping[str, Amounts] = msgspec.field(default_factory=dict)
    users: Mapping[str, UserDays] = msgspec.field(default_factory=dict)
    last_seen: Mapping[str, int] = msgspec.field(default_factory=dict)
    facts: Mapping[str, tuple[float, int]] = msgspec.field(default_factory=dict)
    """Metric id -> (value, epoch seconds it was stated at)."""


class Baseline(msgspec.Struct, frozen=True, gc=False):
    """A figure now beside its own past: ``current`` over the latest window, ``average`` of
    the same window over the ``blocks`` windows before it that the account existed in
    (None when there were none)."""

    current: float | None
    average: float | None
    blocks: int


def fold(
    store: MetricStore, event: MetricEvent, definitions: MetricDefinitions, *, now: int
) -> MetricStore:
    """``store`` with ``event`` counted in every metric it matches, buckets older than the
    horizon at ``now`` dropped. Raises :class:`EventValueInvalid` (leaving ``store`` as it
    was) when a summed property or a followed fact is not a finite number."""
    today = now // DAY
    if store.day is None or today > store.day:
        store = prune(store, now=now)
    first = today - HORIZON_DAYS + 1
    day = min(event.occurred_at // DAY, today)
    amounts: dict[str, Amounts] | None = None
    users: dict[str, UserDays] | None = None
    last_seen: dict[str, int] | None = None
    facts: dict[str, tuple[float, int]] | None = None
    for metric in definitions.for_event(event.name):
        if not metric.matches(event):
            continue
        kind = metric.kind
        if kind is MetricKind.LAST_SEEN:
            at = min(event.occurred_at, now)
            if at > store.last_seen.get(metric.id, at - 1):
                last_seen = dict(store.last_seen) if last_seen is None else last_seen
                last_seen[metric.id] = at
        elif day < first:
            continue
        elif kind is MetricKind.DISTINCT_USERS:
            if event.user_id is None:
                continue
            users = dict(store.users) if users is None else users
            users[metric.id] = _with_user(users.get(metric.id, ()), day, event.user_id)
        elif kind is MetricKind.COUNT or kind is MetricKind.SUM:
            amount = 1.0 if kind is MetricKind.COUNT else _number(metric, event)
            if amount is None:
                continue
            amounts = dict(store.amounts) if amounts is None else amounts
            amounts[metric.id] = _with_amount(amounts.get(metric.id, ()), day, amount)
    for name, raw in event.facts.items():
        for metric in definitions.for_fact(name):
            number = _finite(raw, f"fact {name!r}")
            if number is None:
                continue
            stated = store.facts.get(metric.id)
            if stated is None or event.occurred_at >= stated[1]:
                facts = dict(store.facts) if facts is None else facts
                facts[metric.id] = (number, event.occurred_at)
    since = day if store.since is None else min(store.since, day)
    return msgspec.structs.replace(
        store,
        since=since,
        amounts=store.amounts if amounts is None else amounts,
        users=store.users if users is None else users,
        last_seen=store.last_seen if last_seen is None else last_seen,
        facts=store.facts if facts is None else facts,
    )


def prune(store: MetricStore, *, now: int) -> MetricStore:
    """``store`` without buckets older than the horizon at ``now``; ``day`` set to now's day."""
    today = now // DAY
    first = today - HORIZON_DAYS + 1
    amounts = {k: kept for k, v in store.amounts.items() if (kept := _from(v, first))}
    users = {k: held for k, v in store.users.items() if (held := _from(v, first))}
    day = today if store.day is None else max(store.day, today)
    return msgspec.structs.replace(store, day=day, amounts=amounts, users=users)


def value(
    store: MetricStore,
    definitions: MetricDefinitions,
    metric_id: str,
    window: Window | None,
    *,
    now: int,
) -> float | None:
    """The metric at ``now``: over ``window`` for counts, sums, distinct users and ratios
    (required for them), days since for ``last_seen``, the latest value for a ``fact``.

    None when there is no figure: never seen, a fact never stated, a ratio with a part
    missing or a zero denominator. Raises :class:`MetricUnknown` for an unknown id.
    """
    return value_of(store, definitions, definitions.get(metric_id), window, now=now)


def value_of(
    store: MetricStore,
    definitions: MetricDefinitions,
    metric: MetricDefinition,
    window: Window | None,
    *,
    now: int,
) -> float | None:
    """As :func:`value`, for a metric of ``definitions`` already looked up."""
    kind = metric.kind
    if kind is MetricKind.LAST_SEEN:
        at = store.last_seen.get(metric.id)
        return None if at is None else max(0, now - at) / DAY
    if kind is MetricKind.FACT:
        stated = store.facts.get(metric.id)
        return None if stated is None else stated[0]
    if window is None:
        raise UnsupportedQuery(f"metric {metric.id!r} is measured over a window; name one")
    today = now // DAY
    return _range(store, definitions, metric, today - window + 1, today)


def baseline(
    store: MetricStore,
    definitions: MetricDefinitions,
    metric_id: str,
    *,
    window: Window,
    over: Window,
    now: int,
) -> Baseline:
    """The ``window`` figure now, and its average over the ``over`` days before that window,
    in consecutive ``window``-long blocks (7 days against the 28 before: four blocks).
    Blocks that end before the account's first event are left out.

    Raises :class:`UnsupportedQuery` for a metric without windows, or when ``over`` is not
    a multiple of ``window`` or the two together reach past :data:`HORIZON_DAYS`.
    """
    metric = definitions.get(metric_id)
    if metric.kind in (MetricKind.LAST_SEEN, MetricKind.FACT):
        raise UnsupportedQuery(f"a {metric.kind} metric has no baseline")
    if over % window or window + over > HORIZON_DAYS:
        raise UnsupportedQuery(
            f"a baseline over {over.name} in {window.name} blocks does not fit in "
            f"{HORIZON_DAYS} days of buckets"
        )
    today = now // DAY
    current = _range(store, definitions, metric, today - window + 1, today)
    blocks = (
        0 if store.since is None else max(0, min(over // window, (today - store.since) // window))
    )
    figures = [
        f for f in _blocks(store, definitions, metric, today, window, blocks) if f is not None
    ]
    average = sum(figures) / len(figures) if figures else None
    return Baseline(current, average, blocks)


def _blocks(
    store: MetricStore,
    definitions: MetricDefinitions,
    metric: MetricDefinition,
    today: int,
    window: int,
    count: int,
) -> list[float | None]:
    """The metric over each of the ``count`` ``window``-day blocks before the current one,
    the latest first (block ``k`` ends ``k * window`` days before ``today``), as
    :func:`_range` reads each, in one pass over the buckets."""
    if count == 0:
        return []
    kind = metric.kind
    if kind is MetricKind.COUNT or kind is MetricKind.SUM:
        totals = [0.0] * (count + 1)
        for d, a in store.amounts.get(metric.id, ()):
            k = (today - d) // window
            if 1 <= k <= count:
                totals[k] += a
        return list(totals[1:])
    if kind is MetricKind.DISTINCT_USERS:
        seen: list[set[str]] = [set() for _ in range(count + 1)]
        for d, users in store.users.get(metric.id, ()):
            k = (today - d) // window
            if 1 <= k <= count:
                seen[k] |= users
        return [float(len(users)) for users in seen[1:]]
    if kind is MetricKind.FACT:
        stated = store.facts.get(metric.id)
        return [None if stated is None else stated[0]] * count
    if kind is MetricKind.RATIO:
        assert metric.numerator is not None
        assert metric.denominator is not None
        tops = _blocks(store, definitions, definitions.get(metric.numerator), today, window, count)
        bottoms = _blocks(
            store, definitions, definitions.get(metric.denominator), today, window, count
        )
        return [
            None if top is None or bottom is None or bottom == 0 else top / bottom
            for top, bottom in zip(tops, bottoms, strict=True)
        ]
    raise UnsupportedQuery(f"a {kind} metric has no figure over days")


def _range(
    store: MetricStore, definitions: MetricDefinitions, metric: MetricDefinition, lo: int, hi: int
) -> float | None:
    """The metric over days ``lo`` to ``hi`` inclusive (a fact: its latest value)."""
    kind = metric.kind
    if kind is MetricKind.COUNT or kind is MetricKind.SUM:
        total = 0.0
        for d, a in store.amounts.get(metric.id, ()):
            if lo <= d <= hi:
                total += a
        return total
    if kind is MetricKind.DISTINCT_USERS:
        seen: set[str] = set()
        for d, users in store.users.get(metric.id, ()):
            if lo <= d <= hi:
                seen |= users
        return float(len(seen))
    if kind is MetricKind.FACT:
        stated = store.facts.get(metric.id)
        return None if stated is None else stated[0]
    if kind is MetricKind.RATIO:
        assert metric.numerator is not None
        assert metric.denominator is not None
        top = _range(store, definitions, definitions.get(metric.numerator), lo, hi)
        bottom = _range(store, definitions, definitions.get(metric.denominator), lo, hi)
        if top is None or bottom is None or bottom == 0:
            return None
        return top / bottom
    raise UnsupportedQuery(f"a {kind} metric has no figure over days")


def _with_amount(buckets: Amounts, day: int, amount: float) -> Amounts:
    if not buckets or buckets[-1][0] < day:  # the common cases: a new day, or today again
        return (*buckets, (day, amount))
    if buckets[-1][0] == day:
        return (*buckets[:-1], (day, buckets[-1][1] + amount))
    kept = dict(buckets)
    kept[day] = kept.get(day, 0.0) + amount
    return tuple(sorted(kept.items()))


def _with_user(buckets: UserDays, day: int, user: str) -> UserDays:
    kept = dict(buckets)
    users = kept.get(day, frozenset())
    if user in users or len(users) >= MAX_USERS_PER_DAY:
        return buckets
    kept[day] = users | {user}
    return tuple(sorted(kept.items()))


def _from(buckets: tuple[tuple[int, T], ...], first: int) -> tuple[tuple[int, T], ...]:
    if not buckets or buckets[0][0] >= first:
        return buckets
    return tuple(bucket for bucket in buckets if bucket[0] >= first)


def _number(metric: MetricDefinition, event: MetricEvent) -> float | None:
    return _finite(event.properties.get(metric.property or ""), f"property {metric.property!r}")


def _finite(raw: object, what: str) -> float | None:
    """``raw`` as a finite number; None for a missing value; :class:`EventValueInvalid` else."""
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise EventValueInvalid(f"{what} is {raw!r}, not a number")
    try:
        number = float(raw)
    except ValueError:
        raise EventValueInvalid(f"{what} is {raw!r}, not a number") from None
    if not math.isfinite(number):
        raise EventValueInvalid(f"{what} is {raw!r}, not a finite number")
    return number
