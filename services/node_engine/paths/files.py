"""The growth-path file format (YAML), validated by pydantic. See docs/growth-paths.md.

Validation checks the shape, then the meaning: every expression compiles in the names its
place allows, ids are unique across stages and nodes, every ``goto`` names a stage or node,
tier thresholds rise and each level's exit is at or below its entry. Each problem carries
its location, so the loader reports the file, line and field.

A pure model: it imports no web, database or bus library (the admin API's bodies are in
:mod:`services.node_engine.paths.schemas`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Literal

from pydantic import (
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from services.node_engine.errors import ExpressionError
from services.node_engine.paths.expressions import Names, compile_expression
from shared.contracts.crm import BusinessType
from shared.contracts.triggers import Audience
from shared.definitions import DefinitionInvalid
from shared.definitions.fields import Duration, FileModel, Identifier, Text
from shared.durations import parse_duration

Condition = Annotated[str, StringConstraints(min_length=1, max_length=2000)]


def _duration(value: str) -> str:
    if parse_duration(value).total_seconds() <= 0:
        raise ValueError("a duration must be longer than zero")
    return value


class Escalation(FileModel):
    at: Duration = Field(description="When, from the same anchor as the node's due date.")
    notify: list[Audience] = Field(min_length=1)
    action: Literal["nudge", "task"] = "nudge"
    reason: Text | None = None

    _check_at = field_validator("at")(_duration)


class Branch(FileModel):
    """One way out: the first branch whose ``when`` holds (or that has none) is taken."""

    when: Condition | None = None
    goto: Identifier


class Node(FileModel):
    id: Identifier
    name: Text
    description: Text | None = None
    complete_when: Condition
    skip_when: Condition | None = None
    due: Duration | None = None
    due_from: Literal["stage", "node"] = "stage"
    notify: list[Audience] = Field(
        default_factory=list, description="Roles told when the node is entered or overdue."
    )
    escalations: list[Escalation] = Field(default_factory=list, max_length=10)
    next: list[Branch] = Field(default_factory=list, max_length=20)
    reentry: Literal["never", "always"] | Duration = "never"

    _check_due = field_validator("due")(lambda v: v if v is None else _duration(v))

    @field_validator("reentry")
    @classmethod
    def _check_reentry(cls, value: str) -> str:
        return value if value in ("never", "always") else _duration(value)


class Stage(FileModel):
    id: Identifier
    name: Text
    description: Text | None = None
    nodes: list[Node] = Field(default_factory=list, max_length=100)
    complete_when: Condition | None = Field(
        default=None,
        description="Leave the stage when this holds; by default, when its last node is done.",
    )
    notify: list[Audience] = Field(default_factory=list)
    next: list[Branch] = Field(default_factory=list, max_length=20)


class Benefit(FileModel):
    id: Identifier
    name: Text


class TierLevel(FileModel):
    id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")]
    name: Text | None = None
    enter_at: float = Field(description="Promote into this level when the metric reaches it.")
    exit_below: float | None = Field(
        default=None, description="Demote out of it below this (default: enter_at)."
    )
    benefits: list[Benefit] = Field(default_factory=list)


class Tiers(FileModel):
    metric: Condition = Field(description="An account expression, e.g. 28-day GMV.")
    label: Text
    stages: list[Identifier] = Field(min_length=1, description="Where tiers apply.")
    notify: list[Audience] = Field(default_factory=list)
    levels: list[TierLevel] = Field(min_length=2, max_length=20)


class GrowthPathFile(FileModel):
    """A growth path as written by an operator."""

    id: Identifier
    name: Text
    description: Text | None = None
    business_type: BusinessType
    enrol_when: Condition = Field(description="An event (and account) expression.")
    review_every: Duration = Field(
        default="P1D", description="How often time-based conditions and tiers are re-checked."
    )
    stages: list[Stage] = Field(min_length=1, max_length=50)
    tiers: Tiers | None = None

    _check_review = field_validator("review_every")(_duration)

    @model_validator(mode="after")
    def _check_meaning(self) -> GrowthPathFile:
        problems = check_path(self)
        if problems:
            raise DefinitionInvalid.every(problems)
        return self


Location = tuple[str | int, ...]


def expressions_of(path: GrowthPathFile) -> Iterator[tuple[Location, str, Names]]:
    """Every expression in the file with its location and the names it may read."""
    yield ("enrol_when",), path.enrol_when, Names.BOTH
    for s, stage in enumerate(path.stages):
        if stage.complete_when:
            yield ("stages", s, "complete_when"), stage.complete_when, Names.ACCOUNT
        for b, branch in enumerate(stage.next):
            if branch.when:
                yield ("stages", s, "next", b, "when"), branch.when, Names.ACCOUNT
        for n, node in enumerate(stage.nodes):
            at: Location = ("stages", s, "nodes", n)
            yield (*at, "complete_when"), node.complete_when, Names.ACCOUNT
            if node.skip_when:
                yield (*at, "skip_when"), node.skip_when, Names.ACCOUNT
            for b, branch in enumerate(node.next):
                if branch.when:
                    yield (*at, "next", b, "when"), branch.when, Names.ACCOUNT
    if path.tiers:
        yield ("tiers", "metric"), path.tiers.metric, Names.ACCOUNT


def check_path(path: GrowthPathFile) -> list[DefinitionInvalid]:
    """Everything wrong with ``path`` beyond its shape, each problem at its location (a
    condition's at the offending character)."""
    problems = [
        DefinitionInvalid(location, str(exc), offset=exc.offset)
        for location, source, names in expressions_of(path)
        if (exc := _compile_error(source, names)) is not None
    ]
    found = [*_ids_and_branches(path), *_escalations(path), *_tier_problems(path)]
    return problems + [DefinitionInvalid(location, message) for location, message in found]


def _compile_error(source: str, names: Names) -> ExpressionError | None:
    try:
        compile_expression(source, names)
    except ExpressionError as exc:
        return exc
    return None


def _ids_and_branches(path: GrowthPathFile) -> Iterator[tuple[Location, str]]:
    """Ids used twice, and branches to no stage or node or that omit `when` too early."""
    seen: dict[str, Location] = {}
    for s, stage in enumerate(path.stages):
        for location, ident in [(("stages", s, "id"), stage.id)] + [
            (("stages", s, "nodes", n, "id"), node.id) for n, node in enumerate(stage.nodes)
        ]:
            if ident in seen:
                yield location, f"id {ident!r} is already used (ids name stages and nodes)"
            seen.setdefault(ident, location)
    places: list[tuple[Location, list[Branch]]] = []
    for s, stage in enumerate(path.stages):
        places.append((("stages", s), stage.next))
        places += [(("stages", s, "nodes", n), node.next) for n, node in enumerate(stage.nodes)]
    for at, branches in places:
        for b, branch in enumerate(branches):
            if branch.goto not in seen:
                yield (*at, "next", b, "goto"), f"no stage or node {branch.goto!r}"
            if branch.when is None and b != len(branches) - 1:
                yield (*at, "next", b, "when"), "only the last branch may omit `when`"


def _escalations(path: GrowthPathFile) -> Iterator[tuple[Location, str]]:
    for s, stage in enumerate(path.stages):
        for n, node in enumerate(stage.nodes):
            previous = parse_duration(node.due).total_seconds() if node.due else 0
            for e, escalation in enumerate(node.escalations):
                seconds = parse_duration(escalation.at).total_seconds()
                if seconds <= previous:
                    yield (
                        ("stages", s, "nodes", n, "escalations", e, "at"),
                        "escalations must come after the due date and each after the one before",
                    )
                previous = seconds


def _tier_problems(path: GrowthPathFile) -> Iterator[tuple[Location, str]]:
    if not path.tiers:
        return
    stage_ids = {stage.id for stage in path.stages}
    for i, stage_id in enumerate(path.tiers.stages):
        if stage_id not in stage_ids:
            yield ("tiers", "stages", i), f"no stage {stage_id!r}"
    previous_entry = None
    for i, level in enumerate(path.tiers.levels):
        if previous_entry is not None and level.enter_at <= previous_entry:
            yield (
                ("tiers", "levels", i, "enter_at"),
                "levels must rise: each enter_at above the one before",
            )
        if level.exit_below is not None and level.exit_below > level.enter_at:
            yield (
                ("tiers", "levels", i, "exit_below"),
                "exit_below must be at or below enter_at (that gap is the hysteresis)",
            )
        previous_entry = level.enter_at
