"""A growth path version compiled for the engine: expressions parsed once, ids resolved.

:func:`compile_path` builds the immutable :class:`GrowthPath` the pure core runs from a
file that passed validation (see :func:`services.node_engine.paths.files.check_path`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from services.node_engine.paths.expressions import (
    Aggregate,
    Expression,
    Names,
    aggregates_of,
    compile_expression,
)
from services.node_engine.paths.files import Branch as BranchFile
from services.node_engine.paths.files import GrowthPathFile
from services.node_engine.paths.files import Node as NodeFile
from services.node_engine.paths.files import Stage as StageFile
from services.node_engine.paths.files import Tiers as TiersFile
from shared.contracts.tiers import Benefit, TierLadder, TierLevel
from shared.durations import parse_duration


@dataclass(frozen=True, slots=True)
class Branch:
    when: Expression | None
    goto: str


@dataclass(frozen=True, slots=True)
class Escalation:
    level: int
    at_seconds: int
    notify: tuple[str, ...]
    action: Literal["nudge", "task"]
    reason: str | None


@dataclass(frozen=True, slots=True)
class Node:
    id: str
    name: str
    stage: str
    complete_when: Expression
    skip_when: Expression | None
    due_seconds: int | None
    due_from: Literal["stage", "node"]
    notify: tuple[str, ...]
    escalations: tuple[Escalation, ...]
    next: tuple[Branch, ...]
    reentry: Literal["never", "always"] | int
    """``never``, ``always``, or the seconds that must pass since the last completion."""


@dataclass(frozen=True, slots=True)
class Stage:
    id: str
    name: str
    index: int
    nodes: tuple[Node, ...]
    complete_when: Expression | None
    notify: tuple[str, ...]
    next: tuple[Branch, ...]


@dataclass(frozen=True, slots=True)
class Tiers(TierLadder):
    """A growth path's tiers: the ladder (:class:`~shared.contracts.tiers.TierLadder`, with
    its hysteresis) and the metric, stages and roles the engine places accounts with."""

    metric: Expression
    stages: frozenset[str]
    notify: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class GrowthPath:
    id: str
    version: int
    name: str
    business_type: str
    enrol_when: Expression
    review_seconds: int
    stages: tuple[Stage, ...]
    tiers: Tiers | None
    aggregates: tuple[Aggregate, ...]
    """Every aggregate any expression of the path reads; the engine keeps exactly these."""
    stages_by_id: MappingProxyType[str, Stage] = field(repr=False)
    nodes_by_id: MappingProxyType[str, Node] = field(repr=False)
    aggregates_by_event: MappingProxyType[str, tuple[Aggregate, ...]] = field(repr=False)
    """For each event name an aggregate counts, the aggregates an event of that name may
    count towards (its own and those of any event), in :attr:`aggregates` order."""
    aggregates_of_any_event: tuple[Aggregate, ...] = field(repr=False)

    def aggregates_for(self, name: str | None) -> tuple[Aggregate, ...]:
        """The aggregates an event called ``name`` may count towards: the others are not
        evaluated for it."""
        if name is None:
            return self.aggregates_of_any_event
        return self.aggregates_by_event.get(name, self.aggregates_of_any_event)

    def stage_after(self, stage: Stage) -> Stage | None:
        following = stage.index + 1
        return self.stages[following] if following < len(self.stages) else None

    def node_after(self, node: Node) -> Node | None:
        nodes = self.stages_by_id[node.stage].nodes
        position = nodes.index(node) + 1
        return nodes[position] if position < len(nodes) else None


def compile_path(path: GrowthPathFile, *, version: int) -> GrowthPath:
    """Compile a validated file into the engine's form."""
    stages = tuple(_stage(stage, index) for index, stage in enumerate(path.stages))
    tiers = _tiers(path.tiers) if path.tiers else None
    enrol_when = compile_expression(path.enrol_when, Names.BOTH)
    all_nodes = [node for stage in stages for node in stage.nodes]
    expressions: list[Expression | None] = [enrol_when, tiers.metric if tiers else None]
    for stage_ in stages:
        expressions += [stage_.complete_when, *(b.when for b in stage_.next)]
    for node_ in all_nodes:
        expressions += [node_.complete_when, node_.skip_when, *(b.when for b in node_.next)]
    aggregates = aggregates_of(expressions)
    named = {a.event for a in aggregates if a.event is not None}
    return GrowthPath(
        id=path.id,
        version=version,
        name=path.name,
        business_type=path.business_type.value,
        enrol_when=enrol_when,
        review_seconds=_seconds(path.review_every),
        stages=stages,
        tiers=tiers,
        aggregates=aggregates,
        stages_by_id=MappingProxyType({stage.id: stage for stage in stages}),
        nodes_by_id=MappingProxyType({node.id: node for node in all_nodes}),
        aggregates_by_event=MappingProxyType(
            {
                name: tuple(a for a in aggregates if a.event in (None, name))
                for name in sorted(named)
            }
        ),
        aggregates_of_any_event=tuple(a for a in aggregates if a.event is None),
    )


def _stage(stage: StageFile, index: int) -> Stage:
    return Stage(
        id=stage.id,
        name=stage.name,
        index=index,
        nodes=tuple(_node(node, stage.id) for node in stage.nodes),
        complete_when=compile_expression(stage.complete_when, Names.ACCOUNT)
        if stage.complete_when
        else None,
        notify=tuple(stage.notify),
        next=_branches(stage.next),
    )


def _node(node: NodeFile, stage_id: str) -> Node:
    return Node(
        id=node.id,
        name=node.name,
        stage=stage_id,
        complete_when=compile_expression(node.complete_when, Names.ACCOUNT),
        skip_when=compile_expression(node.skip_when, Names.ACCOUNT) if node.skip_when else None,
        due_seconds=_seconds(node.due) if node.due else None,
        due_from=node.due_from,
        notify=tuple(node.notify),
        escalations=tuple(
            Escalation(level, _seconds(e.at), tuple(e.notify), e.action, e.reason)
            for level, e in enumerate(node.escalations, start=1)
        ),
        next=_branches(node.next),
        reentry=_reentry(node.reentry),
    )


def _reentry(reentry: str) -> Literal["never", "always"] | int:
    if reentry in ("never", "always"):
        return reentry  # type: ignore[return-value]
    return _seconds(reentry)


def _branches(items: list[BranchFile]) -> tuple[Branch, ...]:
    return tuple(
        Branch(compile_expression(b.when, Names.ACCOUNT) if b.when else None, b.goto) for b in items
    )


def _tiers(tiers: TiersFile) -> Tiers:
    return Tiers(
        metric=compile_expression(tiers.metric, Names.ACCOUNT),
        label=tiers.label,
        stages=frozenset(tiers.stages),
        notify=tuple(tiers.notify),
        levels=tuple(
            TierLevel(
                id=level.id,
                name=level.name or level.id,
                enter_at=level.enter_at,
                exit_below=level.enter_at if level.exit_below is None else level.exit_below,
                benefits=tuple(Benefit(b.id, b.name) for b in level.benefits),
            )
            for level in tiers.levels
        ),
    )


def _seconds(duration: str) -> int:
    return int(parse_duration(duration).total_seconds())
