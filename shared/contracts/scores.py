"""The score envelope on ``milepost.scores``: the scoring service's findings per account.

The node engine reads them as ``score.*`` facts in conditions (``score.health``,
``score.risk_level``, ``score.tier``) and turns a risk level change into a trigger.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class ScoreKind(StrEnum):
    SCORE_CHANGED = "score_changed"
    RISK_RAISED = "risk_raised"
    RISK_CLEARED = "risk_cleared"
    TIER_CHANGED = "tier_changed"
    DIAGNOSIS = "diagnosis"


class RiskLevel(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class ScoreEnvelope(BaseModel):
    """One score event. Key rule: ``{workspace_id}/a/{account_id}``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    score_event_id: str = Field(description="Deterministic: the same finding has the same id.")
    workspace_id: str
    account_id: str
    kind: ScoreKind
    health: float | None = Field(default=None, ge=0, le=100)
    risk_level: RiskLevel | None = None
    tier: str | None = None
    signals: list[str] = Field(default_factory=list, description="Signals that raised the risk.")
    explanation: dict[str, Any] = Field(default_factory=dict)
    occurred_at: AwareDatetime

    @property
    def key(self) -> str:
        return f"{self.workspace_id}/a/{self.account_id}"
