"""The ``/api/scoring/`` API's request and response bodies (errors are the engine's shape:
``{"detail": {"field", "message", "problems"}}``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from services.admin_api import SourceIn


class NorthStarOut(BaseModel):
    metric: str = Field(description="The North Star metric's id.")
    name: str
    window: str = Field(description="The window it is read over, e.g. `P28D`.")
    value: float | None = Field(
        default=None,
        description="The account's figure (account answers) or the sum over the accounts "
        "counted (portfolio answers); null without data.",
    )


class SignalOut(BaseModel):
    kind: str = Field(description="e.g. `logins_falling`, `data_export`.")
    severity: str
    measure: float | None = Field(description="Its measure when last read (null: never active).")
    threshold: float = Field(description="Where it is raised.")
    sentence: str = Field(description="What a CSM reads.")


class ComponentOut(BaseModel):
    component: str
    value: float = Field(description="0..1")
    weight: float = Field(description="Its share after leaving out components without data.")
    contribution: float = Field(description="Points of the 0-100 score.")
    detail: str


class AccountScoreOut(BaseModel):
    workspace: str
    account_id: str
    health: float | None = Field(description="0-100; null until a component has data.")
    band: str | None = Field(description="healthy, watch or at_risk.")
    risk_level: str | None = Field(description="low, medium or high.")
    tier: str | None
    signals: list[SignalOut] = Field(description="The raised signals, most severe first.")
    components: list[ComponentOut]
    missing: list[str] = Field(description="Components left out for lack of data.")
    explanation: list[str] = Field(description="The score in sentences.")
    north_star: NorthStarOut
    facts: dict[str, Any] = Field(description="CRM and account facts (crm.*, account.*).")
    metrics: dict[str, float | None] = Field(
        description="The figures health and the signals read, as of the last score "
        "(`logins_7d`, `logins_28d_weekly_avg`, ...; null: no figure)."
    )
    evaluated_at: datetime


class AccountSummaryOut(BaseModel):
    account_id: str
    health: float | None
    band: str | None
    risk_level: str | None
    tier: str | None
    signals: list[str]
    north_star: float | None
    evaluated_at: datetime


class AccountPage(BaseModel):
    items: list[AccountSummaryOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")
    north_star: NorthStarOut


class HistoryItemOut(BaseModel):
    position: int = Field(description="Grows with every event; `cursor` pages by it.")
    score_event_id: str
    kind: str
    health: float | None
    risk_level: str | None
    tier: str | None
    signals: list[str]
    explanation: dict[str, Any]
    occurred_at: datetime


class HistoryPage(BaseModel):
    items: list[HistoryItemOut] = Field(description="Newest first.")
    next_cursor: int | None
    north_star: NorthStarOut


class GroupOut(BaseModel):
    key: str | None = Field(description="The tier, risk level or band (null: none yet).")
    accounts: int
    share: float = Field(description="Of the accounts scored, 0..1.")
    mean_health: float | None
    north_star: float | None = Field(description="The North Star's sum over these accounts.")


class PortfolioOut(BaseModel):
    workspace: str
    accounts: int
    north_star: NorthStarOut
    by_tier: list[GroupOut]
    by_risk_level: list[GroupOut]
    by_band: list[GroupOut]


class FigureOut(BaseModel):
    name: str = Field(description="renewal_rate, gross_revenue_retention, ...")
    value: float | None = Field(description="Null when it cannot be measured (see reason).")
    formula: str
    inputs: dict[str, float | int | str | None]
    reason: str | None = Field(description="Why there is no value.")


class FiguresOut(BaseModel):
    workspace: str
    start: datetime
    end: datetime
    gross_margin: float
    accounts_with_contract: int
    figures: list[FigureOut] = Field(
        description="Renewal rate, gross and net revenue retention, LTV:CAC (bar: 3 or more) "
        "and CAC payback in months (bar: under 12)."
    )
    north_star: NorthStarOut


class DefinitionsVersionOut(BaseModel):
    version: int
    source_name: str
    digest: str
    north_star: str
    metric_count: int
    published_at: datetime
    published_by: str = Field(
        description="Who published it: the admin token's label, or `operator` (the "
        "configured admin token, the CLI)."
    )
    current: bool


class DefinitionsPage(BaseModel):
    items: list[DefinitionsVersionOut] = Field(description="Newest first.")
    next_cursor: int | None
    north_star: NorthStarOut = Field(description="The North Star of the definitions in force.")


class MetricOut(BaseModel):
    id: str
    name: str
    kind: str
    windows: list[str]
    north_star: bool
    feature: bool
    contact: bool


class DefinitionsDetailOut(DefinitionsVersionOut):
    source: str
    metrics: list[MetricOut]


class MetricsSourceIn(SourceIn):
    """A metric-definitions file."""


class MetricsValidOut(BaseModel):
    valid: bool = True
    north_star: str
    metrics: list[MetricOut]
