"""The deliveries API's bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from services.messaging.deliveries.models import AttemptRow, DeliveryRow

UNREACHED_CHANNEL = "email"
"""The channel shown for a message no channel reaches (stored without one, never sent)."""
DeliveryStatus = Literal["queued", "deferred", "retrying", "sent", "failed", "suppressed"]


class AttemptOut(BaseModel):
    attempt: int = Field(description="0: the queueing; 1..: sends.")
    status: str
    reason: str | None
    provider_message_id: str | None
    started_at: datetime
    latency_ms: float | None
    retry_at: datetime | None

    @classmethod
    def of(cls, row: AttemptRow) -> AttemptOut:
        return cls.model_validate(row, from_attributes=True)


class DeliveryOut(BaseModel):
    delivery_id: str = Field(description="Also the idempotency key sent to providers.")
    account_id: str
    trigger_id: str
    contact_id: str
    step_id: str
    playbook_id: str | None
    playbook_version: int | None
    channel: str = Field(description="email for a message no channel reaches (never sent).")
    target: dict[str, Any] = Field(description="Address, URL or user id (no secrets).")
    subject: str
    body: str
    category: str
    priority: int
    status: DeliveryStatus
    reason: str | None
    attempts: int
    provider_message_id: str | None
    planned_at: datetime
    not_before: datetime
    due_at: datetime | None = Field(description="When it is tried next; none once finished.")
    leased_until: datetime | None = Field(
        description="While a dispatcher sends it: when its claim ends (sent again after "
        "that if the send was never recorded); none otherwise."
    )
    finished_at: datetime | None
    history: list[AttemptOut] | None = Field(
        default=None, description="Every attempt (on a single delivery only)."
    )

    @field_validator("channel", mode="before")
    @classmethod
    def _unreached(cls, channel: str | None) -> str:
        return channel or UNREACHED_CHANNEL

    @classmethod
    def of(cls, row: DeliveryRow, history: list[AttemptRow] | None = None) -> DeliveryOut:
        out = cls.model_validate(row, from_attributes=True)
        if history is not None:
            out.history = [AttemptOut.of(a) for a in history]
        return out


class DeliveryPageOut(BaseModel):
    items: list[DeliveryOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")
