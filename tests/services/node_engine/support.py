"""Helpers for the node engine's unit tests: growth paths from YAML text, observations, and
an :class:`Account` that drives the pure core with a frozen clock and a tiny timer queue."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from services.node_engine.core.state import (
    AccountState,
    Decision,
    Input,
    ManualMove,
    Observation,
    ScoreUpdate,
    Timer,
    TimerFired,
    TimerKind,
    Transition,
    TransitionKind,
)
from services.node_engine.core.transition import transition
from services.node_engine.paths.compiled import GrowthPath, compile_path
from services.node_engine.paths.files import GrowthPathFile, Stage, Tiers
from shared.clock import FrozenClock
from shared.contracts.crm import BusinessType

REFERENCE = Path(__file__).parents[3] / "services" / "node_engine" / "paths" / "reference"
T0 = datetime(2026, 3, 2, tzinfo=UTC)
"""A Monday at midnight UTC: day and hour buckets start exactly here."""
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
WORKSPACE = "ws_test"
ACCOUNT = "acme"


def epoch(at: datetime) -> int:
    return int(at.timestamp())


def document(
    stages: list[dict[str, Any]],
    *,
    tiers: dict[str, Any] | None = None,
    enrol_when: str = 'type == "group"',
    review_every: str = "P1D",
    path_id: str = "test-path",
) -> dict[str, Any]:
    """A growth-path file as the YAML loader would give it."""
    doc: dict[str, Any] = {
        "id": path_id,
        "name": "Test path",
        "business_type": "platform",
        "enrol_when": enrol_when,
        "review_every": review_every,
        "stages": stages,
    }
    if tiers is not None:
        doc["tiers"] = tiers
    return doc


def node(ident: str, complete_when: str = 'happened("Done")', **fields: Any) -> dict[str, Any]:
    """A node as written in a file; ``name`` is the id in title case."""
    return {"id": ident, "name": ident.title(), "complete_when": complete_when, **fields}


def stage(ident: str, *nodes: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"id": ident, "name": ident.title(), "nodes": list(nodes), **fields}


def build(doc: Mapping[str, Any] | str, *, version: int = 1) -> GrowthPath:
    """Validate (shape and meaning) and compile a growth path given as a dict or YAML text."""
    data = yaml.safe_load(doc) if isinstance(doc, str) else doc
    return compile_path(GrowthPathFile.model_validate(data), version=version)


def unchecked(doc: Mapping[str, Any]) -> GrowthPathFile:
    """The file with its parts validated but not its meaning, so ``check_path`` can list
    every problem (validation itself stops at the first)."""
    fields = dict(doc)
    fields["business_type"] = BusinessType(doc["business_type"])
    fields["stages"] = [Stage.model_validate(stage) for stage in doc["stages"]]
    if doc.get("tiers") is not None:
        fields["tiers"] = Tiers.model_validate(doc["tiers"])
    return GrowthPathFile.model_construct(**fields)


def reference(name: str) -> GrowthPath:
    return build((REFERENCE / f"{name}.yaml").read_text())


def observation(
    name: str | None = None,
    *,
    at: datetime = T0,
    event_id: str = "e1",
    type: str = "track",
    user_id: str | None = "u1",
    roles: Iterable[str] = (),
    properties: Mapping[str, Any] | None = None,
    traits: Mapping[str, Any] | None = None,
    facts: Mapping[str, Any] | None = None,
    source: str = "segment",
    account_id: str = ACCOUNT,
) -> Observation:
    return Observation(
        event_id=event_id,
        workspace_id=WORKSPACE,
        account_id=account_id,
        type=type,
        name=name,
        user_id=user_id,
        actor_roles=frozenset(roles),
        properties=dict(properties or {}),
        traits=dict(traits or {}),
        source=source,
        occurred_at=epoch(at),
        facts=dict(facts or {}),
    )


def kinds(decision: Decision) -> list[tuple[str, str, str | None]]:
    """``(kind, stage, node)`` of every transition, in order."""
    return [(t.kind.value, t.stage, t.node) for t in decision.transitions]


def of_kind(decision: Decision, kind: TransitionKind) -> list[Transition]:
    return [t for t in decision.transitions if t.kind is kind]


def where(state: AccountState | None) -> tuple[str, str | None]:
    assert state is not None
    return state.stage, state.node


class Account:
    """One account driven through the pure core: events at the clock's time, timers kept
    in a queue and fired when the clock passes them, every decision remembered."""

    def __init__(self, path: GrowthPath, clock: FrozenClock | None = None) -> None:
        self.path = path
        self.clock = clock or FrozenClock(T0)
        self.state: AccountState | None = None
        self.timers: dict[str, Timer] = {}
        self.decisions: list[Decision] = []
        self._events = 0

    @property
    def now(self) -> datetime:
        return self.clock.now()

    @property
    def current(self) -> AccountState:
        assert self.state is not None, "the account is not on the path"
        return self.state

    @property
    def at(self) -> tuple[str, str | None]:
        return where(self.current)

    def apply(self, event: Input, *, hold: bool = False) -> Decision:
        decision = transition(self.state, event, path=self.path, now=self.now, hold=hold)
        self.state = decision.state
        for timer in decision.timers:
            self.timers[timer.id] = timer
        self.decisions.append(decision)
        return decision

    def next_event_id(self) -> str:
        self._events += 1
        return f"evt-{self._events}"

    def event(self, name: str | None = None, *, hold: bool = False, **fields: Any) -> Decision:
        """A track event (or any observation) that happened now."""
        fields.setdefault("event_id", self.next_event_id())
        return self.apply(observation(name, at=self.now, **fields), hold=hold)

    def group(self, traits: Mapping[str, Any] | None = None, **fields: Any) -> Decision:
        return self.event(None, type="group", traits=traits, **fields)

    def crm(self, name: str, **facts: Any) -> Decision:
        """A CRM CloudEvent stating account facts, e.g. ``crm.deal_stage``."""
        return self.event(
            f"milepost.crm.{name}",
            type="crm",
            user_id=None,
            source="crm",
            facts={f"crm.{key}": value for key, value in facts.items()},
        )

    def score(self, values: Mapping[str, Any], *, hold: bool = False) -> Decision:
        update = ScoreUpdate(self.next_event_id(), "health", dict(values), epoch(self.now))
        return self.apply(update, hold=hold)

    def move(self, target: str, *, note: str | None = None, hold: bool = False) -> Decision:
        move = ManualMove(self.next_event_id(), target, "ops@example.com", note, epoch(self.now))
        return self.apply(move, hold=hold)

    def fire(self, timer: Timer, *, hold: bool = False) -> Decision:
        self.timers.pop(timer.id, None)
        return self.apply(TimerFired(timer), hold=hold)

    def pending(self, kind: TimerKind | None = None, node: str | None = None) -> list[Timer]:
        timers = sorted(self.timers.values(), key=lambda t: (t.due_at, t.kind.value, t.level))
        return [
            t
            for t in timers
            if (kind is None or t.kind is kind) and (node is None or t.node == node)
        ]

    def timer(self, kind: TimerKind, node: str | None = None) -> Timer:
        """The one pending timer of that kind (for that node)."""
        found = self.pending(kind, node)
        assert len(found) == 1, found
        return found[0]

    def wait(self, delta: timedelta) -> list[Decision]:
        """Advance the clock by ``delta``, firing every timer that falls due on the way, at its
        due time and in order; return their decisions."""
        end = self.now + delta
        fired: list[Decision] = []
        while True:
            due = [t for t in self.pending() if t.due_at <= epoch(end)]
            if not due:
                break
            timer = due[0]
            self.clock.set(max(self.now, datetime.fromtimestamp(timer.due_at, UTC)))
            fired.append(self.fire(timer))
        self.clock.set(end)
        return fired

    def transitions(self, since: int = 0) -> list[Transition]:
        return [t for d in self.decisions[since:] for t in d.transitions]

    def history(self, since: int = 0) -> list[tuple[str, str, str | None]]:
        return [(t.kind.value, t.stage, t.node) for t in self.transitions(since)]


PATH_MISTAKES = """\
id: trial
name: Trial path
business_type: service
enrol_when: event == "Signed Up"
stages:
  - id: onboarding
    name: Onboarding
    nodes:
      - id: invited
        name: Users invited
        complete_when: crm.seats > 1
        notify: [admin, ceo]
      - id: activated
        name: Activated
        complete_when: crm.seats > 3 and event == "Key Feature Used"
        next:
          - goto: adoptoin
  - id: adoption
    name: Adoption
    nodes:
      - id: used
        name: Used
        complete_when: >-
          count("Key Feature Used")
          > count("X", by="ceo")
"""
"""A growth path with a wrong role in `notify`, `event` in an account condition, a `goto`
to no id and a wrong role inside a condition's second line: four problems in one run."""
