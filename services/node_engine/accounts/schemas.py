"""The accounts part of the engine's admin API: request and response bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class NodeStatusOut(BaseModel):
    node: str
    status: str
    visits: int
    entered_at: datetime
    completed_at: datetime | None


class AccountPathOut(BaseModel):
    path_id: str
    path_version: int
    stage: str
    node: str | None
    tier: str | None
    enrolled_at: datetime
    stage_entered_at: datetime
    nodes: list[NodeStatusOut]
    facts: dict[str, Any]
    last_error: str | None = Field(description="The last condition that failed on this account.")


class AccountOut(BaseModel):
    workspace: str
    account_id: str
    paths: list[AccountPathOut]


class TransitionOut(BaseModel):
    position: int = Field(description="Order in the history; the cursor of the next page.")
    transition_id: str = Field(description="For published kinds, the trigger id.")
    path_id: str
    path_version: int
    kind: str
    stage: str
    node: str | None
    reason: str
    cause_id: str = Field(description="The causing event id, or timer:/move: and its id.")
    target_roles: list[str]
    payload: dict[str, Any]
    occurred_at: datetime


class TimelinePage(BaseModel):
    items: list[TransitionOut]
    next_cursor: int | None = Field(description="Pass as `cursor` for the next page.")


class FunnelNodeOut(BaseModel):
    stage: str
    node: str | None = Field(description="None: the stage itself (accounts between nodes).")
    accounts_now: int = Field(description="Accounts at this stage/node now.")
    entered: int
    completed: int
    conversion: float | None = Field(description="completed / entered.")
    median_days_in_node: float | None


class FunnelOut(BaseModel):
    workspace: str
    path_id: str
    accounts: int
    steps: list[FunnelNodeOut]


class MoveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path_id: str = Field(min_length=1, max_length=64)
    target: str = Field(min_length=1, max_length=64, description="A stage or node id.")
    actor: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Who moves it (audited). A stored admin token (bearer or console session) "
        "moves under its label, or its id without one: leave this out, or give that name. "
        "Only a setting's token (MILEPOST_ENGINE_ADMIN_TOKEN) may name someone, else "
        "`operator`.",
    )
    note: str | None = Field(default=None, max_length=1000)


class MoveOut(BaseModel):
    move_id: str
    status: str = Field(description="`queued`: the engine applies it within a second.")


class NodeAccountOut(BaseModel):
    account_id: str
    path_version: int
    stage: str
    node: str | None
    tier: str | None
    stage_entered_at: datetime
    node_entered_at: datetime | None = Field(description="None between nodes.")
    overdue: bool = Field(description="Its node went overdue and it has not left the node since.")


class NodeAccountPage(BaseModel):
    items: list[NodeAccountOut] = Field(description="By account id.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")


class OverdueOut(BaseModel):
    stage: str
    node: str
    accounts: int = Field(description="Accounts in the node now whose node is overdue.")


class OverdueCountsOut(BaseModel):
    workspace: str
    path_id: str
    nodes: list[OverdueOut]
