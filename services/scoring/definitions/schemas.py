"""The metric-definitions file format (YAML), validated by pydantic.

A workspace's file lists its metrics. Each has a ``kind``:

* ``count``: events named ``event``;
* ``sum``: of the numeric ``property`` of events named ``event``;
* ``distinct_users``: users who sent ``event`` (optionally only those acting in ``role``);
* ``ratio``: ``numerator`` over ``denominator``, two other metrics' ids;
* ``last_seen``: days since the last ``event`` (optionally by someone in ``role``);
* ``fact``: the latest value of an account fact an event states, such as ``crm.seats``.

``count``, ``sum``, ``distinct_users`` and ``ratio`` are measured over ``windows`` (P1D, P7D,
P28D, P90D); ``where`` keeps only events whose properties equal a value (or one of a list).
Exactly one windowed metric is the workspace's North Star (``north_star: true``).

Two flags tell the health score and the signals what a metric stands for: ``feature: true``
on a ``count``, ``sum`` or ``distinct_users`` metric makes it one of the product's features
(usage breadth counts the features used in 28 days), and ``contact: true`` on a ``last_seen``
metric makes it a contact with the team (silence is the days since the latest one).

Two optional sections serve tiers and diagnostics: ``tiers`` binds a growth path's tier ladder
to the metric (and window) that measures it, and ``diagnostics`` lists per path the core
problems found by comparing an account's percentiles with its tier peers, each with the
playbook that answers it; both may only name metrics (and windows) the file defines.

An optional ``signals`` section changes a churn signal's ``raise_at``, ``clear_at`` and
``severity``, or turns it off (``enabled: false``); ``clear_at`` stays on the healthy side
of ``raise_at``. An optional ``health`` section weighs the health components, by default and per segment
(business type and/or tier); without it the defaults of
:mod:`services.scoring.health.score` apply.

Validation checks the shape, then the meaning (ids unique, ratio parts exist, are numbers and
form no cycle, one North Star); each problem carries its location, so the loader reports the
file, line and field.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StringConstraints,
    field_validator,
    model_validator,
)

from services.scoring.signals.rules import BELOW, DEFAULT_THRESHOLDS, SignalKind
from shared.contracts.crm import ContactRole
from shared.definitions import DefinitionInvalid, Location

Identifier = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
Text = Annotated[str, StringConstraints(min_length=1, max_length=500)]
EventName = Annotated[str, StringConstraints(min_length=1, max_length=200)]
PropertyName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]{0,99}$")]
FactName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_.]{0,99}$")]
Scalar = StrictBool | StrictInt | StrictFloat | Annotated[str, StringConstraints(max_length=200)]
WindowName = Literal["P1D", "P7D", "P28D", "P90D"]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MetricKind(StrEnum):
    COUNT = "count"
    SUM = "sum"
    DISTINCT_USERS = "distinct_users"
    RATIO = "ratio"
    LAST_SEEN = "last_seen"
    FACT = "fact"


WINDOWED = frozenset(
    {MetricKind.COUNT, MetricKind.SUM, MetricKind.DISTINCT_USERS, MetricKind.RATIO}
)
"""Kinds measured over windows; the others are a single current value."""
NUMERIC_PARTS = WINDOWED | {MetricKind.FACT}
"""Kinds a ratio may divide."""
_FEATURE_KINDS = frozenset({MetricKind.COUNT, MetricKind.SUM, MetricKind.DISTINCT_USERS})

_FIELDS: dict[MetricKind, tuple[frozenset[str], frozenset[str]]] = {
    # kind: (required, allowed besides the required ones)
    MetricKind.COUNT: (frozenset({"event", "windows"}), frozenset({"where", "role"})),
    MetricKind.SUM: (frozenset({"event", "property", "windows"}), frozenset({"where", "role"})),
    MetricKind.DISTINCT_USERS: (frozenset({"event", "windows"}), frozenset({"where", "role"})),
    MetricKind.RATIO: (frozenset({"numerator", "denominator", "windows"}), frozenset()),
    MetricKind.LAST_SEEN: (frozenset({"event"}), frozenset({"where", "role"})),
    MetricKind.FACT: (frozenset({"fact"}), frozenset()),
}
_OPTIONAL = ("event", "property", "where", "role", "numerator", "denominator", "fact", "windows")


class Metric(Model):
    """One metric as written by an operator."""

    id: Identifier
    name: Text
    description: Text | None = None
    kind: MetricKind
    event: EventName | None = Field(
        default=None, description="The event's name (a CRM event's CloudEvent type)."
    )
    property: PropertyName | None = None
    where: dict[
        PropertyName, Scalar | Annotated[list[Scalar], Field(min_length=1, max_length=50)]
    ] = Field(default_factory=dict, max_length=10)
    role: ContactRole | None = Field(default=None, description="The acting user's role.")
    numerator: Identifier | None = None
    denominator: Identifier | None = None
    fact: FactName | None = None
    windows: list[WindowName] = Field(default_factory=list, max_length=4)
    north_star: bool = False
    feature: bool = Field(
        default=False, description="A product feature: usage breadth counts it when used."
    )
    contact: bool = Field(
        default=False, description="A contact with the team: silence counts the days since."
    )

    @field_validator("where", mode="before")
    @classmethod
    def _check_where(cls, where: object) -> object:
        if not isinstance(where, dict):
            return where  # pydantic names the problem
        for key, accepted in where.items():
            values = accepted if isinstance(accepted, list) else [accepted]
            if not values or not all(isinstance(v, bool | int | float | str) for v in values):
                raise DefinitionInvalid(
                    (key,), "expected a value or a list of values (text, number, true or false)"
                )
        return where

    @model_validator(mode="after")
    def _check_fields(self) -> Metric:
        required, allowed = _FIELDS[self.kind]
        for name in _OPTIONAL:
            given = getattr(self, name) not in (None, {}, [])
            if name in required and not given:
                raise DefinitionInvalid((name,), f"a {self.kind} metric needs {name!r}")
            if given and name not in required and name not in allowed:
                raise DefinitionInvalid((name,), f"a {self.kind} metric takes no {name!r}")
        if len(set(self.windows)) != len(self.windows):
            raise DefinitionInvalid(("windows",), "a window is listed twice")
        if self.north_star and self.kind not in WINDOWED:
            raise DefinitionInvalid(
                ("north_star",), f"the North Star is measured over a window; a {self.kind} is not"
            )
        if self.feature and self.kind not in _FEATURE_KINDS:
            raise DefinitionInvalid(
                ("feature",), f"a feature is counted over a window; a {self.kind} is not"
            )
        if self.contact and self.kind is not MetricKind.LAST_SEEN:
            raise DefinitionInvalid(
                ("contact",), f"a contact is a last_seen metric; a {self.kind} is not"
            )
        return self


PathId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,62}$")]
"""A growth path's id (services/node_engine/paths)."""
TierId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")]
PlaybookId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,62}$")]
Percentile = Annotated[float, Field(ge=0, le=100)]


class MetricReading(Model):
    """A metric read as one figure: a windowed metric over one of its windows, or a ``fact``
    or ``last_seen`` metric (no window)."""

    metric: Identifier
    window: WindowName | None = None


class TierBinding(MetricReading):
    """The metric (and window) that places a growth path's accounts in the path's tiers.

    The ladder (levels, ``enter_at``, ``exit_below``) is the path's; this names the figure
    scoring measures it with, such as ``{path: platform-merchant, metric: gmv, window: P28D}``.
    """

    path: PathId


class PeerBound(MetricReading):
    """The account's percentile among its tier peers by this metric: ``at_least`` (the top
    ``100 - at_least``%) and/or ``below`` (the bottom ``below``%)."""

    at_least: Percentile | None = None
    below: Percentile | None = None

    @model_validator(mode="after")
    def _check_bounds(self) -> PeerBound:
        if self.at_least is None and self.below is None:
            raise DefinitionInvalid((), "give at_least, below or both (percentiles, 0..100)")
        if self.at_least is not None and self.below is not None and self.at_least >= self.below:
            raise DefinitionInvalid(("below",), "below must be greater than at_least")
        return self


class DiagnosticRule(Model):
    """A core problem: it holds when every bound in ``when`` holds; ``playbook`` answers it."""

    id: Identifier
    problem: Text = Field(description="The core problem, as a CSM would say it.")
    tiers: list[TierId] = Field(
        default_factory=list, max_length=20, description="Only in these tiers (default: all)."
    )
    when: list[PeerBound] = Field(min_length=1, max_length=5)
    playbook: PlaybookId


class PathDiagnostics(Model):
    """A growth path's diagnostic rules, tried in order: the first that holds is the core
    problem. Percentiles need ``min_peers`` peers in the account's tier (the account included).
    """

    path: PathId
    min_peers: int = Field(default=10, ge=2, le=100_000)
    rules: list[DiagnosticRule] = Field(min_length=1, max_length=50)


def check_bindings(file: MetricsFile) -> list[tuple[Location, str]]:
    """What is wrong with the ``tiers`` and ``diagnostics`` sections: unknown metrics, windows
    a metric is not measured over, paths or rule ids given twice."""
    metrics = {metric.id: metric for metric in file.metrics}
    problems: list[tuple[Location, str]] = []

    def reading(location: Location, item: MetricReading) -> None:
        metric = metrics.get(item.metric)
        if metric is None:
            problems.append(((*location, "metric"), f"metric {item.metric!r} does not exist"))
        elif metric.kind in WINDOWED and item.window not in metric.windows:
            listed = ", ".join(metric.windows)
            problems.append(
                ((*location, "window"), f"metric {metric.id!r} is measured over {listed}")
            )
        elif metric.kind not in WINDOWED and item.window is not None:
            problems.append(((*location, "window"), f"a {metric.kind} metric has no window"))

    seen: set[str] = set()
    for i, binding in enumerate(file.tiers):
        if binding.path in seen:
            problems.append((("tiers", i, "path"), f"path {binding.path!r} is bound twice"))
        seen.add(binding.path)
        reading(("tiers", i), binding)
        if (metric := metrics.get(binding.metric)) and metric.kind is MetricKind.LAST_SEEN:
            problems.append((("tiers", i, "metric"), "tiers are not placed by a last_seen metric"))
    seen = set()
    for i, section in enumerate(file.diagnostics):
        if section.path in seen:
            problems.append(
                (("diagnostics", i, "path"), f"path {section.path!r} has rules already")
            )
        seen.add(section.path)
        rule_ids: set[str] = set()
        for j, rule in enumerate(section.rules):
            if rule.id in rule_ids:
                problems.append(
                    (("diagnostics", i, "rules", j, "id"), f"rule id {rule.id!r} is already used")
                )
            rule_ids.add(rule.id)
            for k, bound in enumerate(rule.when):
                reading(("diagnostics", i, "rules", j, "when", k), bound)
    return problems


ComponentName = Literal[
    "usage_depth",
    "usage_breadth",
    "seat_activation",
    "login_trend",
    "support_load",
    "billing_state",
    "relationship",
]
Weights = dict[ComponentName, Annotated[float, Field(ge=0, le=1000)]]


def _some_weight(weights: dict[str, float]) -> dict[str, float]:
    if weights and not any(weights.values()):
        raise DefinitionInvalid((), "at least one weight must be above 0")
    return weights


class HealthSegment(Model):
    """Weights for the accounts of one business type and/or tier."""

    business_type: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    tier: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    weights: Weights = Field(min_length=1)

    _check_weights = field_validator("weights")(_some_weight)

    @model_validator(mode="after")
    def _check_segment(self) -> HealthSegment:
        if self.business_type is None and self.tier is None:
            raise DefinitionInvalid((), "a segment names a business_type, a tier or both")
        return self


class HealthWeights(Model):
    """How health weighs its components: the default weights (components left out weigh
    nothing) and per-segment weights, tried as (business type, tier), business type, tier."""

    weights: Weights = Field(default_factory=dict)
    segments: list[HealthSegment] = Field(default_factory=list, max_length=100)

    _check_weights = field_validator("weights")(_some_weight)

    @model_validator(mode="after")
    def _check_segments(self) -> HealthWeights:
        seen: set[tuple[str | None, str | None]] = set()
        for i, segment in enumerate(self.segments):
            key = (segment.business_type, segment.tier)
            if key in seen:
                raise DefinitionInvalid(("segments", i), "this segment is listed twice")
            seen.add(key)
        return self


SignalName = Literal[
    "logins_falling",
    "data_export",
    "api_burst",
    "silence",
    "decision_maker_inactive",
    "admin_inactive",
    "invoice_overdue",
    "seat_utilisation_falling",
    "renewal_at_risk",
]


class SignalTuning(Model):
    """A churn signal's thresholds and severity instead of the defaults; ``enabled: false``
    never raises it."""

    raise_at: StrictFloat | StrictInt | None = None
    clear_at: StrictFloat | StrictInt | None = None
    severity: Literal["low", "medium", "high"] | None = None
    enabled: bool = True


class MetricsFile(Model):
    """A workspace's metric definitions."""

    description: Text | None = None
    metrics: list[Metric] = Field(min_length=1, max_length=200)
    tiers: list[TierBinding] = Field(
        default_factory=list, max_length=50, description="Tier metrics of growth paths."
    )
    diagnostics: list[PathDiagnostics] = Field(
        default_factory=list, max_length=50, description="Core-problem rules per growth path."
    )
    health: HealthWeights | None = Field(
        default=None, description="Health component weights, by default and per segment."
    )
    signals: dict[SignalName, SignalTuning] = Field(
        default_factory=dict, description="Churn signals' thresholds and severities."
    )

    @model_validator(mode="after")
    def _check_signals(self) -> MetricsFile:
        for name, tuning in self.signals.items():
            problem = signal_problem(name, tuning)
            if problem is not None:
                raise DefinitionInvalid(("signals", name), problem)
        return self

    @model_validator(mode="after")
    def _check_meaning(self) -> MetricsFile:
        problems = check_metrics(self)
        if problems:
            location, message = problems[0]
            raise DefinitionInvalid(location, message)
        return self

    @model_validator(mode="after")
    def _check_bindings(self) -> MetricsFile:
        problems = check_bindings(self)
        if problems:
            location, message = problems[0]
            raise DefinitionInvalid(location, message)
        return self


def signal_problem(name: str, tuning: SignalTuning) -> str | None:
    """What is wrong with a signal's tuning once merged with its defaults, if anything."""
    kind = SignalKind(name)
    default = DEFAULT_THRESHOLDS[kind]
    raise_at = default.raise_at if tuning.raise_at is None else float(tuning.raise_at)
    clear_at = default.clear_at if tuning.clear_at is None else float(tuning.clear_at)
    healthy = clear_at > raise_at if kind in BELOW else clear_at < raise_at
    if healthy:
        return None
    side = "above" if kind in BELOW else "below"
    return f"clear_at ({clear_at:g}) must be {side} raise_at ({raise_at:g}) for {name}"


def check_metrics(file: MetricsFile) -> list[tuple[Location, str]]:
    """What is wrong with ``file`` beyond its shape, each problem at its location."""
    problems: list[tuple[Location, str]] = []
    index: dict[str, int] = {}
    for i, metric in enumerate(file.metrics):
        if metric.id in index:
            problems.append((("metrics", i, "id"), f"id {metric.id!r} is already used"))
        index.setdefault(metric.id, i)
    for i, metric in enumerate(file.metrics):
        for part in ("numerator", "denominator"):
            ident = getattr(metric, part)
            if ident is None:
                continue
            if ident not in index:
                problems.append((("metrics", i, part), f"metric {ident!r} does not exist"))
            elif (kind := file.metrics[index[ident]].kind) not in NUMERIC_PARTS:
                problems.append((("metrics", i, part), f"a ratio cannot divide a {kind} metric"))
    problems.extend(_cycles(file, index))
    stars = [i for i, metric in enumerate(file.metrics) if metric.north_star]
    if not stars:
        problems.append((("metrics",), "one metric must be marked north_star: true"))
    for i in stars[1:]:
        first = file.metrics[stars[0]].id
        problems.append(
            (("metrics", i, "north_star"), f"only one metric may be the North Star ({first!r} is)")
        )
    last = len(file.metrics)
    return sorted(problems, key=lambda p: p[0][1] if len(p[0]) > 1 else last)


def _cycles(file: MetricsFile, index: dict[str, int]) -> list[tuple[Location, str]]:
    """Ratios that depend on themselves, each reported once at the part that closes the loop."""
    problems: list[tuple[Location, str]] = []
    done: set[str] = set()

    def visit(ident: str, path: list[str]) -> None:
        metric = file.metrics[index[ident]]
        for part in ("numerator", "denominator"):
            target = getattr(metric, part)
            if target is None or target not in index or target in done:
                continue
            if target in path:
                loop = " -> ".join([*path[path.index(target) :], target])
                problems.append((("metrics", index[ident], part), f"ratios form a cycle: {loop}"))
                continue
            visit(target, [*path, target])
        done.add(ident)

    for metric in file.metrics:
        if metric.id not in done and metric.kind is MetricKind.RATIO:
            visit(metric.id, [metric.id])
    return problems
