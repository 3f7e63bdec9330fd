"""The pure core: ``transition(state, input, *, path, now) -> Decision``. No I/O.

Rules (docs/growth-paths.md spells them out for operators):

* An event enrols an account that is not on the path when ``enrol_when`` holds; the
  account enters the first stage and that stage's first node, knowing every fact stated
  about it before (``known``: facts accumulate per account whatever its enrolment).
* Every matching event is folded into the path's aggregates first, then the account
  advances as far as the conditions allow in one go: the active node completes when its
  ``complete_when`` holds, the next node is the first branch whose ``when`` holds (or the
  following node, or the stage's exit), a node whose ``skip_when`` holds is skipped, and a
  node already done is entered again only as its ``reentry`` rule allows.
* Entering a node sets the first timer of its chain (its due date, then each escalation),
  anchored at the stage's or the node's entry; each timer that fires sets the next, so a
  node done early leaves one timer behind, not the whole chain. A timer that fires after
  its node visit ended changes nothing.
* Tiers are placed while the account is in a tier stage, with hysteresis: promotion at a
  level's ``enter_at``, demotion only below the current level's ``exit_below``.
* A condition that fails on this account's data is recorded (``condition_failed``) and
  the rest of the input is still applied.
* A score whose risk level differs from the one known fires ``risk_changed`` with each
  raised signal's reason (sentence, figures), except the very first "unknown -> low".

Ids of transitions and timers are hashes of what caused them, so applying the same input
to the same state yields the same ids: replays publish nothing new.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from services.node_engine.core import aggregates
from services.node_engine.core.facts import fold_facts, scored_facts
from services.node_engine.core.state import (
    AccountState,
    AggregateValue,
    Decision,
    Input,
    ManualMove,
    NodeRecord,
    NodeStatus,
    Observation,
    ScoreUpdate,
    Timer,
    TimerFired,
    TimerKind,
    Transition,
    TransitionKind,
)
from services.node_engine.errors import ConditionFailed
from services.node_engine.paths.compiled import Branch, GrowthPath, Node, Stage
from services.node_engine.paths.expressions import Aggregate, Expression
from shared.contracts.scores import RiskLevel
from shared.durations import format_duration

MAX_STEPS_PER_INPUT = 200
"""A path whose branches loop without waiting for anything stops here, with an error."""
MAX_PASSES_PER_INPUT = 100
"""Nodes passed through (skipped, or done and not to be entered again) in one input: a loop
of such nodes stops here, with an error, well before Python's recursion limit."""
RISK_AUDIENCE = ("account_owner", "decision_maker")


def transition(
    state: AccountState | None,
    event: Input,
    *,
    path: GrowthPath,
    now: datetime,
    hold: bool = False,
    known: Mapping[str, Any] | None = None,
) -> Decision:
    """Apply one input to one account's state on ``path``.

    ``state`` is ``None`` for an account not on the path yet; only an observation can
    enrol it, and ``known`` are the account's facts from before that observation. With
    ``hold`` (the path is paused) data is still folded in but the account does not move
    and no trigger fires.
    """
    seconds = int(now.timestamp())
    if state is None:
        if not isinstance(event, Observation) or hold:
            return Decision(None)
        if not path.enrol_when.may_hold_for(event.type, event.name):
            return Decision(None)
        return _enrol(event, path=path, now=seconds, known=known or {})
    if state.path_id != path.id or state.path_version != path.version:
        raise ValueError(f"state is on {state.path_id} v{state.path_version}, not v{path.version}")
    step = Step(state, path, seconds, _cause_of(event))
    if isinstance(event, Observation):
        step.observe(event)
    elif isinstance(event, ScoreUpdate):
        step.score(event, hold=hold)
    elif isinstance(event, TimerFired):
        if not step.timer_fired(event.timer, hold=hold):
            return Decision(state)
    else:
        step.move(event)
    if not hold:
        step.advance()
    return step.decision()


def _enrol(event: Observation, *, path: GrowthPath, now: int, known: Mapping[str, Any]) -> Decision:
    """Enrol the event's account if ``enrol_when`` holds: it enters the first stage with
    the ``known`` facts, the event is counted, and it advances as far as its data allows."""
    seconds = now
    first = path.stages[0]
    blank = AccountState(
        event.workspace_id,
        event.account_id,
        path.id,
        path.version,
        seconds,
        first.id,
        seconds,
        None,
        None,
    )
    step = Step(blank, path, seconds, event.event_id)
    step.scope.observation = event
    step.scope.facts = fold_facts(known, event.facts)
    try:
        if not path.enrol_when.test(step.scope):
            return Decision(None)
    except ConditionFailed:
        return Decision(None)
    step.scope.observation = None
    step.record(
        TransitionKind.ENROLLED, first, None, f"enrolled on {path.name} by {_describe(event)}"
    )
    step.schedule(TimerKind.REVIEW, seconds + path.review_seconds)
    step.observe(event)
    step.enter_stage(first, None)
    step.advance()
    return step.decision()


class _Scope:
    """The names an expression reads, over the working state of one step: the account's
    position (stage, node, tier, and when they were entered) is kept here, mutable, while
    the step moves it, and written into a new :class:`AccountState` once, at the end."""

    __slots__ = (
        "aggregates",
        "enrolled_at",
        "facts",
        "node",
        "node_entered_at",
        "now",
        "observation",
        "stage",
        "stage_entered_at",
        "tier",
    )

    def __init__(self, state: AccountState, now: int) -> None:
        self.now = now
        self.enrolled_at = state.enrolled_at
        self.stage = state.stage
        self.stage_entered_at = state.stage_entered_at
        self.node = state.node
        self.node_entered_at = state.node_entered_at
        self.tier = state.tier
        self.facts: dict[str, Any] = dict(state.facts)
        self.aggregates: dict[str, AggregateValue] = dict(state.aggregates)
        self.observation: Observation | None = None

    def event_value(self, path: tuple[str, ...]) -> Any:
        event = self.observation
        if event is None:
            return None
        root = path[0]
        if root == "event":
            value: Any = event.name
        elif root == "type":
            value = event.type
        elif root == "source":
            value = event.source
        elif root == "user_id":
            value = event.user_id
        elif root == "properties":
            value = event.properties
        elif root == "traits":
            value = event.traits
        else:  # actor
            value = {"roles": tuple(sorted(event.actor_roles))}
        return _dig(value, path[1:])

    def account_value(self, path: tuple[str, ...]) -> Any:
        root = path[0]
        if root in ("crm", "score", "account"):
            return self.facts.get(".".join(path[:2])) if len(path) >= 2 else None
        if root == "tier":
            return self.tier
        if root == "stage":
            return self.stage
        if root == "days_in_stage":
            return (self.now - self.stage_entered_at) / 86400
        if root == "days_in_node":
            return (
                None if self.node_entered_at is None else (self.now - self.node_entered_at) / 86400
            )
        if root == "days_enrolled":
            return (self.now - self.enrolled_at) / 86400
        renewal = self.facts.get("crm.renewal_at")
        return None if renewal is None else (int(renewal) - self.now) / 86400

    def aggregate(self, aggregate: Aggregate) -> float:
        value = self.aggregates.get(aggregate.key)
        if value is None:
            return 0.0
        return aggregates.read(aggregate, value, self.now)


def _dig(value: Any, keys: tuple[str, ...]) -> Any:
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


class Step:
    """The working copy of one account while one input is applied (also used by
    :mod:`services.node_engine.core.migration` to place an account on a new version)."""

    def __init__(self, state: AccountState, path: GrowthPath, now: int, cause_id: str) -> None:
        self.state = state
        self.path = path
        self.now = now
        self.cause_id = cause_id
        self.scope = _Scope(state, now)
        self.nodes: dict[str, NodeRecord] = dict(state.nodes)
        self.transitions: list[Transition] = []
        self.timers: list[Timer] = []
        self.error: str | None = state.last_error
        self.passes = 0

    # -- recording ---------------------------------------------------------------------

    def record(
        self,
        kind: TransitionKind,
        stage: Stage,
        node: Node | None,
        reason: str,
        *,
        roles: tuple[str, ...] = (),
        payload: Mapping[str, Any] | None = None,
    ) -> None:
        state = self.state
        ordinal = len(self.transitions)
        ident = _digest(
            state.workspace_id,
            state.account_id,
            self.path.id,
            str(self.path.version),
            kind,
            stage.id,
            node.id if node else "",
            self.cause_id,
            str(ordinal),
        )
        self.transitions.append(
            Transition(
                ident,
                kind,
                stage.id,
                node.id if node else None,
                reason,
                self.cause_id,
                self.now,
                roles,
                payload or {},
            )
        )

    def fail(self, stage: Stage, node: Node | None, error: ConditionFailed) -> None:
        self.error = str(error)
        self.record(TransitionKind.CONDITION_FAILED, stage, node, str(error))

    def schedule(
        self, kind: TimerKind, due_at: int, node: Node | None = None, visit: int = 0, level: int = 0
    ) -> None:
        state = self.state
        parts = [
            state.workspace_id,
            state.account_id,
            self.path.id,
            str(self.path.version),
            kind,
        ]
        parts += [node.id if node else "", str(visit), str(level)]
        if kind is TimerKind.REVIEW:
            parts.append(str(due_at))
        self.timers.append(
            Timer(
                _digest(*parts),
                self.path.id,
                max(due_at, self.now),
                kind,
                node.id if node else None,
                visit,
                level,
                self.path.version,
            )
        )

    def test(self, expression: Expression, stage: Stage, node: Node | None) -> bool:
        try:
            return expression.test(self.scope)
        except ConditionFailed as exc:
            self.fail(stage, node, exc)
            return False

    # -- inputs ------------------------------------------------------------------------

    def observe(self, event: Observation) -> None:
        """Fold the event's facts and its contribution to every matching aggregate."""
        if event.facts:
            self.scope.facts = fold_facts(self.scope.facts, event.facts)
        self.scope.observation = event
        stage = self.path.stages_by_id[self.scope.stage]
        for aggregate in self.path.aggregates_for(event.name):
            try:
                if not aggregate.matches(self.scope):
                    continue
                current = self.scope.aggregates.get(aggregate.key)
                if current is None:
                    current = aggregates.empty(aggregate)
                self.scope.aggregates[aggregate.key] = aggregates.add(
                    aggregate, current, event, self.now
                )
            except ConditionFailed as exc:
                self.fail(stage, None, exc)
        self.scope.observation = None

    def score(self, update: ScoreUpdate, *, hold: bool) -> None:
        """Fold the ``score.*`` facts; a new risk level fires ``risk_changed`` (not the
        first "unknown -> low": a first score finding nothing is no news)."""
        previous = self.scope.facts.get("score.risk_level")
        self.scope.facts = fold_facts(self.scope.facts, scored_facts(update.values))
        level = update.values.get("risk_level")
        first_calm = previous is None and level == RiskLevel.LOW.value
        if level is None or level == previous or hold or first_calm:
            return
        self.record(
            TransitionKind.RISK_CHANGED,
            self.path.stages_by_id[self.scope.stage],
            None,
            f"risk level {previous or 'unknown'} -> {level}",
            roles=RISK_AUDIENCE,
            payload={
                "from": previous,
                "to": level,
                "signals": update.values.get("signals", []),
                "reasons": [dict(reason) for reason in update.reasons],
            },
        )

    def timer_fired(self, timer: Timer, *, hold: bool) -> bool:
        """Handle a timer; ``False`` when it is stale and nothing changes. A node's timer
        sets the next of its chain, on a paused path too (so the escalations due after
        the pause still come), where it records nothing."""
        if timer.kind is TimerKind.REVIEW:
            following = timer.due_at + self.path.review_seconds
            self.schedule(TimerKind.REVIEW, max(following, self.now + 1))
            return True
        state = self.state
        node = self.path.nodes_by_id.get(timer.node or "")
        record = self.nodes.get(timer.node or "")
        if (
            node is None
            or self.scope.node != node.id
            or record is None
            or record.status is not NodeStatus.ACTIVE
            or record.visits != timer.visit
            or (timer.path_version and timer.path_version != state.path_version)
        ):
            return False
        offsets = {(kind, level): offset for kind, offset, level in _chain(node)}
        fired_at = self.node_anchor(node) + offsets[(timer.kind, timer.level)]
        self.schedule_node(node, timer.visit, only_after=fired_at)
        if hold:
            return bool(self.timers)
        stage = self.path.stages_by_id[node.stage]
        anchor = "stage entry" if node.due_from == "stage" else "node entry"
        if timer.kind is TimerKind.DUE:
            after = format_duration_seconds(node.due_seconds or 0)
            self.record(
                TransitionKind.NODE_OVERDUE,
                stage,
                node,
                f"{node.name}: not done {after} after {anchor}",
                roles=node.notify,
                payload={"due_at": timer.due_at, "condition": node.complete_when.source},
            )
            return True
        escalation = node.escalations[timer.level - 1]
        after = format_duration_seconds(escalation.at_seconds)
        self.record(
            TransitionKind.ESCALATION,
            stage,
            node,
            escalation.reason or f"{node.name}: still not done {after} after {anchor}",
            roles=escalation.notify,
            payload={
                "level": escalation.level,
                "action": escalation.action,
                "due_at": timer.due_at,
            },
        )
        return True

    def move(self, move: ManualMove) -> None:
        target_stage = self.path.stages_by_id.get(move.target)
        target_node = self.path.nodes_by_id.get(move.target)
        current = self.path.stages_by_id[self.scope.stage]
        if target_stage is None and target_node is None:
            problem = f"move by {move.actor} refused: no stage or node {move.target!r}"
            self.fail(current, None, ConditionFailed(problem))
            return
        self.record(
            TransitionKind.MOVED,
            current,
            self.path.nodes_by_id.get(self.scope.node or ""),
            f"moved to {move.target} by {move.actor}" + (f": {move.note}" if move.note else ""),
            payload={"actor": move.actor, "note": move.note, "target": move.target},
        )
        self.leave_node(skipped=True)
        self.goto(move.target, force=True)

    # -- movement ----------------------------------------------------------------------

    def advance(self) -> None:
        """Move as far as the conditions allow now."""
        for _ in range(MAX_STEPS_PER_INPUT):
            stage = self.path.stages_by_id[self.scope.stage]
            if self.path.tiers and stage.id in self.path.tiers.stages:
                self.review_tier(stage)
            if stage.complete_when is not None and self.test(stage.complete_when, stage, None):
                self.leave_node(skipped=True)
                if not self.leave_stage(stage):
                    return
                continue
            if self.scope.node is None:
                return
            node = self.path.nodes_by_id[self.scope.node]
            if not self.test(node.complete_when, stage, node):
                return
            record = self.nodes[node.id]
            self.nodes[node.id] = NodeRecord(
                NodeStatus.COMPLETED, record.visits, record.entered_at, self.now
            )
            self.record(
                TransitionKind.NODE_COMPLETED,
                stage,
                node,
                f"{node.name}: {node.complete_when.source}",
                roles=node.notify,
                payload={"days_in_node": round((self.now - record.entered_at) / 86400, 2)},
            )
            self.place(None)
            self.follow(node.next, after=node)
        self.fail(
            self.path.stages_by_id[self.scope.stage],
            None,
            ConditionFailed(f"stopped after {MAX_STEPS_PER_INPUT} steps: do branches loop?"),
        )

    def follow(self, branches: tuple[Branch, ...], *, after: Node) -> None:
        """Take the first branch that holds, else the node after ``after``, else the exit."""
        stage = self.path.stages_by_id[after.stage]
        for branch in branches:
            if branch.when is None or self.test(branch.when, stage, after):
                self.goto(branch.goto, force=False)
                return
        following = self.path.node_after(after)
        if following is not None:
            self.enter_node(following, force=False)
        else:
            self.leave_stage(stage)

    def leave_stage(self, stage: Stage) -> bool:
        """Go where the stage leads; ``False`` when it is the last one (the account stays)."""
        for branch in stage.next:
            if branch.when is None or self.test(branch.when, stage, None):
                self.goto(branch.goto, force=False)
                return True
        following = self.path.stage_after(stage)
        if following is None:
            self.place(None)
            return False
        self.enter_stage(following, None)
        return True

    def goto(self, target: str, *, force: bool) -> None:
        node = self.path.nodes_by_id.get(target)
        if node is None:
            self.enter_stage(self.path.stages_by_id[target], None, force=force)
            return
        if node.stage != self.scope.stage:
            self.enter_stage(self.path.stages_by_id[node.stage], node, force=force)
        else:
            self.enter_node(node, force=force)

    def enter_stage(self, stage: Stage, at: Node | None, *, force: bool = False) -> None:
        """Enter ``stage`` at ``at`` (default: its first node); ``force`` (a manual move)
        enters that node whatever its re-entry rule."""
        self.scope.stage, self.scope.stage_entered_at = stage.id, self.now
        self.place(None)
        self.record(
            TransitionKind.STAGE_ENTERED,
            stage,
            None,
            f"entered stage {stage.name}",
            roles=stage.notify,
        )
        first = at or (stage.nodes[0] if stage.nodes else None)
        if first is not None:
            self.enter_node(first, force=force)

    def enter_node(self, node: Node, *, force: bool) -> None:
        stage = self.path.stages_by_id[node.stage]
        record = self.nodes.get(node.id)
        passing = record is not None and not force and not self.may_reenter(node, record)
        skipping = (
            not passing and node.skip_when is not None and self.test(node.skip_when, stage, node)
        )
        if passing or skipping:
            self.passes += 1
            if self.passes > MAX_PASSES_PER_INPUT:
                if self.passes == MAX_PASSES_PER_INPUT + 1:
                    looping = f"stopped after {MAX_PASSES_PER_INPUT} steps: do branches loop?"
                    self.fail(stage, node, ConditionFailed(looping))
                return
        if passing:
            self.follow(node.next, after=node)
            return
        if skipping:
            assert node.skip_when is not None
            visits = record.visits if record else 0
            self.nodes[node.id] = NodeRecord(NodeStatus.SKIPPED, visits, self.now, self.now)
            self.record(
                TransitionKind.NODE_SKIPPED,
                stage,
                node,
                f"{node.name}: skipped ({node.skip_when.source})",
            )
            self.follow(node.next, after=node)
            return
        visit = (record.visits if record else 0) + 1
        self.nodes[node.id] = NodeRecord(NodeStatus.ACTIVE, visit, self.now)
        self.place(node.id)
        self.record(
            TransitionKind.NODE_ENTERED, stage, node, f"entered node {node.name}", roles=node.notify
        )
        self.schedule_node(node, visit)

    def schedule_node(self, node: Node, visit: int, *, only_after: int | None = None) -> None:
        """Set the next timer of the active visit of ``node``: its due date, else its first
        escalation (a path's escalations come after its due date, each after the one
        before), anchored at the stage's or the node's entry; with ``only_after``, the
        first due later than that."""
        anchor = self.node_anchor(node)
        for kind, offset, level in _chain(node):
            if only_after is None or anchor + offset > only_after:
                self.schedule(kind, anchor + offset, node, visit, level)
                return

    def node_anchor(self, node: Node) -> int:
        """When the active visit's timers count from: the stage's or the node's entry."""
        entered = self.scope.node_entered_at
        if node.due_from == "stage" or entered is None:
            return self.scope.stage_entered_at
        return entered

    def may_reenter(self, node: Node, record: NodeRecord) -> bool:
        if record.status is NodeStatus.ACTIVE:
            return False
        if node.reentry == "always":
            return True
        if node.reentry == "never":
            return False
        return self.now - (record.completed_at or record.entered_at) >= node.reentry

    def leave_node(self, *, skipped: bool) -> None:
        if self.scope.node is None:
            return
        record = self.nodes[self.scope.node]
        if record.status is NodeStatus.ACTIVE and skipped:
            self.nodes[self.scope.node] = NodeRecord(
                NodeStatus.SKIPPED, record.visits, record.entered_at, self.now
            )
        self.place(None)

    def review_tier(self, stage: Stage) -> None:
        tiers = self.path.tiers
        assert tiers is not None
        try:
            value = tiers.metric.evaluate(self.scope)
        except ConditionFailed as exc:
            self.fail(stage, None, exc)
            return
        if value is None:
            return
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(
                stage, None, ConditionFailed(f"tier metric {tiers.metric.source!r} gave {value!r}")
            )
            return
        move = tiers.move(self.scope.tier, number)
        if move is None:
            return
        old, new = move.old, move.new
        self.scope.tier = new.id if new else None
        self.record(
            TransitionKind.TIER_CHANGED,
            stage,
            None,
            f"{move.direction}: {old.id if old else 'no tier'} -> {new.id if new else 'no tier'} "
            f"({tiers.label} {number:g})",
            roles=tiers.notify,
            payload={
                "from": old.id if old else None,
                "to": new.id if new else None,
                "direction": move.direction,
                "metric": tiers.label,
                "value": number,
                "benefits": [{"id": b.id, "name": b.name} for b in new.benefits] if new else [],
            },
        )

    # -- result ------------------------------------------------------------------------

    def place(self, node: str | None) -> None:
        """Put the account on ``node`` of its stage (entered now), or on no node."""
        self.scope.node = node
        self.scope.node_entered_at = None if node is None else self.now

    def decision(self) -> Decision:
        current = self.state
        at = self.scope
        state = AccountState(
            workspace_id=current.workspace_id,
            account_id=current.account_id,
            path_id=current.path_id,
            path_version=current.path_version,
            enrolled_at=current.enrolled_at,
            stage=at.stage,
            stage_entered_at=at.stage_entered_at,
            node=at.node,
            node_entered_at=at.node_entered_at,
            nodes=self.nodes,
            tier=at.tier,
            aggregates=self.scope.aggregates,
            facts=self.scope.facts,
            sequence=current.sequence + 1,
            last_error=self.error,
        )
        return Decision(state, tuple(self.transitions), tuple(self.timers))


def _chain(node: Node) -> list[tuple[TimerKind, int, int]]:
    """A node's timers in the order they fall due: (kind, seconds after the anchor, level)."""
    chain = [(TimerKind.DUE, node.due_seconds, 0)] if node.due_seconds is not None else []
    return chain + [(TimerKind.ESCALATION, e.at_seconds, e.level) for e in node.escalations]


def _cause_of(event: Input) -> str:
    if isinstance(event, Observation | ScoreUpdate):
        return event.event_id
    if isinstance(event, TimerFired):
        return f"timer:{event.timer.id}"
    return f"move:{event.move_id}"


def _describe(event: Observation) -> str:
    return f"{event.type} {event.name!r}" if event.name else event.type


def _digest(*parts: str) -> str:
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=16).hexdigest()


def format_duration_seconds(seconds: int) -> str:
    return format_duration(timedelta(seconds=seconds))
