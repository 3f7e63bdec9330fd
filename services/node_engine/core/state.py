"""Per-account state on one growth path, and the inputs and decisions of the pure core.

Times are whole seconds since the epoch (UTC): compact in memory and in storage, and
exactly reproducible on replay. Values are immutable; a transition returns a new state.
They are frozen msgspec structs, built, compared and hashed in C (a frozen dataclass sets
each field through ``object.__setattr__``: microseconds per event over the states, node
records, transitions and timers the core builds), and not tracked by the garbage
collector: they never form cycles.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from msgspec import Struct, field

from shared.contracts.triggers import TriggerKind


class NodeStatus(StrEnum):
    ACTIVE = "active"
    COMPLETED = "completed"
    SKIPPED = "skipped"


class NodeRecord(Struct, frozen=True, gc=False):
    """What happened to one node: its last visit, how many visits, and when."""

    status: NodeStatus
    visits: int
    entered_at: int
    completed_at: int | None = None


AggregateValue = float | tuple[tuple[Any, int | float], ...]
"""A lifetime total, or ``(bucket, amount)`` pairs for a window, or ``(user, last bucket)``
pairs for distinct users."""


class AccountState(Struct, frozen=True, gc=False):
    """One account on one growth path version."""

    workspace_id: str
    account_id: str
    path_id: str
    path_version: int
    enrolled_at: int
    stage: str
    stage_entered_at: int
    node: str | None
    node_entered_at: int | None
    nodes: Mapping[str, NodeRecord] = field(default_factory=dict)
    tier: str | None = None
    aggregates: Mapping[str, AggregateValue] = field(default_factory=dict)
    facts: Mapping[str, Any] = field(default_factory=dict)
    """Latest account facts: ``crm.*`` from CRM events, ``account.*`` from group traits,
    ``score.*`` from the scoring service; bounded (:mod:`services.node_engine.core.facts`)."""
    sequence: int = 0
    """How many inputs changed this state; part of timer ids."""
    paused: bool = False
    last_error: str | None = None


class TransitionKind(StrEnum):
    """Everything the history records. The ones in :data:`PUBLISHED` become triggers."""

    ENROLLED = "enrolled"
    STAGE_ENTERED = TriggerKind.STAGE_ENTERED.value
    NODE_ENTERED = TriggerKind.NODE_ENTERED.value
    NODE_COMPLETED = TriggerKind.NODE_COMPLETED.value
    NODE_SKIPPED = "node_skipped"
    NODE_OVERDUE = TriggerKind.NODE_OVERDUE.value
    ESCALATION = TriggerKind.ESCALATION.value
    TIER_CHANGED = TriggerKind.TIER_CHANGED.value
    RISK_CHANGED = TriggerKind.RISK_CHANGED.value
    MOVED = "moved"
    MIGRATED = "migrated"
    CONDITION_FAILED = "condition_failed"


PUBLISHED: Mapping[TransitionKind, TriggerKind] = {
    kind: TriggerKind(kind.value)
    for kind in TransitionKind
    if kind.value in {k.value for k in TriggerKind}
}


class Transition(Struct, frozen=True, gc=False):
    """One step in an account's history. ``id`` is deterministic: the same input applied
    to the same state always yields the same ids."""

    id: str
    kind: TransitionKind
    stage: str
    node: str | None
    reason: str
    cause_id: str
    occurred_at: int
    target_roles: tuple[str, ...] = ()
    payload: Mapping[str, Any] = field(default_factory=dict)

    @property
    def trigger_kind(self) -> TriggerKind | None:
        return PUBLISHED.get(self.kind)


class TimerKind(StrEnum):
    DUE = "due"
    ESCALATION = "escalation"
    REVIEW = "review"


class Timer(Struct, frozen=True, gc=False):
    """A durable wake-up. Firing a timer whose node visit has passed changes nothing, so
    timers are never cancelled, only outlived."""

    id: str
    path_id: str
    due_at: int
    kind: TimerKind
    node: str | None = None
    visit: int = 0
    level: int = 0
    path_version: int = 0
    """The version whose node visit it belongs to (0: any); after a migration the old
    version's due dates and escalations are stale."""


class Observation(Struct, frozen=True, gc=False):
    """An event as the engine sees it: attributed to an account, with the acting user's
    roles looked up."""

    event_id: str
    workspace_id: str
    account_id: str
    type: str
    name: str | None
    user_id: str | None
    actor_roles: frozenset[str]
    properties: Mapping[str, Any]
    traits: Mapping[str, Any]
    source: str
    occurred_at: int
    facts: Mapping[str, Any] = field(default_factory=dict)
    """Account facts this event states (``crm.deal_stage``, ``account.plan`` ...)."""


class TimerFired(Struct, frozen=True, gc=False):
    timer: Timer


class ScoreUpdate(Struct, frozen=True, gc=False):
    """A score event from the scoring service: new ``score.*`` facts for the account, and
    the raised signals' reasons (sentence, figures ...) a risk change passes on."""

    event_id: str
    kind: str
    values: Mapping[str, Any]
    occurred_at: int
    reasons: tuple[Mapping[str, Any], ...] = ()


class ManualMove(Struct, frozen=True, gc=False):
    """An operator moves the account to a stage or node (audited)."""

    move_id: str
    target: str
    actor: str
    note: str | None
    requested_at: int


Input = Observation | TimerFired | ScoreUpdate | ManualMove


class Decision(Struct, frozen=True, gc=False):
    """The outcome of one input: the new state (``None``: not on the path), what happened,
    and the timers to set."""

    state: AccountState | None
    transitions: tuple[Transition, ...] = ()
    timers: tuple[Timer, ...] = ()

    @property
    def triggers(self) -> tuple[Transition, ...]:
        return tuple(t for t in self.transitions if t.trigger_kind is not None)
