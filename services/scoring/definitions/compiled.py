"""Metric definitions compiled for folding events: frozen values, filters ready to test.

:func:`load_metrics` is the edge: it reads and validates a file (see
:mod:`services.scoring.definitions.schemas`) and compiles it with its content digest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from types import MappingProxyType

from services.scoring.definitions.schemas import Metric, MetricKind, MetricsFile
from services.scoring.errors import MetricUnknown
from shared.definitions import definition_digest, load_definition
from shared.definitions.document import read_definition

Value = bool | int | float | str


class Window(IntEnum):
    """A metric window, in UTC days: the current day and the days before it."""

    P1D = 1
    P7D = 7
    P28D = 28
    P90D = 90


@dataclass(frozen=True, slots=True)
class MetricEvent:
    """An event as metrics see it, already attributed to one account.

    ``name`` is the event's name (a CRM event's CloudEvent type), ``actor_roles`` the acting
    user's roles, ``facts`` the account facts the event states (``crm.seats`` ...), and
    ``occurred_at`` epoch seconds.
    """

    name: str
    occurred_at: int
    user_id: str | None = None
    actor_roles: frozenset[str] = frozenset()
    properties: Mapping[str, object] = field(default_factory=dict)
    facts: Mapping[str, object] = field(default_factory=dict)


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


@dataclass(frozen=True, slots=True)
class MetricDefinitions:
    """A workspace's compiled metrics, in file order, with the North Star's id and the
    file's content ``digest``."""

    metrics: tuple[MetricDefinition, ...]
    north_star: str
    digest: str
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


def compile_metrics(file: MetricsFile, *, digest: str) -> MetricDefinitions:
    """Compile a validated file; ``digest`` is its :func:`definition_digest`."""
    metrics = tuple(_compile(metric) for metric in file.metrics)
    star = next(metric.id for metric in metrics if metric.north_star)
    return MetricDefinitions(metrics, star, digest)


def load_metrics(source: Path | str, *, text: str | None = None) -> MetricDefinitions:
    """Read (unless ``text`` is given), validate and compile a metric-definitions file.

    Raises :class:`shared.definitions.DefinitionError` naming file, line and field.
    """
    if text is None:
        text = read_definition(Path(source))
    file = load_definition(source, MetricsFile, text=text)
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
    )


def _equal(found: object, wanted: Value) -> bool:
    """Equality in which true/false never equal 1/0."""
    if isinstance(found, bool) or isinstance(wanted, bool):
        return isinstance(found, bool) and isinstance(wanted, bool) and found is wanted
    return found == wanted
