"""An account's :class:`AccountSnapshot` from its metric store, the workspace's metric
definitions, its facts and its roles' activity. Pure.

Snapshot names (also in :mod:`services.scoring.health.snapshot` and docs/scoring.md):

* every windowed metric ``<id>`` (count, sum, distinct users, ratio) over each window it
  declares: ``<id>_1d``, ``<id>_7d``, ``<id>_28d``, ``<id>_90d``;
* baselines, for a metric declaring the windows they need: ``<id>_28d_weekly_avg`` (P7D and
  P28D: the 7-day figure averaged over the 4 weeks before this one),
  ``<id>_28d_daily_avg`` (P1D and P28D: the daily figure averaged over the 28 days before
  today) and ``<id>_28d_ago`` (P28D: the figure of the 28 days before the current 28);
  weeks or days from before the account's first event are not averaged in;
* a ``fact`` metric: ``<id>`` (its latest value); a ``last_seen`` metric: ``<id>`` (days);
* ``features_used_28d``: how many ``feature: true`` metrics were used in 28 days;
* ``days_since_last_contact``: the fewest days over the ``contact: true`` metrics, or the
  days since the account's first event when it never made contact;
* ``open_tickets``: tickets opened and not closed (once a ticket event was seen).

Figures are computed when read (health and the signals read a dozen of them), then kept.
Figures over whole days are also carried to the account's next evaluation
(:class:`FigureMemo`): one whose buckets are the very same objects and whose day has not
turned is reused, not recomputed, so an event costs the figures of the metrics it moved.
Role activity: for the decision maker and the admin, when a contact holds that role, the
fewest days over the ``last_seen`` metrics with that ``role`` (``None``: never active).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from enum import Enum, auto
from types import MappingProxyType
from typing import Final, Literal

import msgspec

from services.scoring.definitions import MetricDefinition, MetricDefinitions, MetricKind, Window
from services.scoring.evaluation.facts import AccountFacts
from services.scoring.health import AccountSnapshot
from services.scoring.health import snapshot as s
from services.scoring.metrics import DAY, MetricStore, baseline, value, value_of

Reader = Callable[[MetricStore, MetricDefinitions, AccountFacts, int], float | None]
ROLES = (s.DECISION_MAKER, s.ADMIN)
_WINDOWED = frozenset(
    {MetricKind.COUNT, MetricKind.SUM, MetricKind.DISTINCT_USERS, MetricKind.RATIO}
)


class _Unread(Enum):
    """A figure not read yet (``None`` is a figure: there is none)."""

    UNREAD = auto()


_UNREAD: Final = _Unread.UNREAD

Bucket = tuple[Literal["amounts", "users"], str]
"""Where a metric's day buckets are in a :class:`MetricStore`: ``(field, metric id)``."""


class FigureMemo(msgspec.Struct, frozen=True, gc=False):
    """Whole-day figures of one evaluation, for the account's next one: valid for the same
    definitions, day and first day, where the buckets they read are the same objects."""

    digest: str
    today: int
    store: MetricStore
    figures: Mapping[str, float | None]

    def reusable(self, definitions: MetricDefinitions, store: MetricStore, today: int) -> bool:
        return (
            self.digest == definitions.digest
            and self.today == today
            and self.store.since == store.since
        )

    def unchanged(self, store: MetricStore, buckets: tuple[Bucket, ...]) -> bool:
        """Whether every bucket list is the very object it was (stores are immutable)."""
        earlier = self.store
        return all(
            getattr(store, where).get(metric) is getattr(earlier, where).get(metric)
            for where, metric in buckets
        )


class SnapshotMetrics(Mapping[str, float | None]):
    """The snapshot's figures by name, each computed on first read (or taken from
    ``memo`` when its inputs did not change)."""

    __slots__ = (
        "_cache",
        "_definitions",
        "_facts",
        "_inputs",
        "_memo",
        "_now",
        "_readers",
        "_store",
    )

    def __init__(
        self,
        store: MetricStore,
        definitions: MetricDefinitions,
        facts: AccountFacts,
        now: int,
        memo: FigureMemo | None = None,
    ) -> None:
        self._store = store
        self._definitions = definitions
        self._facts = facts
        self._now = now
        self._readers = readers(definitions)
        self._inputs = inputs(definitions)
        self._cache: dict[str, float | None] = {}
        reusable = memo is not None and memo.reusable(definitions, store, now // DAY)
        self._memo = memo if reusable else None

    def __getitem__(self, name: str) -> float | None:
        figure = self._cache.get(name, _UNREAD)
        return self._read(name) if figure is _UNREAD else figure

    def _read(self, name: str) -> float | None:
        """The figure, not read before: the memo's when its buckets did not change, else
        computed (``KeyError`` for a name the definitions do not have)."""
        memo = self._memo
        if memo is not None and name in memo.figures:
            buckets = self._inputs.get(name)
            if buckets is not None and memo.unchanged(self._store, buckets):
                figure = self._cache[name] = memo.figures[name]
                return figure
        read = self._readers[name]
        figure = self._cache[name] = read(self._store, self._definitions, self._facts, self._now)
        return figure

    def __contains__(self, name: object) -> bool:
        return name in self._readers

    def get(self, name: str, default: float | None = None) -> float | None:  # type: ignore[override]
        """As ``Mapping.get``, without raising and catching a ``KeyError`` per read."""
        figure = self._cache.get(name, _UNREAD)
        if figure is not _UNREAD:
            return figure
        return self._read(name) if name in self._readers else default

    def memo(self) -> FigureMemo:
        """The whole-day figures read so far, for the next evaluation."""
        inputs = self._inputs
        return FigureMemo(
            self._definitions.digest,
            self._now // DAY,
            self._store,
            {name: figure for name, figure in self._cache.items() if name in inputs},
        )

    def __iter__(self) -> Iterator[str]:
        return iter(self._readers)

    def __len__(self) -> int:
        return len(self._readers)


def build_snapshot(
    store: MetricStore,
    definitions: MetricDefinitions,
    facts: AccountFacts,
    *,
    now: int,
    memo: FigureMemo | None = None,
) -> AccountSnapshot:
    """The account at ``now``: its figures (whole-day ones unchanged since ``memo`` taken
    from it), its facts and its roles' activity."""
    return AccountSnapshot(
        metrics=SnapshotMetrics(store, definitions, facts, now, memo),
        facts=facts.values,
        last_seen_days=role_activity(store, definitions, facts, now=now),
        now=now,
    )


def role_activity(
    store: MetricStore, definitions: MetricDefinitions, facts: AccountFacts, *, now: int
) -> dict[str, float | None]:
    """Days since the decision maker and the admin were active, for the roles the account's
    contacts hold and some ``last_seen`` metric follows."""
    found: dict[str, float | None] = {}
    followed = _plan(definitions).followed
    for role in ROLES:
        metrics = followed.get(role)
        if not metrics or role not in facts.roles:
            continue
        days = [
            d for m in metrics if (d := value(store, definitions, m, None, now=now)) is not None
        ]
        found[role] = min(days) if days else None
    return found


@dataclass(frozen=True, slots=True)
class _Plan:
    """How the snapshot of one set of definitions is read."""

    readers: Mapping[str, Reader]
    inputs: Mapping[str, tuple[Bucket, ...]]
    followed: Mapping[str, tuple[str, ...]]
    """The ``last_seen`` metrics following each role."""


def _plan(definitions: MetricDefinitions) -> _Plan:
    """The plan of ``definitions``, kept per content digest (one per workspace in use)."""
    found = _PLANS.get(definitions.digest)
    if found is None:
        followed = {
            role: tuple(
                m.id
                for m in definitions.metrics
                if m.kind is MetricKind.LAST_SEEN and m.role == role
            )
            for role in ROLES
        }
        found = _PLANS[definitions.digest] = _Plan(
            MappingProxyType(_readers_of(definitions)),
            MappingProxyType(_inputs_of(definitions)),
            MappingProxyType(followed),
        )
        while len(_PLANS) > MAX_PLANS:
            _PLANS.popitem(last=False)
    return found


MAX_PLANS = 256
_PLANS: OrderedDict[str, _Plan] = OrderedDict()


def readers(definitions: MetricDefinitions) -> Mapping[str, Reader]:
    """Every snapshot name of ``definitions`` with how to read it."""
    return _plan(definitions).readers


def inputs(definitions: MetricDefinitions) -> Mapping[str, tuple[Bucket, ...]]:
    """The snapshot names whose figure depends only on the day, the first day and these
    buckets; the others depend on the time or the facts."""
    return _plan(definitions).inputs


def _inputs_of(definitions: MetricDefinitions) -> dict[str, tuple[Bucket, ...]]:
    found: dict[str, tuple[Bucket, ...]] = {}
    for metric in definitions.metrics:
        buckets = _buckets(definitions, metric.id)
        if buckets is None:
            continue
        for window in metric.windows:
            found[f"{metric.id}_{window.value}d"] = buckets
        for suffix in ("_28d_weekly_avg", "_28d_daily_avg", "_28d_ago"):
            found[f"{metric.id}{suffix}"] = buckets
    features = [_buckets(definitions, m.id) for m in definitions.metrics if m.feature]
    if features and all(buckets is not None for buckets in features):
        found[s.FEATURES_USED_28D] = tuple(b for buckets in features if buckets for b in buckets)
    return found


def _buckets(definitions: MetricDefinitions, metric_id: str) -> tuple[Bucket, ...] | None:
    """The buckets the metric's whole-day figures read (a ratio: its two parts'); ``None``
    when they read something else too (a fact, a time)."""
    metric = definitions.get(metric_id)
    if metric.kind is MetricKind.DISTINCT_USERS:
        return (("users", metric_id),)
    if metric.kind is MetricKind.COUNT or metric.kind is MetricKind.SUM:
        return (("amounts", metric_id),)
    if metric.kind is not MetricKind.RATIO:
        return None
    assert metric.numerator is not None
    assert metric.denominator is not None
    top, bottom = _buckets(definitions, metric.numerator), _buckets(definitions, metric.denominator)
    return None if top is None or bottom is None else top + bottom


def _readers_of(definitions: MetricDefinitions) -> dict[str, Reader]:
    found: dict[str, Reader] = {}
    for metric in definitions.metrics:
        if metric.kind not in _WINDOWED:
            found[metric.id] = _point(metric)
            continue
        for window in metric.windows:
            found[f"{metric.id}_{window.value}d"] = _windowed(metric, window)
        if metric.kind is MetricKind.RATIO:
            continue
        windows = set(metric.windows)
        if {Window.P7D, Window.P28D} <= windows:
            found[f"{metric.id}_28d_weekly_avg"] = _average(metric.id, Window.P7D, Window.P28D)
        if {Window.P1D, Window.P28D} <= windows:
            found[f"{metric.id}_28d_daily_avg"] = _average(metric.id, Window.P1D, Window.P28D)
    for metric in definitions.metrics:
        if Window.P28D in metric.windows and metric.kind in _WINDOWED:
            found[f"{metric.id}_28d_ago"] = _average(metric.id, Window.P28D, Window.P28D)
    features = tuple(m.id for m in definitions.metrics if m.feature)
    if features:
        found[s.FEATURES_USED_28D] = _features_used(features)
    contacts = tuple(m.id for m in definitions.metrics if m.contact)
    if contacts:
        found[s.DAYS_SINCE_LAST_CONTACT] = _since_contact(contacts)
    found[s.OPEN_TICKETS] = _open_tickets
    return found


def _point(metric: MetricDefinition) -> Reader:
    def read(store: MetricStore, d: MetricDefinitions, _f: AccountFacts, now: int) -> float | None:
        return value_of(store, d, metric, None, now=now)

    return read


def _windowed(metric: MetricDefinition, window: Window) -> Reader:
    def read(store: MetricStore, d: MetricDefinitions, _f: AccountFacts, now: int) -> float | None:
        return value_of(store, d, metric, window, now=now)

    return read


def _average(metric_id: str, window: Window, over: Window) -> Reader:
    def read(store: MetricStore, d: MetricDefinitions, _f: AccountFacts, now: int) -> float | None:
        return baseline(store, d, metric_id, window=window, over=over, now=now).average

    return read


def _features_used(metric_ids: tuple[str, ...]) -> Reader:
    def read(store: MetricStore, d: MetricDefinitions, _f: AccountFacts, now: int) -> float | None:
        return float(sum(1 for m in metric_ids if value(store, d, m, Window.P28D, now=now)))

    return read


def _since_contact(metric_ids: tuple[str, ...]) -> Reader:
    def read(store: MetricStore, d: MetricDefinitions, _f: AccountFacts, now: int) -> float | None:
        days = [x for m in metric_ids if (x := value(store, d, m, None, now=now)) is not None]
        if days:
            return min(days)
        if store.since is None:
            return None
        return max(0.0, (now - store.since * DAY) / DAY)

    return read


def _open_tickets(
    _store: MetricStore, _d: MetricDefinitions, facts: AccountFacts, _now: int
) -> float | None:
    return None if facts.open_tickets is None else float(len(facts.open_tickets))
