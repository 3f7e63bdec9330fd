"""A growth path version compiled for the engine: expressions parsed once, ids resolved.

:func:`compile_path` builds the immutable :class:`GrowthPath` the pure core runs from a
file that passed validation (see :func:`services.node_engine.paths.schemas.check_path`).
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
from services.node_engine.paths.schemas import Branch as BranchFile
from services.node_engine.paths.schemas import GrowthPathFile
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
class Benefit:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class TierLevel:
    id: str
    name: str
    enter_at: float
    exit_below: float
    benefits: tuple[Benefit, ...]


@dataclass(frozen=True, slots=True)
class TierMove:
    """A change of tier: from ``old`` to ``new`` (``None`` is no tier).

    ``threshold`` is the line the value crossed: the ``enter_at`` it reached on a placement or
    promotion, the ``exit_below`` it fell under on a demotion (of the lowest level it left).
    """

    old: TierLevel | None
    new: TierLevel | None
    direction: Literal["placement", "promotion", "demotion"]
    value: float
    threshold: float


@dataclass(frozen=True, slots=True)
class Tiers:
    metric: Expression
    label: str
    stages: frozenset[str]
    notify: tuple[str, ...]
    levels: tuple[TierLevel, ...]
    """Ascending by ``enter_at``."""

    def place(self, current: str | None, value: float) -> TierLevel | None:
        """The level an account in tier ``current`` (``None``, or an id no level has: no
        tier) belongs in when the tier metric is ``value``, with hysteresis.

        With no tier, the highest level whose ``enter_at`` the value reaches. With one, the
        account is promoted to the highest level above it whose ``enter_at`` it reaches; else
        it keeps its level until the value falls below the level's ``exit_below``, and then
        drops to the highest lower level whose ``exit_below`` it still reaches (or to none).
        """
        chosen = self._position(current, value)[1]
        return None if chosen is None else self.levels[chosen]

    def move(self, current: str | None, value: float) -> TierMove | None:
        """The change :meth:`place` makes, or ``None`` when the account keeps its tier."""
        now, chosen = self._position(current, value)
        if chosen == now:
            return None
        new = self.levels[chosen] if chosen is not None else None
        old = self.levels[now] if now is not None else None
        if now is None:
            assert new is not None  # no tier to no tier is no move
            return TierMove(old, new, "placement", value, new.enter_at)
        if chosen is not None and chosen > now:
            return TierMove(old, new, "promotion", value, self.levels[chosen].enter_at)
        lowest_left = 0 if chosen is None else chosen + 1
        return TierMove(old, new, "demotion", value, self.levels[lowest_left].exit_below)

    def _position(self, current: str | None, value: float) -> tuple[int | None, int | None]:
        """(index of ``current``, index of the level to be in), ``None`` for no tier."""
        ids = [level.id for level in self.levels]
        now = ids.index(current) if current in ids else None
        above = [i for i, level in enumerate(self.levels) if value >= level.enter_at]
        if now is None:
            return now, (above[-1] if above else None)
        if above and above[-1] > now:
            return now, above[-1]
        if value < self.levels[now].exit_below:
            holding = [i for i in range(now) if value >= self.levels[i].exit_below]
            return now, (holding[-1] if holding else None)
        return now, now


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

    def expression(source: str, names: Names = Names.ACCOUNT) -> Expression:
        return compile_expression(source, names)

    def branches(items: list[BranchFile]) -> tuple[Branch, ...]:
        return tuple(Branch(expression(b.when) if b.when else None, b.goto) for b in items)

    stages: list[Stage] = []
    for index, stage in enumerate(path.stages):
        nodes = tuple(
            Node(
                id=node.id,
                name=node.name,
                stage=stage.id,
                complete_when=expression(node.complete_when),
                skip_when=expression(node.skip_when) if node.skip_when else None,
                due_seconds=_seconds(node.due) if node.due else None,
                due_from=node.due_from,
                notify=tuple(node.notify),
                escalations=tuple(
                    Escalation(level, _seconds(e.at), tuple(e.notify), e.action, e.reason)
                    for level, e in enumerate(node.escalations, start=1)
                ),
                next=branches(node.next),
                reentry=node.reentry
                if node.reentry in ("never", "always")
                else _seconds(node.reentry),  # type: ignore[arg-type]
            )
            for node in stage.nodes
        )
        stages.append(
            Stage(
                id=stage.id,
                name=stage.name,
                index=index,
                nodes=nodes,
                complete_when=expression(stage.complete_when) if stage.complete_when else None,
                notify=tuple(stage.notify),
                next=branches(stage.next),
            )
        )
    tiers = None
    if path.tiers:
        tiers = Tiers(
            metric=expression(path.tiers.metric),
            label=path.tiers.label,
            stages=frozenset(path.tiers.stages),
            notify=tuple(path.tiers.notify),
            levels=tuple(
                TierLevel(
                    id=level.id,
                    name=level.name or level.id,
                    enter_at=level.enter_at,
                    exit_below=level.enter_at if level.exit_below is None else level.exit_below,
                    benefits=tuple(Benefit(b.id, b.name) for b in level.benefits),
                )
                for level in path.tiers.levels
            ),
        )
    enrol_when = expression(path.enrol_when, Names.BOTH)
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
        stages=tuple(stages),
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


def _seconds(duration: str) -> int:
    return int(parse_duration(duration).total_seconds())
