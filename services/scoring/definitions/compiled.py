"""Metric definitions compiled for folding events: frozen values, filters ready to test.

:func:`load_metrics` is the edge: it reads and validates a file (see
:mod:`services.scoring.definitions.schemas`) and compiles it with its content digest.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from types import MappingProxyType

import msgspec

from services.scoring.definitions.schemas import (
    HealthWeights,
    Metric,
    MetricKind,
    MetricsFile,
    SignalName,
    SignalTuning,
    Weights,
)
from services.scoring.definitions.schemas import PathDiagnostics as PathDiagnosticsFile
from services.scoring.errors import MetricUnknown
from services.scoring.health import DEFAULT_WEIGHTS, Component, HealthConfig
from services.scoring.signals.rules import (
    DEFAULT_THRESHOLDS,
    Severity,
    SignalConfig,
    SignalKind,
    Threshold,
)
from shared.definitions import definition_digest, load_definition
from shared.definitions.document import read_definition

Value = bool | int | float | str


class Window(IntEnum):
    """A metric window, in UTC days: the current day and the days before it."""

    P1D = 1
    P7D = 7
    P28D = 28
    P90D = 90


class MetricEvent(msgspec.Struct, frozen=True, gc=False):
    """An event as metrics see it, already attributed to one account.

    ``name`` is the event's name (a CRM event's CloudEvent type), ``actor_roles`` the acting
    user's roles, ``facts`` the account facts the event states (``crm.seats`` ...), and
    ``occurred_at`` epoch seconds.
    """

    name: str
    occurred_at: int
    user_id: str | None = None
    actor_roles: frozenset[str] = frozenset()
    properties: Mapping[str, object] = msgspec.field(default_factory=dict)
    facts: Mapping[str, object] = msgspec.field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MetricDefinition:
    """One compiled metric; ``where`` holds (property, accepted values) pairs."""

    id: str
    name: str
    kind: MetricKind
    event: str | None = None
    property: str | None = None
    where: tuple[tuple[str, tuple[Value, ...]], ...] = ()
    role: str | None = None
    numerator: str | None = None
    denominator: str | None = None
    fact: str | None = None
    windows: tuple[Window, ...] = ()
    north_star: bool = False
    feature: bool = False
    """Counted by usage breadth when used (see the file format)."""
    contact: bool = False
    """A contact with the team, for silence (see the file format)."""

    def matches(self, event: MetricEvent) -> bool:
        """Whether ``event`` counts towards this metric (ratios and facts match none)."""
        if self.event is None or event.name != self.event:
            return False
        if self.role is not None and self.role not in event.actor_roles:
            return False
        return all(
            any(_equal(event.properties.get(key), value) for value in accepted)
            for key, accepted in self.where
        )


@functools.lru_cache(maxsize=4096)
def figure_name(metric_id: str, window: Window | None) -> str:
    """The snapshot name of a metric over ``window``: ``gmv_28d``, or the id alone (``None``)."""
    return metric_id if window is None else f"{metric_id}_{window.value}d"


@dataclass(frozen=True, slots=True)
class TierSource:
    """The figure that places a growth path's accounts in its tiers (``tiers`` section)."""

    path: str
    metric: str
    window: Window | None

    @property
    def figure(self) -> str:
        """Its snapshot name, such as ``gmv_28d``."""
        return figure_name(self.metric, self.window)


@dataclass(frozen=True, slots=True)
class PercentileBound:
    """A bound on the account's percentile among its tier peers by one figure: at least
    ``at_least`` and/or below ``below`` (percentiles, 0..100)."""

    metric: str
    window: Window | None
    at_least: float | None
    below: float | None

    @property
    def figure(self) -> str:
        return figure_name(self.metric, self.window)

    def holds(self, percentile: float) -> bool:
        return (self.at_least is None or percentile >= self.at_least) and (
            self.below is None or percentile < self.below
        )


@dataclass(frozen=True, slots=True)
class DiagnosticRule:
    """A core problem that holds when every bound holds, in ``tiers`` (empty: any tier)."""

    id: str
    problem: str
    tiers: frozenset[str]
    when: tuple[PercentileBound, ...]
    playbook: str

    def applies_in(self, tier: str | None) -> bool:
        return not self.tiers or tier in self.tiers


@dataclass(frozen=True, slots=True)
class PathDiagnostics:
    """A growth path's diagnostic rules in file order, and the peers percentiles need."""

    path: str
    min_peers: int
    rules: tuple[DiagnosticRule, ...]

    @property
    def figures(self) -> tuple[str, ...]:
        """Every figure a rule reads, once each, in rule order: the peer distributions to keep."""
        return tuple(dict.fromkeys(bound.figure for rule in self.rules for bound in rule.when))


@dataclass(frozen=True, slots=True)
class MetricDefinitions:
    """A workspace's compiled metrics, in file order, with the North Star's id and the
    file's content ``digest``."""

    metrics: tuple[MetricDefinition, ...]
    north_star: str
    digest: str
    tier_sources: tuple[TierSource, ...] = ()
    diagnostics: tuple[PathDiagnostics, ...] = ()
    health: HealthConfig | None = None
    """The file's health weights; ``None``: the defaults."""
    signals: SignalConfig | None = None
    """The file's signal thresholds; ``None``: the defaults."""
    _by_id: Mapping[str, MetricDefinition] = field(init=False, repr=False, compare=False)
    _by_event: Mapping[str, tuple[MetricDefinition, ...]] = field(
        init=False, repr=False, compare=False
    )
    _by_fact: Mapping[str, tuple[MetricDefinition, ...]] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        by_event: dict[str, list[MetricDefinition]] = {}
        by_fact: dict[str, list[MetricDefinition]] = {}
        for metric in self.metrics:
            if metric.event is not None:
                by_event.setdefault(metric.event, []).append(metric)
            if metric.fact is not None:
                by_fact.setdefault(metric.fact, []).append(metric)
        setter = object.__setattr__
        setter(self, "_by_id", MappingProxyType({m.id: m for m in self.metrics}))
        setter(self, "_by_event", MappingProxyType({k: tuple(v) for k, v in by_event.items()}))
        setter(self, "_by_fact", MappingProxyType({k: tuple(v) for k, v in by_fact.items()}))

    def get(self, metric_id: str) -> MetricDefinition:
        """The metric by that id; raises :class:`MetricUnknown`."""
        try:
            return self._by_id[metric_id]
        except KeyError:
            raise MetricUnknown(f"no metric {metric_id!r} in the definitions") from None

    def for_event(self, name: str) -> tuple[MetricDefinition, ...]:
        """The metrics counting events by that name (before their role and ``where`` filters)."""
        return self._by_event.get(name, ())

    def for_fact(self, name: str) -> tuple[MetricDefinition, ...]:
        """The ``fact`` metrics following that account fact."""
        return self._by_fact.get(name, ())

    def tier_source(self, path: str) -> TierSource | None:
        """The figure placing accounts of growth path ``path`` in its tiers, if bound."""
        return next((source for source in self.tier_sources if source.path == path), None)

    def diagnostics_for(self, path: str) -> PathDiagnostics | None:
        """Growth path ``path``'s diagnostic rules, if it has any."""
        return next((rules for rules in self.diagnostics if rules.path == path), None)


def compile_metrics(file: MetricsFile, *, digest: str) -> MetricDefinitions:
    """Compile a validated file; ``digest`` is its :func:`definition_digest`."""
    metrics = tuple(_compile(metric) for metric in file.metrics)
    star = next(metric.id for metric in metrics if metric.north_star)
    tier_sources = tuple(
        TierSource(binding.path, binding.metric, _window(binding.window)) for binding in file.tiers
    )
    diagnostics = tuple(_compile_diagnostics(section) for section in file.diagnostics)
    health = None if file.health is None else _compile_health(file.health)
    signals = _compile_signals(file.signals) if file.signals else None
    return MetricDefinitions(metrics, star, digest, tier_sources, diagnostics, health, signals)


def load_metrics(source: Path | str, *, text: str | None = None) -> MetricDefinitions:
    """Read (unless ``text`` is given), validate and compile a metric-definitions file.

    Raises :class:`shared.definitions.DefinitionError` naming file, line and field.
    """
    if text is None:
        text = read_definition(Path(source))
    file = load_definition(source, MetricsFile, text=text, what="the metric definitions")
    return compile_metrics(file, digest=definition_digest(text, source=str(source)))


def _compile(metric: Metric) -> MetricDefinition:
    where = tuple(
        (key, tuple(value) if isinstance(value, list) else (value,))
        for key, value in metric.where.items()
    )
    return MetricDefinition(
        id=metric.id,
        name=metric.name,
        kind=metric.kind,
        event=metric.event,
        property=metric.property,
        where=where,
        role=None if metric.role is None else str(metric.role),
        numerator=metric.numerator,
        denominator=metric.denominator,
        fact=metric.fact,
        windows=tuple(Window[name] for name in metric.windows),
        north_star=metric.north_star,
        feature=metric.feature,
        contact=metric.contact,
    )


def _compile_health(section: HealthWeights) -> HealthConfig:
    def weights(given: Weights) -> Mapping[Component, float]:
        return MappingProxyType({Component(name): weight for name, weight in given.items()})

    return HealthConfig(
        default_weights=weights(section.weights) if section.weights else DEFAULT_WEIGHTS,
        segment_weights=MappingProxyType(
            {(s.business_type, s.tier): weights(s.weights) for s in section.segments}
        ),
    )


def _compile_signals(tunings: dict[SignalName, SignalTuning]) -> SignalConfig:
    thresholds = dict(DEFAULT_THRESHOLDS)
    for name, tuning in tunings.items():
        kind = SignalKind(name)
        if not tuning.enabled:
            thresholds.pop(kind, None)
            continue
        default = thresholds[kind]
        thresholds[kind] = Threshold(
            default.raise_at if tuning.raise_at is None else float(tuning.raise_at),
            default.clear_at if tuning.clear_at is None else float(tuning.clear_at),
            default.severity if tuning.severity is None else Severity(tuning.severity),
        )
    return SignalConfig(thresholds=MappingProxyType(thresholds))


def _window(name: str | None) -> Window | None:
    return None if name is None else Window[name]


def _compile_diagnostics(section: PathDiagnosticsFile) -> PathDiagnostics:
    rules = tuple(
        DiagnosticRule(
            id=rule.id,
            problem=rule.problem,
            tiers=frozenset(rule.tiers),
            when=tuple(
                PercentileBound(b.metric, _window(b.window), b.at_least, b.below) for b in rule.when
            ),
            playbook=rule.playbook,
        )
        for rule in section.rules
    )
    return PathDiagnostics(section.path, section.min_peers, rules)


def _equal(found: object, wanted: Value) -> bool:
    """Equality in which true/false never equal 1/0."""
    if isinstance(found, bool) or isinstance(wanted, bool):
        return isinstance(found, bool) and isinstance(wanted, bool) and found is wanted
    return found == wanted
