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
        return self


class MetricsFile(Model):
    """A workspace's metric definitions."""

    description: Text | None = None
    metrics: list[Metric] = Field(min_length=1, max_length=200)

    @model_validator(mode="after")
    def _check_meaning(self) -> MetricsFile:
        problems = check_metrics(self)
        if problems:
            location, message = problems[0]
            raise DefinitionInvalid(location, message)
        return self


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
