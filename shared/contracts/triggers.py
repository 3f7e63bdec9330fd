"""The trigger envelope on ``milepost.triggers``: the node engine's decisions, for outreach.

Each trigger has a deterministic ``trigger_id`` built from what caused it (account, path
version, node, transition, causing event), so a replay publishes the same id and every
subscriber can deduplicate on it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

import msgspec
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.contracts.crm import ContactRole
from shared.contracts.events import Aware


class Audience(StrEnum):
    """Who a trigger is for: a role inside the account, or the account's owner (the
    account manager or CSM, a contact of the workspace)."""

    DECISION_MAKER = ContactRole.DECISION_MAKER.value
    ADMIN = ContactRole.ADMIN.value
    END_USER = ContactRole.END_USER.value
    INFLUENCER = ContactRole.INFLUENCER.value
    GATEKEEPER = ContactRole.GATEKEEPER.value
    ACCOUNT_OWNER = "account_owner"


class TriggerKind(StrEnum):
    STAGE_ENTERED = "stage_entered"
    NODE_ENTERED = "node_entered"
    NODE_COMPLETED = "node_completed"
    NODE_OVERDUE = "node_overdue"
    ESCALATION = "escalation"
    TIER_CHANGED = "tier_changed"
    RISK_CHANGED = "risk_changed"


class TriggerEnvelope(BaseModel):
    """One trigger. Key rule: ``{workspace_id}/a/{account_id}``, like the account's events."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    trigger_id: str = Field(description="Deterministic: the same transition always has this id.")
    workspace_id: str
    account_id: str
    path_id: str
    path_version: int = Field(ge=1)
    stage: str
    node: str | None = None
    kind: TriggerKind
    target_roles: list[Audience] = Field(default_factory=list)
    reason: str = Field(description="Why it fired, in words an operator can read.")
    causing_event_id: str | None = Field(
        default=None, description="The event that caused it; none for timer firings."
    )
    occurred_at: AwareDatetime
    payload: dict[str, Any] = Field(
        default_factory=dict,
        description="Per kind. risk_changed: from, to (the announced levels), signals (names) "
        "and reasons: each raised signal as a SignalReason (signal, severity, sentence, "
        "measure, threshold, figures). tier_changed: from, to, direction, metric, value, "
        "benefits. node_overdue: due_at, condition. escalation: level, action, due_at.",
    )

    @property
    def key(self) -> str:
        return f"{self.workspace_id}/a/{self.account_id}"


class TriggerRecord(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A :class:`TriggerEnvelope` as its consumers read it: a frozen, slotted struct that
    msgspec decodes without pydantic; the envelope stays the one schema
    (``tests/shared/contracts/test_records.py`` compares them)."""

    schema_version: Literal[1] = 1
    trigger_id: str
    workspace_id: str
    account_id: str
    path_id: str
    path_version: Annotated[int, msgspec.Meta(ge=1)]
    stage: str
    node: str | None = None
    kind: TriggerKind
    target_roles: list[Audience] = []
    reason: str
    causing_event_id: str | None = None
    occurred_at: Aware
    payload: dict[str, Any] = {}

    @property
    def key(self) -> str:
        return f"{self.workspace_id}/a/{self.account_id}"
