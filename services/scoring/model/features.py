"""Features and labels: an account's metrics at monthly snapshot dates, and whether it churned
within the horizon after each. Pure.

Every feature is a metric of the workspace's definitions, read at the snapshot date from a
:class:`MetricStore` folded with the account's events before that date, exactly as the
scoring service keeps it: a windowed metric gives one feature per window
(``logins.P7D``) and, when it has a 7-day window, its trend (``logins.trend``: the last 7
days over the average week of the 28 days before, capped at 5), a ``last_seen`` metric its days since (never seen: the account's age),
a ``fact`` its latest value; ``tenure_days`` is the account's age. A figure that does not
exist (a fact never stated, a ratio over zero) stays ``None``.

A snapshot's label is observed only once its horizon has passed inside the history: a
snapshot is positive when the account churned within ``horizon_days`` after it, negative
when it did not and the history goes on for the whole horizon, and *censored* (left out)
otherwise. No snapshot is taken while an account stands cancelled.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from services.scoring.definitions import MetricDefinition, MetricDefinitions, MetricKind, Window
from services.scoring.errors import EventValueInvalid
from services.scoring.metrics import DAY, MetricStore, baseline, fold, value
from services.scoring.model.history import AccountHistory, AccountKey, History

TENURE = "tenure_days"
TREND = "trend"
TREND_CAP = 5.0

Values = tuple[float | None, ...]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One account at one date (epoch seconds): its feature values and its label."""

    account: AccountKey
    at: int
    values: Values
    label: bool


@dataclass(frozen=True, slots=True)
class Dataset:
    """Labelled snapshots in date order, with what was left out and why.

    ``censored``: snapshots whose horizon had not passed when the history ends;
    ``invalid_events``: events a metric could not add up (a non-numeric amount), skipped as
    the scoring service would dead-letter them.
    """

    features: tuple[str, ...]
    snapshots: tuple[Snapshot, ...]
    horizon_days: int
    accounts: int
    censored: int
    invalid_events: int


def feature_names(definitions: MetricDefinitions) -> tuple[str, ...]:
    """The features the definitions give, in file order, then ``tenure_days``."""
    names: list[str] = []
    for metric in definitions.metrics:
        if metric.kind in (MetricKind.LAST_SEEN, MetricKind.FACT):
            names.append(metric.id)
        else:
            names.extend(f"{metric.id}.{window.name}" for window in metric.windows)
            if _trended(metric):
                names.append(f"{metric.id}.{TREND}")
    names.append(TENURE)
    return tuple(names)


def feature_values(
    store: MetricStore, definitions: MetricDefinitions, *, first_at: int, now: int
) -> Values:
    """The features of :func:`feature_names` read from ``store`` at ``now``."""
    tenure = max(0, now - first_at) / DAY
    values: list[float | None] = []
    for metric in definitions.metrics:
        if metric.kind is MetricKind.LAST_SEEN:
            days = value(store, definitions, metric.id, None, now=now)
            values.append(tenure if days is None else days)
        elif metric.kind is MetricKind.FACT:
            values.append(value(store, definitions, metric.id, None, now=now))
        else:
            values.extend(
                value(store, definitions, metric.id, window, now=now) for window in metric.windows
            )
            if _trended(metric):
                values.append(_trend(store, definitions, metric.id, now))
    values.append(tenure)
    return tuple(values)


def _trended(metric: MetricDefinition) -> bool:
    return Window.P7D in metric.windows


def _trend(
    store: MetricStore, definitions: MetricDefinitions, metric_id: str, now: int
) -> float | None:
    """The last 7 days over the average of the 4 weeks before; None without a baseline."""
    figure = baseline(store, definitions, metric_id, window=Window.P7D, over=Window.P28D, now=now)
    if figure.current is None or not figure.average:
        return None
    return min(TREND_CAP, figure.current / figure.average)


def month_starts(after: int, until: int) -> list[int]:
    """The first instants of UTC months strictly after ``after`` and at or before ``until``."""
    start = datetime.fromtimestamp(after, UTC)
    year, month = start.year, start.month
    dates: list[int] = []
    while True:
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        at = int(datetime(year, month, 1, tzinfo=UTC).timestamp())
        if at > until:
            return dates
        dates.append(at)


def readings(
    account: AccountHistory, definitions: MetricDefinitions, dates: Sequence[int]
) -> tuple[list[tuple[int, Values]], int]:
    """The account's features at each of ``dates`` (ascending), from its events strictly
    before each date; and how many events were skipped as invalid."""
    store = MetricStore()
    clock = 0
    invalid = 0
    found: list[tuple[int, Values]] = []
    pending = iter(dates)
    date = next(pending, None)
    first = account.first_at
    for event in account.events:
        while date is not None and date <= event.occurred_at:
            found.append((date, feature_values(store, definitions, first_at=first, now=date)))
            date = next(pending, None)
        clock = max(clock, event.occurred_at)
        try:
            store = fold(store, event, definitions, now=clock)
        except EventValueInvalid:
            invalid += 1
    while date is not None:
        found.append((date, feature_values(store, definitions, first_at=first, now=date)))
        date = next(pending, None)
    return found, invalid


def label(account: AccountHistory, at: int, *, horizon_days: int, end: int) -> bool | None:
    """Churned within the horizon after ``at``; None when that is not yet observable."""
    until = at + horizon_days * DAY
    if any(at < churned <= until for churned in account.churned_at):
        return True
    return False if until <= end else None


def build_dataset(
    history: History,
    definitions: MetricDefinitions,
    *,
    horizon_days: int,
    progress: Callable[[int], None] | None = None,
) -> Dataset:
    """Snapshots of every account on the first day of each month after its first event,
    up to the end of the history; ``progress`` is called with 1 after each account."""
    if horizon_days <= 0:
        raise ValueError("the horizon must be at least one day")
    snapshots: list[Snapshot] = []
    censored = invalid = 0
    for key in sorted(history.accounts):
        account = history.accounts[key]
        dates = [
            at for at in month_starts(account.first_at, history.end) if not account.cancelled_at(at)
        ]
        found, skipped = readings(account, definitions, dates)
        invalid += skipped
        for at, values in found:
            outcome = label(account, at, horizon_days=horizon_days, end=history.end)
            if outcome is None:
                censored += 1
            else:
                snapshots.append(Snapshot(key, at, values, outcome))
        if progress is not None:
            progress(1)
    snapshots.sort(key=lambda s: (s.at, s.account))
    return Dataset(
        feature_names(definitions),
        tuple(snapshots),
        horizon_days,
        len(history.accounts),
        censored,
        invalid,
    )
