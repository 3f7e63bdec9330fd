"""Replay events through growth-path versions with no side effects. Pure and in memory.

The clock is the events' own time: before each event, the timers that fall due by then
fire in time order (at their due time), and the accounts' places are counted at every
snapshot boundary (midnight UTC for daily snapshots). Identity is learned as the engine
learns it (memberships from group calls, identify calls with an account and CRM contacts),
and an event with only a user id is attributed to that user's account. Facts accumulate per
account whatever its enrolment, as in the engine, so a CRM account record sent before the
deal that enrols the account is known when it enrols. Events from before
the clock are handled at the clock's time (it never goes back). :meth:`Replay.finish` fires
the timers up to the last event's time plus a horizon and returns one :class:`Tally` per
path, ready for :mod:`services.node_engine.simulation.report`.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from services.node_engine.accounts.identity import observation_of
from services.node_engine.core.facts import fold_facts
from services.node_engine.core.state import (
    AccountState,
    Decision,
    Input,
    Timer,
    TimerFired,
    Transition,
    TransitionKind,
)
from services.node_engine.core.transition import transition
from services.node_engine.core.triggers import trigger_fields
from services.node_engine.paths.compiled import GrowthPath
from shared.contracts.events import EventEnvelope
from shared.contracts.triggers import TriggerEnvelope
from shared.identity import Membership, attribute

AccountKey = tuple[str, str]
"""(workspace id, account id)."""
Position = tuple[str, str | None]
"""(stage, node): where an account is."""


class Observer(Protocol):
    """Told, in replay order, every event replayed and every trigger the first path fires
    (at its own time): what an outreach simulation needs to plan messages as they would be
    planned live."""

    def observe(self, event: EventEnvelope) -> None: ...

    def trigger(self, trigger: TriggerEnvelope) -> None: ...


@dataclass(frozen=True, slots=True)
class Snapshot:
    at: int
    """Epoch seconds of the boundary: the places after everything before it."""
    positions: Mapping[Position, int]


@dataclass(frozen=True, slots=True)
class Tally:
    """What one path version did over the replay."""

    path: GrowthPath
    enrolled: int
    snapshots: tuple[Snapshot, ...]
    triggers: Mapping[tuple[str, str, str | None], int]
    """By (kind, stage, node)."""
    roles: Mapping[tuple[str, str], int]
    """By (kind, role): a trigger for two roles counts once for each."""
    completion_days: Mapping[str, tuple[float, ...]]
    """Days in node of every completion, by node id."""
    failures: Mapping[tuple[str, str | None, str], int]
    """Condition failures by (stage, node, reason)."""


@dataclass(frozen=True, slots=True)
class Totals:
    """What happened to the events themselves."""

    events: int
    unattributed: int
    first_at: int | None
    end_at: int | None
    every_seconds: int


@dataclass
class _PathRun:
    path: GrowthPath
    states: dict[AccountKey, AccountState] = field(default_factory=dict)
    timers: list[tuple[int, int, AccountKey, Timer]] = field(default_factory=list)
    positions: Counter[Position] = field(default_factory=Counter)
    snapshots: list[Snapshot] = field(default_factory=list)
    triggers: Counter[tuple[str, str, str | None]] = field(default_factory=Counter)
    roles: Counter[tuple[str, str]] = field(default_factory=Counter)
    completion_days: dict[str, list[float]] = field(default_factory=dict)
    failures: Counter[tuple[str, str | None, str]] = field(default_factory=Counter)
    sequence: int = 0
    on_trigger: Callable[[AccountState, Transition], None] | None = None

    def apply(
        self, key: AccountKey, event: Input, now: int, known: Mapping[str, Any] | None = None
    ) -> None:
        state = self.states.get(key)
        if state is None and isinstance(event, TimerFired):
            return
        decision = transition(state, event, path=self.path, now=_time(now), known=known)
        self.collect(key, state, decision)

    def collect(self, key: AccountKey, before: AccountState | None, decision: Decision) -> None:
        after = decision.state
        if after is None or after is before:
            return
        if before is not None:
            self.positions[(before.stage, before.node)] -= 1
        self.positions[(after.stage, after.node)] += 1
        self.states[key] = after
        for step in decision.transitions:
            kind = step.trigger_kind
            if kind is not None:
                self.triggers[(kind.value, step.stage, step.node)] += 1
                if self.on_trigger is not None:
                    self.on_trigger(after, step)
                for role in step.target_roles:
                    self.roles[(kind.value, role)] += 1
            if step.kind is TransitionKind.NODE_COMPLETED and step.node is not None:
                days = float(step.payload.get("days_in_node", 0.0))
                self.completion_days.setdefault(step.node, []).append(days)
            elif step.kind is TransitionKind.CONDITION_FAILED:
                self.failures[(step.stage, step.node, step.reason)] += 1
        for timer in decision.timers:
            self.sequence += 1
            heapq.heappush(self.timers, (timer.due_at, self.sequence, key, timer))

    def fire_until(self, until: int) -> None:
        """Fire every timer due at or before ``until``, in time order."""
        while self.timers and self.timers[0][0] <= until:
            due_at, _, key, timer = heapq.heappop(self.timers)
            self.apply(key, TimerFired(timer), due_at)

    def snapshot(self, at: int) -> None:
        self.snapshots.append(Snapshot(at, {p: n for p, n in self.positions.items() if n}))

    def tally(self) -> Tally:
        return Tally(
            path=self.path,
            enrolled=len(self.states),
            snapshots=tuple(self.snapshots),
            triggers=dict(self.triggers),
            roles=dict(self.roles),
            completion_days={node: tuple(days) for node, days in self.completion_days.items()},
            failures=dict(self.failures),
        )


class Replay:
    """Feed events in time order with :meth:`add`, then :meth:`finish`."""

    def __init__(
        self,
        paths: Sequence[GrowthPath],
        *,
        every_seconds: int = 86400,
        observer: Observer | None = None,
    ) -> None:
        if every_seconds <= 0:
            raise ValueError("snapshots need a period longer than zero")
        self.runs = [_PathRun(path) for path in paths]
        self.observer = observer
        if observer is not None and self.runs:
            self.runs[0].on_trigger = lambda state, step: observer.trigger(
                TriggerEnvelope.model_validate(trigger_fields(state, step))
            )
        self.every = every_seconds
        self.memberships: dict[tuple[str, str], Membership] = {}
        self.facts: dict[AccountKey, dict[str, Any]] = {}
        self.clock: int | None = None
        self.first_at: int | None = None
        self.next_snapshot: int | None = None
        self.last_snapshot: int | None = None
        self.events = 0
        self.unattributed = 0

    def add(self, event: EventEnvelope) -> None:
        """Replay one event at its own time (or the clock's, if that is later)."""
        at = int(event.timestamp.timestamp())
        if self.clock is None:
            self.first_at = self.clock = at
            self.next_snapshot = (at // self.every + 1) * self.every
        self.advance(max(at, self.clock))
        self.events += 1
        if self.observer is not None:
            self.observer.observe(event)
        user = (event.workspace_id, event.user_id or "")
        attribution = attribute(event, self.memberships.get(user))
        if attribution.learned is not None and event.user_id is not None:
            self.memberships[user] = attribution.learned
        if attribution.account_id is None:
            self.unattributed += 1
            return
        key = (event.workspace_id, attribution.account_id)
        observation = observation_of(event, attribution.account_id, attribution.actor_roles)
        known = self.facts.get(key, {})
        if observation.facts:
            self.facts[key] = fold_facts(known, observation.facts)
        for run in self.runs:
            run.apply(key, observation, self.clock, known)

    def advance(self, to: int) -> None:
        """Move the clock to ``to``: fire timers and take snapshots on the way, in order."""
        assert self.next_snapshot is not None
        while self.next_snapshot <= to:
            boundary = self.next_snapshot
            for run in self.runs:
                run.fire_until(boundary - 1)
                run.snapshot(boundary)
            self.last_snapshot = boundary
            self.next_snapshot = boundary + self.every
        for run in self.runs:
            run.fire_until(to)
        self.clock = to

    def finish(self, *, horizon_seconds: int = 0) -> tuple[Totals, tuple[Tally, ...]]:
        """Fire the timers up to the last event plus ``horizon_seconds``, take the last
        snapshot there, and return the totals and one tally per path."""
        end = None
        if self.clock is not None:
            end = self.clock + horizon_seconds
            self.advance(end)
            if self.last_snapshot != end:
                for run in self.runs:
                    run.snapshot(end)
        totals = Totals(self.events, self.unattributed, self.first_at, end, self.every)
        return totals, tuple(run.tally() for run in self.runs)


def _time(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
