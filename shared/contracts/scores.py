"""The score envelope on ``milepost.scores``: the scoring service's findings per account.

The node engine reads them as ``score.*`` facts in conditions (``score.health``,
``score.risk_level``, ``score.tier``) and turns a risk level change into a trigger.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Final, Literal

import msgspec
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.contracts.events import Aware


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


class SignalReason(BaseModel):
    """A raised churn signal: why the risk is what it is, in a sentence and in figures."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    signal: str = Field(description="The signal, e.g. data_export or logins_falling.")
    severity: RiskLevel
    sentence: str = Field(description="What a CSM reads, e.g. 'A large data export: ...'.")
    measure: float | None = Field(description="What the threshold compares; null: infinite.")
    threshold: float = Field(description="The measure at which the signal is raised.")
    figures: dict[str, float | None] = Field(
        default_factory=dict,
        description="The figures the sentence states, by name (rows_7d, weekly_average ...).",
    )


class ScoreEnvelope(BaseModel):
    """One score event. Key rule: ``{workspace_id}/a/{account_id}``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    score_event_id: str = Field(description="Deterministic: the same finding has the same id.")
    workspace_id: str
    account_id: str
    kind: ScoreKind
    health: float | None = Field(default=None, ge=0, le=100)
    risk_level: RiskLevel | None = Field(
        default=None,
        description="The announced risk level: a new level is announced once it has held "
        "for the dwell time (event time).",
    )
    tier: str | None = None
    signals: list[str] = Field(default_factory=list, description="Signals that raised the risk.")
    reasons: list[SignalReason] = Field(
        default_factory=list,
        description="Each raised signal with its sentence and figures, most severe first.",
    )
    explanation: dict[str, Any] = Field(default_factory=dict)
    occurred_at: AwareDatetime

    @property
    def key(self) -> str:
        return f"{self.workspace_id}/a/{self.account_id}"


class SignalReasonRecord(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A :class:`SignalReason` as a consumer reads it (the same fields)."""

    signal: str
    severity: RiskLevel
    sentence: str
    measure: float | None
    threshold: float
    figures: dict[str, float | None] = {}


class ScoreRecord(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A :class:`ScoreEnvelope` as scoring builds it and its consumers read it: a frozen,
    slotted struct that msgspec encodes and decodes without pydantic; the envelope stays the
    one schema (``tests/shared/contracts/test_records.py`` compares them)."""

    schema_version: Literal[1] = 1
    score_event_id: str
    workspace_id: str
    account_id: str
    kind: ScoreKind
    health: Annotated[float, msgspec.Meta(ge=0, le=100)] | None = None
    risk_level: RiskLevel | None = None
    tier: str | None = None
    signals: list[str] = []
    reasons: list[SignalReasonRecord] = []
    explanation: dict[str, Any] = {}
    occurred_at: Aware

    @property
    def key(self) -> str:
        return f"{self.workspace_id}/a/{self.account_id}"

    def to_json(self) -> bytes:
        """The record as it goes on ``milepost.scores``: the JSON its envelope reads. Built
        from trusted values (scoring's own), so not validated on the way out."""
        return _ENCODER.encode(self)


_ENCODER: Final = msgspec.json.Encoder()
